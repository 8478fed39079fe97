"""``builder reference`` snippets deploy as printed: each is read by the tool that would take it.

- ARM/Bicep resource bodies: every property is one the Azure SDK's models know (azure-mgmt-compute
  ``VirtualMachine``/``VirtualMachineScaleSet``), and the ARM templates deploy into the emulator
  (``Microsoft.Resources/deployments``, through azure-mgmt-resource's ``ResourceManagementClient``).
- Bicep: parsed by tree-sitter-bicep (the Bicep grammar on PyPI; the Bicep CLI itself ships through GitHub releases
  and NuGet, which this project cannot reach).
- Batch: read by azure-batch's ``BatchPoolCreateOptions`` (a misspelt property such as ``nodeAgentSkuId`` is dropped).
- az CLI: every printed ``az vm create``/``az vmss create`` goes through az 2.91's own parser when ``.venv-az``
  holds azure-cli (it then stops at "Please run 'az login'", never at an argument error); without it the options
  are checked with shlex against the option names of ``az vm create -h``/``az vmss create -h`` of azure-cli 2.91.0.
"""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from builder.catalog.loader import load_catalog
from builder.reference import render, resolve_target
from tests.conftest import REPO

CATALOG = load_catalog(REPO / "images")
IMAGES = sorted(i.name for i in CATALOG.buildable())
TRAINING = sorted(n for n in IMAGES if CATALOG.model(n).purpose.value == "train")
AZ = REPO / ".venv-az" / "bin" / "az"
# Options the snippets use, as `az vm create -h` / `az vmss create -h` of azure-cli 2.91.0 list them.
AZ_OPTIONS = {
    "vm": {"--resource-group", "--name", "--image", "--size", "--admin-username", "--generate-ssh-keys",
           "--security-type", "--enable-secure-boot", "--enable-vtpm", "--accelerated-networking", "--priority",
           "--eviction-policy", "--max-price", "--plan-name", "--plan-product", "--plan-publisher"},
    "vmss": {"--resource-group", "--name", "--image", "--vm-sku", "--instance-count", "--orchestration-mode",
             "--single-placement-group", "--disable-overprovision", "--upgrade-policy-mode", "--subnet", "--lb",
             "--admin-username", "--generate-ssh-keys", "--security-type", "--enable-secure-boot", "--enable-vtpm",
             "--accelerated-networking", "--priority", "--eviction-policy", "--max-price", "--plan-name",
             "--plan-product", "--plan-publisher"},
}


def _target(name: str, catalog=CATALOG, **kw):
    return resolve_target(catalog, name, kw.get("version"), None, kw.get("spot", False), kw.get("subscription"))


def _trusted_catalog(catalog_copy):
    base = catalog_copy / "base-dsvm.yaml"
    base.write_text(base.read_text().replace("    accelerated_networking: true\n",
                                             "    accelerated_networking: true\n"
                                             "    security_type: TrustedLaunchSupported\n"))
    return load_catalog(catalog_copy)


def _variants(catalog_copy) -> list:
    """Every image, plus Spot and Trusted Launch (Secure Boot off: DKMS modules; on: none) variants."""
    trusted = _trusted_catalog(catalog_copy)
    return ([_target(n) for n in IMAGES] + [_target("ndh100-train", spot=True), _target("cpu-train", spot=True)]
            + [_target("ndh100-train", trusted), _target("cpu-train", trusted)])


# ---------------------------------------------------------------- SDK models


def unknown_properties(model_cls, data: dict, path: str = "") -> list[str]:
    """Paths of the keys in ``data`` that ``model_cls`` (an azure-core generated model) has no field for."""
    obj = model_cls(data)
    fields = {rf._rest_name: attr for attr, rf in obj._attr_to_rest_field.items()}
    out = []
    for key, value in data.items():
        if key not in fields:
            out.append(f"{path}/{key}")
            continue
        sub = getattr(obj, fields[key])
        if isinstance(value, dict) and hasattr(sub, "_attr_to_rest_field"):
            out += unknown_properties(type(sub), value, f"{path}/{key}")
        elif isinstance(value, list) and isinstance(sub, list):
            out += [p for i, (v, s) in enumerate(zip(value, sub, strict=True))
                    if isinstance(v, dict) and hasattr(s, "_attr_to_rest_field")
                    for p in unknown_properties(type(s), v, f"{path}/{key}/{i}")]
    return out


def test_the_model_check_finds_a_misspelt_property():
    from azure.batch.models import BatchPoolCreateOptions

    assert unknown_properties(BatchPoolCreateOptions, {"id": "p", "virtualMachineConfiguration": {
        "imageReference": {}, "nodeAgentSkuId": "x"}}) == ["/virtualMachineConfiguration/nodeAgentSkuId"]


