"""``builder reference``: every format for every buildable image, placeholders, --spot, --vm-size, --version."""

from __future__ import annotations

import io
import json
import re

import hcl2
import pytest

from builder.catalog.loader import load_catalog
from builder.reference import FORMATS, render, resolve_target
from tests.conftest import REPO

CATALOG = load_catalog(REPO / "images")
IMAGES = sorted(i.name for i in CATALOG.buildable())
PLACEHOLDER = "${AZURE_SUBSCRIPTION_ID}"


def _target(name: str, **kw):
    return resolve_target(CATALOG, name, kw.get("version"), kw.get("vm_size"), kw.get("spot", False),
                          kw.get("subscription"), kw.get("published"), kw.get("instances", 2))


def _expected_id(name: str, sub: str = PLACEHOLDER, version: str | None = None) -> str:
    g = CATALOG.model(name).gallery
    out = (f"/subscriptions/{sub}/resourceGroups/{g.resource_group}/providers/Microsoft.Compute/galleries/"
           f"{g.gallery}/images/{g.definition}")
    return f"{out}/versions/{version}" if version else out


def _terraform(text: str):
    """Parse HCL and drop the quotes python-hcl2 keeps around labels and string values."""
    return _plain(hcl2.load(io.StringIO(text)))


def _plain(value):
    if isinstance(value, dict):
        return {_unquote(k): _plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return _unquote(value)


def _tf_vm(doc: dict) -> dict:
    for block in doc["resource"]:
        if "azurerm_linux_virtual_machine" in block:
            return block["azurerm_linux_virtual_machine"]["vm"]
    raise AssertionError("no azurerm_linux_virtual_machine in the Terraform output")


def _unquote(value: str) -> str:
    return value[1:-1] if isinstance(value, str) and value.startswith('"') else value


def arm_image_id(expression: str, parameters: dict[str, str]) -> str:
    """Evaluate the ARM image id: a literal, or ``[concat('text', parameters('NAME'), ...)]`` ('' is a quote)."""
    if not expression.startswith("["):
        return expression
    assert expression.startswith("[concat(") and expression.endswith(")]"), expression
    out, rest = [], expression[len("[concat("):-2]
    for m in re.finditer(r"\s*(?:'((?:[^']|'')*)'|parameters\('([^']+)'\))\s*(?:,|$)", rest):
        out.append(m[1].replace("''", "'") if m[1] is not None else parameters[m[2]])
    return "".join(out)


@pytest.mark.parametrize("name", IMAGES)
def test_every_format_parses_and_points_at_the_catalog_gallery(name):
    model = CATALOG.model(name)
    target = _target(name, version="2026.1129.3")
    wanted = _expected_id(name, version="2026.1129.3")
    assert render(target, "id").strip() == wanted
    cli = render(target, "cli")
    assert f'--image "{wanted}"' in cli and f"--size {model.target_skus[0]}" in cli
    arm = json.loads(render(target, "arm"))
    assert arm["$schema"].endswith("/deploymentTemplate.json#") and arm["contentVersion"] == "1.0.0.0"
    vm = arm["resources"][0]["properties"]
    image_id = arm_image_id(vm["storageProfile"]["imageReference"]["id"], {"AZURE_SUBSCRIPTION_ID": PLACEHOLDER})
    assert image_id == wanted
    assert vm["hardwareProfile"]["vmSize"] == "[parameters('vmSize')]"
    assert arm["parameters"]["vmSize"]["defaultValue"] == model.target_skus[0]
    key = vm["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"]
    assert key == "[parameters('adminSshPublicKey')]"
    batch = json.loads(render(target, "batch"))
    assert batch["virtualMachineConfiguration"]["imageReference"]["virtualMachineImageId"] == wanted
    assert batch["virtualMachineConfiguration"]["nodeAgentSKUId"].startswith("batch.node.")
    tf_vm = _tf_vm(_terraform(render(target, "terraform")))
    assert _unquote(tf_vm["source_image_id"]) == _expected_id(name, "${var.azure_subscription_id}", "2026.1129.3")
    assert _unquote(tf_vm["size"]) == model.target_skus[0]
    bicep = render(target, "bicep")
    assert f"id: '{wanted}'" in bicep and "param AZURE_SUBSCRIPTION_ID string" in bicep
    assert bicep.count("{") == bicep.count("}") and bicep.count("[") == bicep.count("]")
    assert f"ImageId = {wanted}" in render(target, "cyclecloud")


def test_batch_node_agent_follows_the_image_os():
    by_os = {CATALOG.model(n).os.value: n for n in IMAGES}
    agents = {os_: json.loads(render(_target(n), "batch"))["virtualMachineConfiguration"]["nodeAgentSKUId"]
              for os_, n in by_os.items()}
    assert agents.get("ubuntu2204") == "batch.node.ubuntu 22.04"
    if "ubuntu2404" in agents:
        assert agents["ubuntu2404"] == "batch.node.ubuntu 24.04"


def test_configured_subscription_replaces_every_placeholder():
    sub = "0b1f6471-1bf0-4dda-aec3-111122223333"
    target = _target("ndh100-train", subscription=sub)
    assert target.placeholders == []
    for fmt in FORMATS:
        text = render(target, fmt)
        assert PLACEHOLDER not in text and "azure_subscription_id" not in text, fmt
        assert f"/subscriptions/{sub}/" in text, fmt


def test_without_subscription_placeholders_are_marked_in_each_format():
    target = _target("cpu-infer")
    assert target.placeholders == ["AZURE_SUBSCRIPTION_ID"]
    for fmt in ("id", "cli", "batch", "cyclecloud"):
        assert PLACEHOLDER in render(target, fmt), fmt
    assert "PLACEHOLDER" in render(target, "bicep") and "PLACEHOLDER" in render(target, "terraform")
    arm = json.loads(render(target, "arm"))  # a template parameter: the template deploys as printed
    assert PLACEHOLDER not in json.dumps(arm)
    assert arm["parameters"]["AZURE_SUBSCRIPTION_ID"]["metadata"]["description"].startswith("PLACEHOLDER")
    tf = _terraform(render(target, "terraform"))
    assert any("azure_subscription_id" in v for v in tf["variable"])


def test_latest_uses_the_definition_id():
    text = render(_target("cpu-infer", version="latest"), "id").strip()
    assert text == _expected_id("cpu-infer") and "/versions/" not in text


def test_spot_sets_priority_eviction_and_checkpoint_note():
    target = _target("cpu-infer", spot=True)
    tf_vm = _tf_vm(_terraform(render(target, "terraform")))
    assert _unquote(tf_vm["priority"]) == "Spot" and _unquote(tf_vm["eviction_policy"]) == "Deallocate"
    vm = json.loads(render(target, "arm"))["resources"][0]["properties"]
    assert vm["priority"] == "Spot" and vm["evictionPolicy"] == "Deallocate"
    vmss = json.loads(render(_target("cpu-train", spot=True), "vmss-arm"))["resources"][0]["properties"]
    assert vmss["virtualMachineProfile"]["priority"] == "Spot"
    assert "--priority Spot --eviction-policy Deallocate" in render(target, "cli")
    assert "Interruptible = true" in render(target, "cyclecloud")
    assert json.loads(render(target, "batch"))["targetLowPriorityNodes"] >= 1
    assert any("checkpoint" in n for n in target.notes)
    plain = _target("cpu-infer")
    assert "priority" not in json.loads(render(plain, "arm"))["resources"][0]["properties"]
    assert "Spot" not in render(plain, "cli")


def test_infiniband_sku_enables_inter_node_communication_and_notes():
    ib_images = [n for n in IMAGES if any(CATALOG.skus[s].infiniband for s in CATALOG.model(n).target_skus)]
    plain_images = [n for n in IMAGES if not any(CATALOG.skus[s].infiniband for s in CATALOG.model(n).target_skus)]
    assert ib_images and plain_images
    ib = _target(ib_images[0])
    assert json.loads(render(ib, "batch"))["enableInterNodeCommunication"] is True
    assert any("InfiniBand" in n for n in ib.notes)
    plain = _target(plain_images[0])
    assert json.loads(render(plain, "batch"))["enableInterNodeCommunication"] is False
    assert not any("InfiniBand" in n for n in plain.notes)


def test_accelerated_networking_follows_catalog_and_sku(catalog_copy):
    base = catalog_copy / "base-dsvm.yaml"
    base.write_text(base.read_text().replace("accelerated_networking: true", "accelerated_networking: false"))
    off = resolve_target(load_catalog(catalog_copy), "cpu-infer", None, None, False, None)
    assert "--accelerated-networking false" in render(off, "cli")
    tf = _terraform(render(off, "terraform"))
    nic = next(b["azurerm_network_interface"]["vm"] for b in tf["resource"] if "azurerm_network_interface" in b)
    assert nic["accelerated_networking_enabled"] is False
    assert "--accelerated-networking true" in render(_target("cpu-infer"), "cli")


def test_vm_size_must_be_a_target_sku(run_cli):
    name = "cpu-infer"
    other = next(s for s in CATALOG.skus if s not in CATALOG.model(name).target_skus)
    result = run_cli("reference", name, "--vm-size", other, "--format", "cli")
    assert result.code == 2 and result.stdout == ""
    assert re.search(rf"images/{name}\.yaml:\d+: --vm-size: '{other}' is not a target SKU", result.stderr)
    assert "Traceback" not in result.stderr
    chosen = CATALOG.model(name).target_skus[-1]
    ok = run_cli("reference", name, "--vm-size", chosen, "--format", "cli")
    assert ok.code == 0 and f"--size {chosen}" in ok.stdout


def test_bad_and_unpublished_versions_are_input_errors(run_cli, tmp_path):
    bad = run_cli("reference", "cpu-infer", "--version", "1.2")
    assert bad.code == 2 and "version" in bad.stderr and "Traceback" not in bad.stderr
    state = tmp_path / "state"
    state.mkdir()
    (state / "registry.json").write_text(json.dumps({"images": {"cpu-infer": {"2026.1129.0": {}}}}))
    missing = run_cli("reference", "cpu-infer", "--version", "2026.1129.5")
    assert missing.code == 2 and "2026.1129.0" in missing.stderr
    known = run_cli("reference", "cpu-infer", "--version", "2026.1129.0")
    assert known.code == 0 and known.stdout.strip().endswith("/versions/2026.1129.0")


def test_cli_json_and_environment_subscription(run_cli):
    result = run_cli("reference", "ndh100-train", "--format", "terraform", "--json",
                     env={"AZURE_SUBSCRIPTION_ID": "sub-123"})
    assert result.code == 0
    data = json.loads(result.stdout)
    assert data["format"] == "terraform" and data["placeholders"] == []
    assert data["image_id"] == _expected_id("ndh100-train", "sub-123")
    _tf_vm(_terraform(data["snippet"]))


def test_cli_format_choices_match_the_renderers():
    from builder.commands.deploy import FORMATS as CLI_FORMATS
    from builder.reference import RENDERERS

    assert tuple(CLI_FORMATS) == FORMATS == tuple(RENDERERS)


TRAINING = sorted(n for n in IMAGES if CATALOG.model(n).purpose.value == "train")
INFERENCE = sorted(n for n in IMAGES if CATALOG.model(n).purpose.value == "infer")


def _trusted(catalog_copy, security_type: str = "TrustedLaunchSupported"):
    base = catalog_copy / "base-dsvm.yaml"
    text = base.read_text()
    assert "    accelerated_networking: true\n" in text
    base.write_text(text.replace("    accelerated_networking: true\n",
                                 f"    accelerated_networking: true\n    security_type: {security_type}\n"))
    return load_catalog(catalog_copy)


def _secure_boot_settings(target) -> dict[str, object]:
    """Secure Boot / vTPM as each format sets them (None: the format sets nothing)."""
    tf_vm = _tf_vm(_terraform(render(target, "terraform")))
    arm_vm = json.loads(render(target, "arm"))["resources"][0]["properties"].get("securityProfile")
    batch = json.loads(render(target, "batch"))["virtualMachineConfiguration"].get("securityProfile")
    bicep = render(target, "bicep")
    cyclecloud = render(target, "cyclecloud")
    cli = render(target, "cli")
    out: dict[str, object] = {
        "cli": (re.search(r"--enable-secure-boot (\w+)", cli)[1], re.search(r"--enable-vtpm (\w+)", cli)[1])
        if "--enable-secure-boot" in cli else None,
        "arm": (str(arm_vm["uefiSettings"]["secureBootEnabled"]).lower(),
                str(arm_vm["uefiSettings"]["vTpmEnabled"]).lower()) if arm_vm else None,
        "bicep": (re.search(r"secureBootEnabled: (\w+)", bicep)[1], re.search(r"vTpmEnabled: (\w+)", bicep)[1])
        if "secureBootEnabled" in bicep else None,
        "terraform": (str(tf_vm["secure_boot_enabled"]).lower(), str(tf_vm["vtpm_enabled"]).lower())
        if "secure_boot_enabled" in tf_vm else None,
        "batch": (str(batch["uefiSettings"]["secureBootEnabled"]).lower(),
                  str(batch["uefiSettings"]["vTpmEnabled"]).lower()) if batch else None,
        "cyclecloud": (re.search(r"EnableSecureBoot = (\w+)", cyclecloud)[1],
                       re.search(r"EnableVTPM = (\w+)", cyclecloud)[1]) if "EnableSecureBoot" in cyclecloud else None,
    }
    if target.image.purpose.value == "train":
        vmss = json.loads(render(target, "vmss-arm"))["resources"][0]["properties"]["virtualMachineProfile"]
        uefi = vmss["securityProfile"]["uefiSettings"] if "securityProfile" in vmss else None
        out["vmss-arm"] = (str(uefi["secureBootEnabled"]).lower(), str(uefi["vTpmEnabled"]).lower()) if uefi else None
        vmss_cli = render(target, "vmss-cli")
        out["vmss-cli"] = (re.search(r"--enable-secure-boot (\w+)", vmss_cli)[1], "true") \
            if "--enable-secure-boot" in vmss_cli else None
        hcl = _terraform(render(target, "vmss-terraform"))
        tf_vmss = next(b["azurerm_linux_virtual_machine_scale_set"]["vmss"] for b in hcl["resource"])
        out["vmss-terraform"] = (str(tf_vmss["secure_boot_enabled"]).lower(), str(tf_vmss["vtpm_enabled"]).lower()) \
            if "secure_boot_enabled" in tf_vmss else None
    return out


def test_standard_images_set_no_secure_boot_anywhere():
    settings = _secure_boot_settings(_target("ndh100-train"))
    assert set(settings.values()) == {None}, settings
    assert "--security-type Standard" in render(_target("ndh100-train"), "cli")


def test_unsigned_dkms_modules_deploy_with_secure_boot_off_and_vtpm_on_in_every_format(catalog_copy):
    catalog = _trusted(catalog_copy)
    target = resolve_target(catalog, "ndh100-train", None, None, False, None)
    assert target.dkms_modules == ["nvidia_driver", "doca_ofed"]
    settings = _secure_boot_settings(target)
    assert set(settings.values()) == {("false", "true")}, settings
    why = "DKMS and signed with a key no deployed VM has enrolled"
    for fmt in ("cli", "bicep", "terraform", "cyclecloud", "vmss-cli", "vmss-bicep", "vmss-terraform",
                "vmss-cyclecloud"):
        assert any(why in line for line in render(target, fmt).splitlines() if line.lstrip()[:2] in ("# ", "//")), fmt
    for fmt in ("arm", "vmss-arm"):
        assert any(why in note for note in json.loads(render(target, fmt))["metadata"]["notes"]), fmt
    assert why in json.loads(render(target, "batch"))["metadata"][0]["value"]
    assert json.loads(render(target, "batch"))["virtualMachineConfiguration"]["securityProfile"]["securityType"] \
        == "trustedLaunch"
    assert "SecurityType = TrustedLaunch" in render(target, "cyclecloud")


def test_images_without_dkms_modules_keep_secure_boot_on(catalog_copy):
    catalog = _trusted(catalog_copy, "TrustedLaunch")
    target = resolve_target(catalog, "cpu-train", None, None, False, None)
    assert target.dkms_modules == [] and target.secure_boot
    settings = _secure_boot_settings(target)
    assert set(settings.values()) == {("true", "true")}, settings


def test_scale_set_formats_for_every_training_image():
    assert TRAINING and INFERENCE
    for name in TRAINING:
        target = _target(name, instances=4)
        arm = json.loads(render(target, "vmss-arm"))
        vmss = arm["resources"][0]
        assert vmss["type"] == "Microsoft.Compute/virtualMachineScaleSets"
        assert vmss["properties"]["singlePlacementGroup"] is target.infiniband
        assert vmss["properties"]["orchestrationMode"] == "Uniform"
        nic = vmss["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
        assert nic["properties"]["enableAcceleratedNetworking"] is target.accelerated_networking
        assert arm["parameters"]["instanceCount"]["defaultValue"] == 4
        hcl = _terraform(render(target, "vmss-terraform"))
        tf = next(b["azurerm_linux_virtual_machine_scale_set"]["vmss"] for b in hcl["resource"])
        assert tf["single_placement_group"] is target.infiniband and tf["instances"] == 4
        cli = render(target, "vmss-cli")
        assert f"--single-placement-group {str(target.infiniband).lower()}" in cli and "--instance-count 4" in cli
        cc = render(target, "vmss-cyclecloud")
        assert "Extends = nodearraybase" in cc and f"slurm.partition = {name}" in cc
        assert ("Azure.SinglePlacementGroup = true" in cc) is target.infiniband
        assert "resource vmss 'Microsoft.Compute/virtualMachineScaleSets@" in render(target, "vmss-bicep")


def test_scale_set_formats_refuse_inference_images(run_cli):
    result = run_cli("reference", INFERENCE[0], "--format", "vmss-arm")
    assert result.code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert "training" in result.stderr and "vmss-arm" in result.stderr


def test_infiniband_scale_sets_stay_in_one_placement_group(run_cli):
    ib = next(n for n in TRAINING if _target(n).infiniband)
    too_many = run_cli("reference", ib, "--format", "vmss-cli", "--instances", "101")
    assert too_many.code == 2 and "--instances" in too_many.stderr and "100" in too_many.stderr
    ok = run_cli("reference", ib, "--format", "vmss-cli", "--instances", "100")
    assert ok.code == 0 and "--instance-count 100" in ok.stdout
    zero = run_cli("reference", ib, "--format", "vmss-cli", "--instances", "0")
    assert zero.code == 2 and "Traceback" not in zero.stderr


def test_terraform_pins_the_azurerm_provider():
    for fmt in ("terraform", "vmss-terraform"):
        doc = _terraform(render(_target("ndh100-train"), fmt))
        azurerm = doc["terraform"][0]["required_providers"][0]["azurerm"]
        assert azurerm == {"source": "hashicorp/azurerm", "version": "~> 4.55.0"}


def test_signed_prebuilt_nvidia_modules_keep_secure_boot_on():
    """Ubuntu's Canonical-signed NVIDIA modules are no DKMS module (the secure-boot rule's own exception); the
    target is built directly: validate's other rules (driver vs CUDA) are not this test's concern."""
    from builder.reference import Target

    model = CATALOG.model("nca100-infer")
    components = model.components.model_copy(update={
        "nvidia_driver": model.components.nvidia_driver.model_copy(update={"modules": "signed-prebuilt"})})
    features = model.gallery.features.model_copy(update={"security_type": "TrustedLaunch"})
    gallery = model.gallery.model_copy(update={"features": features})
    image = model.model_copy(update={"components": components, "gallery": gallery})
    size = image.target_skus[0]
    target = Target(image, None, None, size, CATALOG.skus[size])
    assert target.dkms_modules == [] and target.secure_boot
    assert set(_secure_boot_settings(target).values()) == {("true", "true")}
    dkms = Target(image.model_copy(update={"components": model.components}), None, None, size, CATALOG.skus[size])
    assert dkms.dkms_modules == ["nvidia_driver"] and not dkms.secure_boot
