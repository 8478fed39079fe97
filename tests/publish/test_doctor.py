"""``builder doctor`` against the ARM emulator (usages, Resource SKUs, permissions and marketplace terms served by
builder/emulator/routes_doctor.py) and with a PATH that lacks a tool.

The Azure target's tool checks need Packer >= 1.14 with the azure plugin ~> 2, which cannot be built here
(docs/azure.md, The real tools): those tests point ``PACKER`` at a stand-in script that answers ``version`` and
``plugins installed`` as Packer 1.16 does. Family names and quota numbers are test data, not Azure's.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

IMAGE = "ndh100-train"  # build Standard_D16ds_v5 (base-dsvm), target Standard_ND96isr_H100_v5, hardware suite
BUILD_SIZE, TARGET_SIZE = "Standard_D16ds_v5", "Standard_ND96isr_H100_v5"
BUILD_FAMILY, TARGET_FAMILY = "standardDDSv5Family", "standardNDSH100v5Family"
REGION = "eastus2"
RG = "rg-ai-images"

FAKE_PACKER = """#!/bin/sh
case "$1" in
  version) echo "Packer v1.16.0" ;;
  plugins) echo "/plugins/github.com/hashicorp/azure/packer-plugin-azure_v2.5.0_x5.0_linux_amd64"
           echo "/plugins/github.com/hashicorp/ansible/packer-plugin-ansible_v1.1.2_x5.0_linux_amd64" ;;
esac
"""


@pytest.fixture
def doctor_env(arm_emulator, tmp_path) -> dict[str, str]:
    """Environment for the Azure target: the emulator, a stand-in Packer, the venv's ansible-playbook on PATH."""
    fake = tmp_path / "bin" / "packer"
    fake.parent.mkdir()
    fake.write_text(FAKE_PACKER)
    fake.chmod(0o755)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return arm_emulator.env(PACKER=str(fake), PATH=path)


def _put(emulator, path: str, body: dict) -> None:
    emulator._control("PUT", f"doctor/{path}", body)


def seed(emulator, target_limit: int = 200, target_used: int = 0) -> None:
    _put(emulator, "skus", {"skus": [
        {"name": BUILD_SIZE, "family": BUILD_FAMILY, "vcpus": 16, "locations": [REGION]},
        {"name": TARGET_SIZE, "family": TARGET_FAMILY, "vcpus": 96, "locations": [REGION]}]})
    _put(emulator, f"usages/{REGION}", {"usages": [
        {"name": "cores", "localized": "Total Regional vCPUs", "current": 0, "limit": 1000},
        {"name": BUILD_FAMILY, "localized": "Standard DDSv5 Family vCPUs", "current": 0, "limit": 100},
        {"name": TARGET_FAMILY, "localized": "Standard NDSH100v5 Family vCPUs", "current": target_used,
         "limit": target_limit}]})


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def cli(*args: str, env: dict[str, str]) -> Outcome:
    """``builder ARGS`` in this process (click's runner: the same command group, exit codes and streams as the
    console script, without a new interpreter per call)."""
    from click.testing import CliRunner

    from builder.cli import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})
    return Outcome(result.exit_code, result.stdout, result.stderr)


def doctor(run_cli, env, *args: str, image: str | None = IMAGE, catalog: Path | None = None):
    extra = ["--catalog", str(catalog)] if catalog else []
    result = cli(*extra, "doctor", *([image] if image else []), "--target", "azure", "--json", *args, env=env)
    return result, json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


def by_name(data: dict, prefix: str) -> list[dict]:
    return [c for c in data["checks"] if c["name"].startswith(prefix)]


def test_all_ok_exits_0_and_json_shape(run_cli, arm_emulator, doctor_env):
    seed(arm_emulator)
    result, data = doctor(run_cli, doctor_env)
    assert result.code == 0, result.stdout + result.stderr
    assert set(data) == {"image", "target", "ok", "misses", "checks"}
    assert data["image"] == IMAGE and data["target"] == "azure" and data["ok"] is True and data["misses"] == 0
    for check in data["checks"]:
        assert set(check) == {"name", "ok", "found", "fix", "group"}
        assert check["ok"] is True and check["fix"] == ""
    names = [c["name"] for c in data["checks"]]
    for expected in ("packer", "plugin azure", "plugin ansible", "ansible-playbook", "subscription", "credential",
                     "subscription readable", "region", f"quota {BUILD_SIZE} (build VM)",
                     f"quota {TARGET_SIZE} (hardware validation)", f"rights on {RG}",
                     "definition ai_images/ndh100-train"):
        assert expected in names, names
    assert "will be created" in by_name(data, "definition")[0]["found"]
    assert "doctor: reading VM sizes and vCPU quota in eastus2" in result.stderr  # progress on stderr


