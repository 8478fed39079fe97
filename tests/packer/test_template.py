"""The Azure template: parsed with python-hcl2 and checked against the plugins' documented names; packer fmt
clean; a var file renders for every buildable image and fits the template's variable declarations."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import hcl2
import pytest

from builder.catalog.loader import load_catalog
from builder.packer.render import SBOM_FILE, SBOM_SCRIPT, TEMPLATE_FILES, var_file_name, write_packer_files
from builder.stack.layers import FINAL_ROLES
from builder.stack.tags import INPUTS_DIGEST as DIGEST_TAG
from tests.conftest import REPO
from tests.packer import plugin_docs as docs

PACKER_DIR = REPO / "images" / "packer"
CATALOG = load_catalog(REPO / "images")
BUILDABLE = sorted(i.name for i in CATALOG.buildable())


def _load(name: str) -> dict:
    with (PACKER_DIR / name).open(encoding="utf-8") as handle:
        return hcl2.load(handle)


def _label(key: str) -> str:
    return key.strip('"')


def _attrs(block: dict) -> set[str]:
    return {k for k in block if not k.startswith("__") and k != "dynamic"}


def _dynamic(block: dict) -> list[tuple[str, dict]]:
    found = []
    for entry in block.get("dynamic", []):
        for name, body in entry.items():
            content = body["content"][0]
            found.append((_label(name), content))
    return found


def _unquote(value) -> str:
    return value.strip('"') if isinstance(value, str) else value


TEMPLATE = _load("azure.pkr.hcl")
VARIABLES = {_label(name): body for entry in _load("variables.pkr.hcl")["variable"] for name, body in entry.items()}


def test_required_plugins_pin_azure_2_and_ansible_1():
    (packer,) = TEMPLATE["packer"]
    assert _attrs(packer) <= docs.PACKER_BLOCK
    plugins = packer["required_plugins"][0]
    assert _unquote(plugins["azure"]["source"]) == "github.com/hashicorp/azure"
    assert _unquote(plugins["azure"]["version"]) == "~> 2"
    assert _unquote(plugins["ansible"]["source"]) == "github.com/hashicorp/ansible"
    assert _unquote(plugins["ansible"]["version"]) == "~> 1"


def test_azure_arm_source_uses_documented_names():
    sources = [(_label(kind), _label(name), body) for entry in TEMPLATE["source"] for kind, named in entry.items()
               for name, body in named.items()]
    assert [(k, n) for k, n, _ in sources] == [("azure-arm", "image")]
    body = sources[0][2]
    unknown = _attrs(body) - docs.AZURE_ARM
    assert not unknown, f"not azure-arm options: {unknown}"
    blocks = _dynamic(body)
    assert {name for name, _ in blocks} == {"plan_info", "shared_image_gallery", "spot",
                                            "shared_image_gallery_destination"}
    for name, content in blocks:
        assert _attrs(content) - set(docs.AZURE_ARM_NESTED.get(name, {})) <= docs.AZURE_ARM_BLOCKS[name], name
        for nested, nested_content in _dynamic(content):
            assert _attrs(nested_content) <= docs.AZURE_ARM_NESTED[name][nested]


def test_build_block_provisioners_and_post_processor_use_documented_names():
    (build,) = TEMPLATE["build"]
    assert _attrs(build) <= docs.BUILD_BLOCK
    assert [_unquote(s) for s in build["sources"]] == ["source.azure-arm.image"]
    steps = [(_label(kind), body) for entry in build["provisioner"] for kind, body in entry.items()]
    for kind, body in steps:
        assert _attrs(body) <= docs.PROVISIONERS[kind], f"{kind}: {_attrs(body) - docs.PROVISIONERS[kind]}"
    kinds = [k for k, _ in steps]
    # Wait for cloud-init and apt, Ansible, verification (upload, run, download JUnit, fail on result), SBOM
    # (write, download, clean up), generalize, deprovision - in order.
    assert kinds == ["shell", "ansible", "shell", "file", "shell", "file", "shell", "shell", "file", "shell", "ansible",
                     "shell"]
    assert steps[0][1]["script"] == "${var.wait_script}"
    assert _unquote(steps[5][1]["direction"]) == "download" and "junit" in steps[5][1]["source"]
    assert "exit $rc" in steps[6][1]["inline"][0]
    assert steps[7][1]["inline"] == ["${var.sbom_command}"]
    sbom = steps[8][1]
    assert _unquote(sbom["direction"]) == "download" and _unquote(sbom["source"]).endswith(f"/{SBOM_FILE}")
    assert sbom["destination"] == "${var.sbom_file}"
    assert "rm -rf" in steps[9][1]["inline"][0]
    assert "waagent -force -deprovision+user" in steps[-1][1]["inline"][0]
    first, final = steps[1][1], steps[10][1]
    assert any("--skip-tags=" in a for a in first["extra_arguments"])
    assert any("--tags=" in a for a in final["extra_arguments"])
    for entry in build["post-processor"]:
        for kind, body in entry.items():
            assert _attrs(body) <= docs.POST_PROCESSORS[_label(kind)]


def test_every_variable_is_declared_and_used():
    text = "\n".join((PACKER_DIR / name).read_text() for name in TEMPLATE_FILES)
    used = set(re.findall(r"\bvar\.([a-z_]+)", (PACKER_DIR / "azure.pkr.hcl").read_text()))
    assert used <= set(VARIABLES), f"undeclared: {used - set(VARIABLES)}"
    assert set(VARIABLES) <= used, f"unused: {set(VARIABLES) - used}"
    assert "oidc_request_token" in text and VARIABLES["oidc_request_token"]["sensitive"] is True


def test_template_is_packer_fmt_clean(packer_path):
    proc = subprocess.run([packer_path, "fmt", "-check", "-diff", str(PACKER_DIR)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _object_keys(type_expr: str) -> set[str]:
    return set(re.findall(r"(\w+)\s*=", type_expr))


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict]:
    out = {}
    for name in BUILDABLE:
        folder = tmp_path_factory.mktemp(name)
        written = write_packer_files(CATALOG, name, folder, commit="0" * 40)
        assert {p.name for p in written} >= {*TEMPLATE_FILES, var_file_name(name)}
        out[name] = json.loads((folder / var_file_name(name)).read_text())
    return out


@pytest.mark.parametrize("image", BUILDABLE)
def test_var_file_fits_the_declarations(rendered, image):
    values = rendered[image]
    assert set(values) <= set(VARIABLES), f"undeclared: {set(values) - set(VARIABLES)}"
    required = {name for name, body in VARIABLES.items() if "default" not in body}
    assert required <= set(values), f"missing: {required - set(values)}"
    for name, value in values.items():
        declared = VARIABLES[name].get("type", "")
        if "object(" in declared and value is not None:
            assert _keys(value) == _object_keys(declared), name
    model = CATALOG.model(image)
    assert values["location"] == model.build.region and values["vm_size"] == model.build.vm_size
    assert values["gallery"]["image_name"] == model.gallery.definition
    assert values["gallery"]["exclude_from_latest"] is model.gallery.staging.exclude_from_latest
    assert values["azure_tags"]["builder.image"] == image and values["azure_tags"]["builder.version"]
    assert re.fullmatch(r"[0-9a-f]{64}", values["azure_tags"][DIGEST_TAG])
    assert len(values["azure_tags"]) <= 50 and all(len(v) <= 256 for v in values["azure_tags"].values())
    assert ("marketplace" in values) != ("base_gallery_image" in values)


@pytest.mark.parametrize("image", BUILDABLE)
def test_no_secret_in_rendered_files(rendered, image, tmp_path):
    text = json.dumps(rendered[image]).lower()
    for word in ("secret", "password", "token", "client_id", "tenant_id", "subscription_id"):
        assert word not in text


def test_rendered_folder_holds_template_copy(tmp_path):
    written = write_packer_files(CATALOG, "ndh100-train", tmp_path, commit="0" * 40)
    for name in TEMPLATE_FILES:
        assert (tmp_path / name).read_text() == (PACKER_DIR / name).read_text()
    bundle = next(p for p in written if p.is_dir())
    assert (bundle / "verify-on-vm.sh").exists() and (bundle / "images" / "skus.yaml").exists()
    assert (bundle / SBOM_SCRIPT).exists() and (bundle / "src" / "builder" / "local" / "sbom.py").exists()
    assert (bundle / "src" / "builder" / "cli.py").exists()
    assert all("==" in line for line in (bundle / "requirements.txt").read_text().split())


def test_rendered_dir_is_packer_fmt_clean(packer_path, tmp_path):
    write_packer_files(CATALOG, "ndh100-train", tmp_path, commit="0" * 40)
    proc = subprocess.run([packer_path, "fmt", "-check", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_verify_on_vm_script_is_valid_sh():
    assert subprocess.run(["sh", "-n", str(PACKER_DIR / "verify-on-vm.sh")]).returncode == 0


def test_ansible_playbook_path_points_into_repo(rendered):
    values = rendered["ndh100-train"]
    assert Path(values["ansible_playbook"]) == REPO / "ansible" / "image.yml"
    assert values["final_roles"] == list(FINAL_ROLES)