def test_arm_and_bicep_resources_carry_only_properties_the_compute_models_know(catalog_copy):
    from azure.mgmt.compute.models import VirtualMachine, VirtualMachineScaleSet

    for target in _variants(catalog_copy):
        formats = [("arm", VirtualMachine)] + ([("vmss-arm", VirtualMachineScaleSet)]
                                               if target.image.purpose.value == "train" else [])
        for fmt, model in formats:
            template = json.loads(render(target, fmt))
            resource = {k: v for k, v in template["resources"][0].items() if k != "apiVersion"}
            assert unknown_properties(model, resource) == [], (target.image.name, fmt)
            profile = resource["properties"].get("virtualMachineProfile", resource["properties"])
            assert profile["osProfile"]["adminUsername"] == "[parameters('adminUsername')]"


def test_batch_pools_read_back_through_the_batch_models(catalog_copy):
    from azure.batch.models import BatchPoolCreateOptions

    for target in _variants(catalog_copy):
        data = json.loads(render(target, "batch"))
        assert unknown_properties(BatchPoolCreateOptions, data) == [], target.image.name
        pool = BatchPoolCreateOptions(data)
        config = pool.virtual_machine_configuration
        assert config.node_agent_sku_id.startswith("batch.node.")
        assert config.image_reference.virtual_machine_image_id == target.image_id()
        if target.security_type == "TrustedLaunch":
            assert config.security_profile.security_type == "trustedLaunch"
            assert config.security_profile.uefi_settings.secure_boot_enabled is target.secure_boot
            assert config.security_profile.uefi_settings.vtpm_enabled is True
        else:
            assert config.security_profile is None


# ---------------------------------------------------------------- Bicep grammar


def _bicep_errors(text: str) -> list[str]:
    import tree_sitter
    import tree_sitter_bicep

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))
    tree = parser.parse(text.encode())
    bad, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            bad.append(f"{node.type} at {node.start_point}: {text.encode()[node.start_byte:node.end_byte][:60]!r}")
        stack.extend(node.children)
    return bad


def test_the_bicep_check_finds_a_syntax_error():
    assert _bicep_errors("param a string\nresource vm 'x@1' = {\n  name: a\n  properties: {\n")


def test_bicep_snippets_parse_with_the_bicep_grammar(catalog_copy):
    for target in _variants(catalog_copy):
        formats = ["bicep"] + (["vmss-bicep"] if target.image.purpose.value == "train" else [])
        for fmt in formats:
            text = render(target, fmt)
            assert _bicep_errors(text) == [], (target.image.name, fmt, text)


# ---------------------------------------------------------------- az CLI


def _az_commands(catalog_copy) -> list[tuple[str, str]]:
    out = []
    for target in _variants(catalog_copy):
        for fmt in ["cli"] + (["vmss-cli"] if target.image.purpose.value == "train" else []):
            out.append((f"{target.image.name} {fmt} spot={target.spot} {target.security_type}", render(target, fmt)))
    return out


def _words(snippet: str) -> list[str]:
    env = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000", "RESOURCE_GROUP": "rg",
           "SUBNET_ID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
                        "Microsoft.Network/virtualNetworks/vnet/subnets/default"}
    command = "\n".join(line for line in snippet.splitlines() if not line.startswith("#"))
    words = shlex.split(command.replace("\\\n", " "))
    return [w.replace("${AZURE_SUBSCRIPTION_ID}", env["AZURE_SUBSCRIPTION_ID"]).replace(
        "${RESOURCE_GROUP}", env["RESOURCE_GROUP"]).replace("${SUBNET_ID}", env["SUBNET_ID"]) for w in words]


def test_az_commands_use_only_documented_options(catalog_copy):
    for label, snippet in _az_commands(catalog_copy):
        words = _words(snippet)
        assert words[0] == "az" and words[2] == "create", label
        options = {w for w in words if w.startswith("--")}
        assert options <= AZ_OPTIONS[words[1]], (label, options - AZ_OPTIONS[words[1]])


@pytest.mark.slow
@pytest.mark.skipif(not AZ.exists(), reason="azure-cli is not installed in .venv-az (pip install azure-cli==2.91.0)")
def test_az_parser_accepts_every_printed_command(catalog_copy, tmp_path):
    env = {"PATH": f"{AZ.parent}:/usr/bin:/bin", "AZURE_CONFIG_DIR": str(tmp_path / "az"), "HOME": str(tmp_path),
           "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_NO_COLOR": "true"}
    seen: set[tuple[str, ...]] = set()
    for label, snippet in _az_commands(catalog_copy):
        words = tuple(_words(snippet))
        if words in seen:
            continue
        seen.add(words)
        result = subprocess.run([str(AZ), *words[1:]], capture_output=True, text=True, env=env, timeout=120,
                                cwd=tmp_path)
        # Arguments parsed and validated: az then needs an account ("Please run 'az login'", exit 1);
        # an unknown option or a bad value exits 2 before that.
        assert result.returncode == 1 and "az login" in result.stderr, (label, result.returncode, result.stderr)