def test_text_table(run_cli, arm_emulator, doctor_env):
    seed(arm_emulator, target_limit=10)
    result = run_cli("doctor", IMAGE, "--target", "azure", env=doctor_env)  # the console script, once
    assert result.code == 1
    assert "how to fix" in result.stdout and "MISS" in result.stdout and "1 miss(es)" in result.stdout


def test_quota_too_small_for_the_target_size(run_cli, arm_emulator, doctor_env):
    seed(arm_emulator, target_limit=100, target_used=40)
    result, data = doctor(run_cli, doctor_env)
    assert result.code == 1
    [miss] = [c for c in data["checks"] if not c["ok"]]
    assert miss["name"] == f"quota {TARGET_SIZE} (hardware validation)"
    assert TARGET_FAMILY in miss["found"] and "40/100 used, 60 free" in miss["found"] and "needs 96" in miss["found"]
    assert "quota increase" in miss["fix"] and TARGET_FAMILY in miss["fix"] and "136 vCPUs" in miss["fix"]


def test_size_not_offered_in_region(run_cli, arm_emulator, doctor_env):
    seed(arm_emulator)
    _put(arm_emulator, "skus", {"skus": [{"name": BUILD_SIZE, "family": BUILD_FAMILY, "vcpus": 16,
                                          "locations": [REGION]}]})
    result, data = doctor(run_cli, doctor_env)
    assert result.code == 1
    [miss] = [c for c in data["checks"] if not c["ok"]]
    assert "not offered in eastus2" in miss["found"]


def test_no_write_permission(run_cli, arm_emulator, doctor_env):
    from builder.azure.clients import resource_client

    seed(arm_emulator)
    resource_client(arm_emulator.settings).resource_groups.create_or_update(RG, {"location": REGION})
    _put(arm_emulator, "permissions", {"permissions": [{"actions": ["*/read"], "notActions": []}]})
    result, data = doctor(run_cli, doctor_env)
    assert result.code == 1
    [miss] = [c for c in data["checks"] if not c["ok"]]
    assert miss["name"] == f"rights on {RG}"
    assert "Microsoft.Compute/galleries/images/versions/write" in miss["found"]
    assert "Contributor" in miss["fix"]


def test_not_actions_take_a_write_away(run_cli, arm_emulator, doctor_env):
    from builder.azure.clients import resource_client

    seed(arm_emulator)
    resource_client(arm_emulator.settings).resource_groups.create_or_update(RG, {"location": REGION})
    _put(arm_emulator, "permissions", {"permissions": [
        {"actions": ["*"], "notActions": ["Microsoft.Compute/galleries/images/versions/*"]}]})
    result, data = doctor(run_cli, doctor_env)
    assert result.code == 1
    assert "versions/write" in by_name(data, "rights")[0]["found"]
    _put(arm_emulator, "permissions", {"permissions": [{"actions": ["*"], "notActions": []}]})
    result, data = doctor(run_cli, doctor_env)
    assert result.code == 0 and "granted" in by_name(data, "rights")[0]["found"]


def _with_plan(catalog_copy: Path) -> Path:
    image = catalog_copy / f"{IMAGE}.yaml"
    image.write_text(image.read_text() + "base:\n  marketplace:\n    plan: {name: plan-a, product: offer-a, "
                     "publisher: pub-a}\n")
    return catalog_copy


def test_plan_terms_not_accepted(run_cli, arm_emulator, doctor_env, catalog_copy):
    seed(arm_emulator)
    catalog = _with_plan(catalog_copy)
    result, data = doctor(run_cli, doctor_env, catalog=catalog)
    assert result.code == 1, result.stderr
    [miss] = [c for c in data["checks"] if not c["ok"]]
    assert miss["name"] == "terms pub-a:offer-a:plan-a" and "not accepted" in miss["found"]
    assert miss["fix"] == "az vm image terms accept --publisher pub-a --offer offer-a --plan plan-a"
    _put(arm_emulator, "agreements/pub-a/offer-a/plan-a", {"accepted": True})
    result, data = doctor(run_cli, doctor_env, catalog=catalog)
    assert result.code == 0 and by_name(data, "terms")[0]["found"] == "accepted for this subscription"


def _definition(emulator, generation: str, security_type: str | None) -> None:
    from builder.azure.clients import compute_client, resource_client

    settings = emulator.settings
    resource_client(settings).resource_groups.create_or_update(RG, {"location": REGION})
    compute = compute_client(settings)
    compute.galleries.begin_create_or_update(RG, "ai_images", {"location": REGION, "properties": {}}).result()
    features = [{"name": "IsAcceleratedNetworkSupported", "value": "True"},
                {"name": "DiskControllerTypes", "value": "SCSI, NVMe"}]
    if security_type:
        features.append({"name": "SecurityType", "value": security_type})
    compute.gallery_images.begin_create_or_update(RG, "ai_images", IMAGE, {"location": REGION, "properties": {
        "osType": "Linux", "osState": "Generalized", "hyperVGeneration": generation, "architecture": "x64",
        "identifier": {"publisher": "contoso-platform", "offer": "ai-images", "sku": "ndh100-train"},
        "features": features}}).result()


