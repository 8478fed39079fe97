"""Secure Boot build path of the NVIDIA driver (issue 17): ``components.nvidia_driver.modules: signed-prebuilt``
renders Ubuntu's userspace pin instead of the CUDA repository's DKMS packages, the playbook passes the mode to
the nvidia_driver role, and the role names the signed module package for the kernel flavour and refuses what
Secure Boot would refuse. No recorded package version is assumed here (validate's refusal without records is in
tests/catalog/test_secure_boot_rule.py)."""

from __future__ import annotations

import copy
import fnmatch
import os
from pathlib import Path

import pytest

from builder import render
from builder.catalog.loader import load_catalog
from builder.errors import InputError
from tests.ansible.test_roles import ANSIBLE, VALIDATE_ONLY, failure, host_results, run_play
from tests.catalog.helpers import edit

SIGNED = {"components.nvidia_driver.modules": "signed-prebuilt"}


def _vars(catalog_dir: Path, image: str, monkeypatch) -> dict:
    """The rendered variables without the stack rules (validate refuses the mode until Ubuntu's packages at the
    catalog's driver release are recorded)."""
    monkeypatch.setattr(render, "require_valid_image", lambda catalog, name: None)
    return render.ansible_vars(load_catalog(catalog_dir), image, "local", "upstream", commit="0" * 40)


@pytest.fixture
def signed_vars(catalog_copy, monkeypatch) -> dict:
    edit(catalog_copy, "ndh100-train.yaml", SIGNED)
    return _vars(catalog_copy, "ndh100-train", monkeypatch)


def test_render_refuses_the_mode_while_validate_does(catalog_copy):
    edit(catalog_copy, "ndh100-train.yaml", SIGNED)
    with pytest.raises(InputError, match="no recorded nvidia-driver-580-server-open"):
        render.ansible_vars(load_catalog(catalog_copy), "ndh100-train", "local", "upstream", commit="0" * 40)


def test_signed_prebuilt_renders_ubuntus_userspace_not_the_dkms_packages(signed_vars):
    [driver] = signed_vars["builder_packages"]["nvidia_driver"]
    assert driver["name"] == "nvidia-driver-580-server-open" and driver["feed"] == "ubuntu" and driver["hold"]
    assert fnmatch.fnmatchcase("580.126.16-0ubuntu0.22.04.1", driver["version"])  # the catalog's release, any build
    assert signed_vars["builder_components"]["nvidia_driver"]["modules"] == "signed-prebuilt"
    assert "ubuntu" not in signed_vars["builder_feeds"]  # the base's own archive: no feed to configure
    assert "cuda" in signed_vars["builder_feeds"]  # CUDA, cuDNN, NCCL, DCGM still come from it


def test_the_default_renders_as_before(catalog_copy, monkeypatch):
    rendered = _vars(catalog_copy, "ndh100-train", monkeypatch)
    assert "modules" not in rendered["builder_components"]["nvidia_driver"]
    names = [p["name"] for p in rendered["builder_packages"]["nvidia_driver"]]
    assert names == ["nvidia-driver-pinning-580.126.16", "nvidia-open"]


@pytest.mark.slow
def test_playbook_passes_the_mode_and_the_role_spec_checks_it(tmp_path, signed_vars):
    bad = copy.deepcopy(signed_vars)
    bad["builder_components"]["nvidia_driver"]["modules"] = "unsigned"
    code, output = run_play(tmp_path, ANSIBLE / "image.yml", {"signed": signed_vars, "bad": bad},
                            "--tags", VALIDATE_ONLY)
    assert code != 0 and output["stats"]["signed"]["failures"] == 0, output["stats"]
    checked = [name for name, result in host_results(output, "signed")
               if name.startswith("nvidia_driver : Validating arguments") and not result.get("skipped")]
    assert checked, "the nvidia_driver role's arguments were not checked"
    message = failure(output, "bad")
    assert "nvidia_driver_modules" in message and "dkms, signed-prebuilt" in message, message


USERSPACE = [{"name": "nvidia-driver-580-server-open", "version": "580.126.16-*", "feed": "ubuntu", "hold": True}]
KERNELS = {  # host -> (kernel release, packages, the module package or words of the refusal)
    "azure": ("6.8.0-1025-azure", USERSPACE, "linux-modules-nvidia-580-server-open-azure"),
    "fde": ("6.14.0-1017-azure-fde", USERSPACE, "linux-modules-nvidia-580-server-open-azure-fde"),
    "generic": ("6.8.0-45-generic", USERSPACE, ["linux-azure kernel", "'6.8.0-45-generic'", "modules: dkms"]),
    "dkms-packages": ("6.8.0-1025-azure", [{"name": "nvidia-open", "version": "580.126.16-*", "feed": "cuda",
                                            "hold": True}], ["exactly one nvidia-driver-<branch>-server-open"]),
}


@pytest.mark.slow
def test_the_module_package_follows_the_kernel_flavour(tmp_path):
    plays = [{"name": "Name the signed module package", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Include the selection", "ansible.builtin.include_role": {
            "name": "nvidia_driver", "tasks_from": "signed_packages"}}]}]
    hosts = {host: {"nvidia_driver_kernel_release": release, "nvidia_driver_packages": packages}
             for host, (release, packages, _) in KERNELS.items()}
    for run in (1, 2):  # nothing changes, on either run
        code, output = run_play(tmp_path, plays, hosts)
        assert code != 0
        for host, (release, _, expected) in KERNELS.items():
            assert output["stats"][host]["changed"] == 0, (run, host)
            if isinstance(expected, str):
                results = dict(host_results(output, host))
                assert results["nvidia_driver : Name the signed prebuilt module package"]["msg"] == \
                    f"{expected} for kernel {release}", host
            else:
                message = failure(output, host)
                assert all(word in message for word in expected), message


@pytest.mark.slow
@pytest.mark.parametrize("listing, refused", [
    ("nvidia-dkms-580-server-open ii \nnvidia-dkms-570-server-open un \n", "nvidia-dkms-580-server-open"),
    ("", None),
])
def test_a_dkms_package_beside_the_signed_modules_is_refused(tmp_path, monkeypatch, listing, refused):
    """dpkg-query as the build VM answers: an installed (ii) nvidia-dkms-* fails the build, one only known to dpkg
    (un) does not; no match (exit 1) passes."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dpkg-query").write_text(f"#!/bin/sh\nprintf '{listing}'\n[ -n '{listing}' ] || exit 1\n")
    (fake / "dpkg-query").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    plays = [{"name": "Guard", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Include the guard", "ansible.builtin.include_role": {
            "name": "nvidia_driver", "tasks_from": "no_dkms"}}]}]
    code, output = run_play(tmp_path, plays, {"vm": {}})
    if refused is None:
        assert code == 0 and output["stats"]["vm"]["changed"] == 0, output["stats"]
    else:
        message = failure(output, "vm")
        assert refused in message and "570" not in message and "Secure Boot" in message, message