def test_az_parser_catches_a_bad_option(tmp_path):
    if not AZ.exists():
        pytest.skip("azure-cli is not installed in .venv-az")
    env = {"PATH": f"{AZ.parent}:/usr/bin:/bin", "AZURE_CONFIG_DIR": str(tmp_path / "az"), "HOME": str(tmp_path),
           "AZURE_CORE_COLLECT_TELEMETRY": "false"}
    bad = subprocess.run([str(AZ), "vmss", "create", "--resource-group", "rg", "--name", "n", "--single-placement",
                          "yes"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2, bad.stderr


# ---------------------------------------------------------------- ARM templates into the emulator

CONSUMER_RG = "rg-consumer"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuilderReferenceTestKey test@builder"


def _deployments(settings):
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient

    return DeploymentsMgmtClient(settings.get_credential(), settings.subscription_id, base_url=settings.base_url,
                                 connection_verify=settings.cert, polling_interval=0)


def _publish(handle, image, version: str = "2026.1129.0") -> str:
    """The gallery, the definition as publish creates it (builder.azure.gallery.definition_body) and a version."""
    from builder.azure.clients import compute_client, resource_client
    from builder.azure.gallery import definition_body

    settings = handle.settings
    g = image.gallery
    region = g.target_regions[0].name
    resources = resource_client(settings)
    compute = compute_client(settings)
    for rg in (g.resource_group, CONSUMER_RG):
        resources.resource_groups.create_or_update(rg, {"location": region})
    compute.galleries.begin_create_or_update(g.resource_group, g.gallery, {"location": region}).result()
    compute.gallery_images.begin_create_or_update(g.resource_group, g.gallery, g.definition,
                                                  definition_body(image, region)).result()
    source = (f"/subscriptions/{handle.subscription}/resourceGroups/{g.resource_group}/providers/Microsoft.Compute/"
              "images/src")
    compute.gallery_image_versions.begin_create_or_update(g.resource_group, g.gallery, g.definition, version, {
        "location": region, "properties": {"storageProfile": {"source": {"id": source}},
                                           "publishingProfile": {"targetRegions": [{"name": region}]}}}).result()
    return region


def _deploy(client, template: dict, parameters: dict, name: str):
    return client.deployments.begin_create_or_update(CONSUMER_RG, name, {"properties": {
        "mode": "Incremental", "template": template,
        "parameters": {k: {"value": v} for k, v in parameters.items()}}}).result()


def _parameters(handle, template: dict) -> dict:
    values = {"adminSshPublicKey": SSH_KEY,
              "subnetId": f"/subscriptions/{handle.subscription}/resourceGroups/{CONSUMER_RG}/providers/"
                          "Microsoft.Network/virtualNetworks/vnet/subnets/default",
              "AZURE_SUBSCRIPTION_ID": handle.subscription}
    return {k: v for k, v in values.items() if k in template["parameters"]}


@pytest.fixture
def deploy_env(arm_emulator):
    arm_emulator.configure(retry_after=0)
    return arm_emulator, _deployments(arm_emulator.settings)


@pytest.mark.parametrize("name", IMAGES)
def test_arm_templates_deploy_into_the_emulator(deploy_env, name):
    handle, client = deploy_env
    image = CATALOG.model(name)
    _publish(handle, image)
    formats = ["arm"] + (["vmss-arm"] if name in TRAINING else [])
    for subscription in (None, handle.subscription):  # the placeholder parameter, then a literal id
        for version in ("2026.1129.0", None):  # a version id, then the definition id (latest)
            target = resolve_target(CATALOG, name, version, None, False, subscription)
            for fmt in formats:
                template = json.loads(render(target, fmt))
                result = _deploy(client, template, _parameters(handle, template), f"{fmt}-{bool(subscription)}")
                assert result.properties.provisioning_state == "Succeeded", (name, fmt, version)


def test_the_deployment_refuses_a_template_without_os_profile(deploy_env):
    from azure.core.exceptions import HttpResponseError

    handle, client = deploy_env
    _publish(handle, CATALOG.model("ndh100-train"))
    template = json.loads(render(_target("ndh100-train", subscription=handle.subscription), "vmss-arm"))
    del template["resources"][0]["properties"]["virtualMachineProfile"]["osProfile"]
    with pytest.raises(HttpResponseError) as caught:
        _deploy(client, template, _parameters(handle, template), "no-os-profile")
    assert "osProfile" in str(caught.value)


def test_trusted_launch_templates_deploy_into_the_emulator(deploy_env, catalog_copy):
    handle, client = deploy_env
    trusted = _trusted_catalog(catalog_copy)
    for name in ("ndh100-train", "cpu-train"):
        image = trusted.model(name)
        _publish(handle, image)
        target = resolve_target(trusted, name, "2026.1129.0", None, False, handle.subscription)
        for fmt in ("arm", "vmss-arm"):
            template = json.loads(render(target, fmt))
            assert _deploy(client, template, _parameters(handle, template), f"tl-{name}-{fmt}"
                           ).properties.provisioning_state == "Succeeded"