def test_definition_compatible(run_cli, arm_emulator, doctor_env):
    seed(arm_emulator)
    _definition(arm_emulator, "V2", None)
    result, data = doctor(run_cli, doctor_env)
    assert result.code == 0, result.stdout
    assert by_name(data, "definition")[0]["found"].startswith("compatible (V2, Standard)")


@pytest.mark.parametrize("generation, security_type, named", [("V2", "TrustedLaunch", "features"),
                                                              ("V1", None, "hyperVGeneration")])
def test_definition_with_another_security_type_or_generation(run_cli, arm_emulator, doctor_env, generation,
                                                             security_type, named):
    seed(arm_emulator)
    _definition(arm_emulator, generation, security_type)
    result, data = doctor(run_cli, doctor_env)
    assert result.code == 1
    [miss] = [c for c in data["checks"] if not c["ok"]]
    assert miss["name"] == "definition ai_images/ndh100-train"
    assert f"'{named}'" in miss["found"] and (security_type or generation) in miss["found"]
    assert "gallery.definition" in miss["fix"]


def test_token_failure_names_the_fix_without_a_dump(arm_emulator, doctor_env, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError
    from click.testing import CliRunner

    from builder.azure.settings import StaticTokenCredential
    from builder.cli import app

    def refuse(self, *scopes, **kwargs):
        raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided: s3cr3t-value-xyz")

    monkeypatch.setattr(StaticTokenCredential, "get_token", refuse)
    for key, value in doctor_env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["doctor", IMAGE, "--target", "azure", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    [miss] = [c for c in data["checks"] if not c["ok"]]
    assert miss["name"] == "credential" and "ClientAuthenticationError" in miss["found"]
    assert "az login" in miss["fix"]
    assert "s3cr3t" not in result.output and "AADSTS" not in result.output and "Traceback" not in result.output
    assert data["checks"][-1]["name"] == "credential"  # nothing that needs a token is tried after it


def test_no_subscription_is_a_miss(run_cli, doctor_env):
    env = {**doctor_env, "AZURE_SUBSCRIPTION_ID": ""}
    result, data = doctor(run_cli, env)
    assert result.code == 1
    assert data["checks"][-1]["name"] == "subscription" and "AZURE_SUBSCRIPTION_ID" in data["checks"][-1]["fix"]


def test_unknown_image_is_exit_2(run_cli, doctor_env):
    result = cli("doctor", "no-such-image", "--target", "azure", env=doctor_env)
    assert result.code == 2 and "no-such-image" in result.stderr and "Traceback" not in result.stderr


def test_azure_tools_without_image(run_cli, doctor_env):
    result, data = doctor(run_cli, doctor_env, image=None)
    assert result.code == 0, result.stdout
    assert [c["name"] for c in data["checks"]] == ["packer", "plugin azure", "plugin ansible", "ansible-playbook"]


def test_packer_plugin_missing(run_cli, doctor_env, tmp_path):
    fake = Path(doctor_env["PACKER"])
    fake.write_text(FAKE_PACKER.replace("azure_v2.5.0", "azure_v1.4.5"))
    result, data = doctor(run_cli, doctor_env, image=None)
    assert result.code == 1
    [miss] = [c for c in data["checks"] if not c["ok"]]
    assert miss["name"] == "plugin azure" and "installed: 1.4.5" in miss["found"] and "~> 2" in miss["found"]
    assert "packer plugins install github.com/hashicorp/azure" in miss["fix"]


def test_local_tools_with_a_path_lacking_a_tool(run_cli, tmp_path):
    from builder.local.preflight import BOOT_TOOLS, TOOLS

    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    for tool in {**TOOLS, **BOOT_TOOLS}:
        found = shutil.which(tool)
        if found and tool != "qemu-img":
            (bin_dir / tool).symlink_to(found)
    result = run_cli("doctor", "--json", env={"PATH": str(bin_dir)})
    assert result.code == 1
    data = json.loads(result.stdout)
    [qemu_img] = by_name(data, "qemu-img")
    assert qemu_img["ok"] is False and "not found" in qemu_img["found"]
    assert ".ci/setup" in qemu_img["fix"] and "apt-get install qemu-utils" in qemu_img["fix"]


def test_satisfies_constraints():
    from builder.doctor.local import satisfies

    assert satisfies("2.5.0", "~> 2") and not satisfies("1.4.5", "~> 2") and not satisfies("3.0.0", "~> 2")
    assert satisfies("1.1.2", "~> 1.1") and not satisfies("1.0.9", "~> 1.1") and not satisfies("2.0.0", "~> 1.1")
    assert satisfies("1.16.0", ">= 1.14.0") and not satisfies("1.6.6", ">= 1.14.0")
    assert satisfies("1.2.3", ">= 1.0, < 2") and not satisfies("2.0.0", ">= 1.0, < 2")
