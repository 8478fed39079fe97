"""Secure Boot build path of the NVIDIA driver (issue 17): ``components.nvidia_driver.modules: signed-prebuilt``
renders Ubuntu's userspace pin instead of the CUDA repository's DKMS packages, the playbook passes the mode to
the nvidia_driver role, and the role names the signed module package for the kernel flavour and refuses what
Secure Boot would refuse. No recorded package version is assumed here (validate's refusal without records is in
tests/catalog/test_secure_boot_rule.py)."""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from builder import render
from builder.catalog.loader import load_catalog
from builder.errors import InputError
from builder.rootfs import chroot_mounts, copy_tree, remove_tree
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


def test_the_default_is_dkms_from_the_cuda_repository(catalog_copy, monkeypatch):
    rendered = _vars(catalog_copy, "ndh100-train", monkeypatch)
    assert rendered["builder_components"]["nvidia_driver"]["modules"] == "dkms"
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


def _deb(pool: Path, name: str, version: str, depends: str = "", files: dict[str, str] | None = None) -> None:
    """A minimal binary package (dpkg-deb): the stand-in of a package of Ubuntu's archive, revision 0standin."""
    tree = pool.parent / f"tree-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    control = f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: test <t@example.invalid>\n"
    control += (f"Depends: {depends}\n" if depends else "") + f"Description: stand-in of {name}\n"
    (tree / "DEBIAN/control").write_text(control)
    for path, content in (files or {}).items():
        (tree / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tree / path.lstrip("/")).write_text(content)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(pool / f"{name}_{version}_amd64.deb")],
                   check=True, capture_output=True)


def _index(root: Path) -> None:
    repo = root / "srv/ubuntu-standin"
    (repo / "Packages").write_text(subprocess.run(["apt-ftparchive", "packages", "."], cwd=repo, check=True,
                                                  capture_output=True, text=True).stdout)
    subprocess.run(["chroot", str(root), "apt-get", "update", "-qq"], check=True, capture_output=True)


def _converge(tmp_path: Path, root: Path, name: str) -> tuple[int, dict]:
    plays = [{"name": "The driver in the signed-prebuilt mode", "hosts": "all", "gather_facts": False, "roles": [
        {"role": "nvidia_driver", "vars": {
            "nvidia_driver_modules": "signed-prebuilt", "nvidia_driver_kernel_release": "6.8.0-1025-azure",
            "nvidia_driver_packages": USERSPACE, "nvidia_driver_feed": {"kind": "apt"}}}]}]
    (tmp_path / f"{name}.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    (tmp_path / f"{name}.ini").write_text(f"vm ansible_host={root} ansible_connection=community.general.chroot "
                                          "ansible_python_interpreter=/usr/bin/python3\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_HOME": str(tmp_path / ".ansible")}
    with chroot_mounts(root):
        result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                                 str(tmp_path / f"{name}.ini"), str(tmp_path / f"{name}.yml")], capture_output=True,
                                text=True, timeout=600, env=env, cwd=ANSIBLE, check=False)
    return result.returncode, json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{"):])[0]


@pytest.mark.slow
@pytest.mark.root
def test_signed_prebuilt_converges_held_and_idempotent_and_refuses_dkms(tmp_path, debian12_base):
    """A real apt run in a Debian 12 root with stand-ins of Ubuntu's packages (revision 0standin, no real versions):
    the module package of the azure flavour and the userspace pin are installed and held, nothing from the CUDA
    repository or DKMS; a second run changes nothing; an NVIDIA DKMS package installed beside them fails the run."""
    root = tmp_path / "root"
    copy_tree(debian12_base, root)
    try:
        pool = root / "srv/ubuntu-standin"
        pool.mkdir(parents=True)
        _deb(pool, "nvidia-driver-580-server-open", "580.126.16-0standin",
             files={"/usr/lib/systemd/system/nvidia-persistenced.service": "[Service]\nExecStart=/bin/true\n"
                    "[Install]\nWantedBy=multi-user.target\n"})
        _deb(pool, "linux-modules-nvidia-580-server-open-azure", "6.8.0-1025.30+0standin")
        _deb(pool, "nvidia-dkms-580-server-open", "580.126.16-0standin")
        source = "deb [trusted=yes] file:/srv/ubuntu-standin ./\n"  # a test root, no key
        (root / "etc/apt/sources.list.d/ubuntu-standin.list").write_text(source)
        _index(root)
        code, output = _converge(tmp_path, root, "first")
        assert code == 0, failure(output, "vm")
        status = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Package}=${Version} ${Status}\n"],
                                capture_output=True, text=True, check=True).stdout.splitlines()
        held = {line.split(" ")[0] for line in status if line.endswith(" hold ok installed")}
        assert {"nvidia-driver-580-server-open=580.126.16-0standin",
                "linux-modules-nvidia-580-server-open-azure=6.8.0-1025.30+0standin"} <= held, status
        assert not [line for line in status if line.startswith(("nvidia-dkms", "nvidia-open", "nvidia-driver-pinning"))
                    and line.endswith(" installed")], status
        code, output = _converge(tmp_path, root, "second")
        assert code == 0 and output["stats"]["vm"]["changed"] == 0, output["stats"]
        subprocess.run(["chroot", str(root), "apt-get", "install", "-y", "-qq", "nvidia-dkms-580-server-open"],
                       check=True, capture_output=True)
        code, output = _converge(tmp_path, root, "third")
        message = failure(output, "vm")
        assert code != 0 and "nvidia-dkms-580-server-open installed beside the signed" in message, message
    finally:
        remove_tree(root)
