"""The static suite over chroot on real Debian 12 trees: hygiene before and after generalize, each hygiene
fault failing exactly its check, the manifest, and the CLI's JUnit/JSON output."""

from __future__ import annotations

import contextlib
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

HYGIENE = {"hygiene.no_ssh_host_keys", "hygiene.machine_id_empty", "hygiene.no_authorized_keys",
           "hygiene.no_shell_history", "hygiene.no_secrets", "hygiene.no_build_user", "hygiene.apt_cleaned",
           "hygiene.var_log_small", "hygiene.no_build_trees", "hygiene.no_module_signing_keys"}


def failed(result) -> set[str]:
    return {c.name for c in result.failures()}


@pytest.fixture
def scratch(generalized_base) -> Path:
    """The generalized base; each test puts back what it changed (checked here after the test)."""
    listing = sorted(str(p.relative_to(generalized_base)) for p in generalized_base.rglob("*") if not p.is_symlink())
    yield generalized_base
    after = sorted(str(p.relative_to(generalized_base)) for p in generalized_base.rglob("*") if not p.is_symlink())
    assert after == listing, "a test left changes in the shared generalized tree"


def test_generalized_tree_passes_hygiene(run_static, generalized_base):
    result = run_static(generalized_base, "ndh100-train", "hygiene")
    assert result.ok, [(c.name, c.found) for c in result.failures()]
    assert {c.name for c in result.checks} == HYGIENE


def test_fresh_base_fails_exactly_what_generalize_removes(run_static, debian_base):
    result = run_static(debian_base, "cpu-infer", "hygiene")
    assert failed(result) == {"hygiene.no_ssh_host_keys", "hygiene.machine_id_empty", "hygiene.apt_cleaned"}
    keys = next(c for c in result.checks if c.name == "hygiene.no_ssh_host_keys")
    assert "/etc/ssh/ssh_host_ed25519_key" in keys.found


@contextlib.contextmanager
def planted(root: Path, rel: str, content: str):
    """Write ``root/rel`` for the duration of the block; put back the old file or remove what was created."""
    path = root / rel
    top = next((parent for parent in reversed(path.parents) if parent != root and root in parent.parents
                and not parent.exists()), None)
    before = path.read_bytes() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    try:
        yield path
    finally:
        if before is not None:
            path.write_bytes(before)
        elif top is not None:
            shutil.rmtree(top)
        else:
            path.unlink()


FAULTS = {  # fault -> (the one check it must fail, file, content)
    "ssh-host-key": ("hygiene.no_ssh_host_keys", "etc/ssh/ssh_host_ed25519_key",
                     "-----BEGIN OPENSSH PRIVATE KEY-----\n"),
    "machine-id": ("hygiene.machine_id_empty", "etc/machine-id", "0123456789abcdef" * 2 + "\n"),
    "authorized-keys": ("hygiene.no_authorized_keys", "root/.ssh/authorized_keys", "ssh-ed25519 AAAAC3Nza b@ci\n"),
    "history": ("hygiene.no_shell_history", "root/.bash_history", "az login\n"),
    "secret": ("hygiene.no_secrets", "opt/app/settings.env", "AZURE_CLIENT_SECRET=s3cr3t\n"),
    "private-key": ("hygiene.no_secrets", "etc/ssl/private/ssl-cert-snakeoil.key", "-----BEGIN PRIVATE KEY-----\n"),
    "apt-lists": ("hygiene.apt_cleaned", "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "x\n"),
    "big-log": ("hygiene.var_log_small", "var/log/builder-build.log", "line\n" * 400_000),
    # what DKMS signs modules with on Ubuntu (dkms 3.0.10 prepare_signing; builder.verify.probe.MOK_PRIVATE_KEYS)
    "dkms-signing-key": ("hygiene.no_module_signing_keys", "var/lib/shim-signed/mok/MOK.priv",
                         "-----BEGIN PRIVATE KEY-----\n(test stand-in)\n"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_hygiene_fault_fails_exactly_its_check(fault, run_static, scratch):
    check, rel, content = FAULTS[fault]
    with planted(scratch, rel, content):
        result = run_static(scratch, "ndh100-train", "hygiene")
    assert failed(result) == {check}
    entry = next(c for c in result.checks if c.name == check)
    assert entry.expected and entry.found and entry.found != entry.expected


def test_build_user_fails_exactly_its_check(run_static, scratch):
    passwd = (scratch / "etc/passwd").read_text() + "packer:x:1001:1001::/home/packer:/bin/bash\n"
    with planted(scratch, "etc/passwd", passwd):
        result = run_static(scratch, "ndh100-train", "hygiene")
    assert failed(result) == {"hygiene.no_build_user"}
    assert next(c for c in result.checks if c.name == "hygiene.no_build_user").found == "packer"


def test_manifest_written_with_render_manifest_passes(run_static, scratch, shipped_catalog):
    from builder.verify.manifest import MANIFEST_PATH, render_manifest

    model = shipped_catalog.model("ndh100-train")
    manifest = json.dumps(render_manifest(model, "2026.1129.3", "0123456789abcdef0123456789abcdef01234567"))
    with planted(scratch, MANIFEST_PATH.lstrip("/"), manifest) as path:
        good = run_static(scratch, "ndh100-train", "manifest", expect_version="2026.1129.3")
        other = run_static(scratch, "ndh100-train", "manifest", expect_version="2026.1129.4")
        data = json.loads(path.read_text())
        data["components"]["cuda"] = "12.8.1"
        path.write_text(json.dumps(data))
        stale = run_static(scratch, "ndh100-train", "manifest", expect_version="2026.1129.3")
    assert good.ok and good.passed == 5
    assert failed(other) == {"manifest.version"}
    assert failed(stale) == {"manifest.components"}


def test_cli_writes_junit_and_json(run_cli, generalized_base, tmp_path):
    junit, out = tmp_path / "out/verify.xml", tmp_path / "out/verify.json"
    result = run_cli("verify", "ndh100-train", "--connection", "chroot", "--host", str(generalized_base),
                     "--select", "hygiene,manifest", "--junit", str(junit), "--json", str(out))
    assert result.code == 1
    assert "FAIL manifest.present" in result.stdout and "  found:    missing" in result.stdout
    data = json.loads(out.read_text())
    assert data["ok"] is False and data["failed"] == 5 and data["passed"] == len(HYGIENE)
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert len(cases) == len(HYGIENE) + 5
    props = {p.get("name") for case in cases for p in case.findall("./properties/property")}
    assert {"expected", "found"} <= props


def test_rocm_checks_on_planted_files(run_static, scratch, shipped_catalog):
    """ROCm wiring as the rocm role writes it passes; a wrong device-node mode fails only that check."""
    from builder.verify.expectations import build_expectations

    exp = build_expectations(shipped_catalog, "ndmi300x-train")
    mode = exp["rocm_device_mode"]
    sysctl = "".join(f"{k} = {v}\n" for k, v in exp["rocm_sysctl"].items())
    rules = f'KERNEL=="kfd", MODE="{mode}"\nSUBSYSTEM=="drm", KERNEL=="renderD*", MODE="{mode}"\n'
    home = f"opt/rocm-{exp['components']['rocm']['version']}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(planted(scratch, f"{home}/.info/version", "rocm\n"))
        (scratch / "opt/rocm").symlink_to(f"/{home}")
        stack.callback((scratch / "opt/rocm").unlink)
        stack.enter_context(planted(scratch, "etc/sysctl.d/90-rocm.conf", sysctl))
        loader = exp["rocm_amdgpu"]
        stack.enter_context(planted(scratch, "etc/modprobe.d/blacklist.conf", "blacklist amdgpu\n"))
        script = "".join(f"modprobe -r {m}\n" for m in loader["unload_first"]) + \
            f"modprobe amdgpu {loader['options']}\n"
        stack.enter_context(planted(scratch, loader["loader"].lstrip("/"), script))
        unit = f"etc/systemd/system/{loader['unit']}"
        stack.enter_context(planted(scratch, unit, f"[Service]\nExecStart={loader['loader']}\n"
                                    "[Install]\nWantedBy=multi-user.target\n"))
        wants = scratch / "etc/systemd/system/multi-user.target.wants" / loader["unit"]
        wants.parent.mkdir(parents=True, exist_ok=True)
        wants.symlink_to(f"/{unit}")
        stack.callback(wants.unlink)
        rules_file = stack.enter_context(planted(scratch, "etc/udev/rules.d/70-amdgpu.rules", rules))
        good = run_static(scratch, "ndmi300x-train", "rocm")
        rules_file.write_text(rules.replace(mode, "0660"))
        bad = run_static(scratch, "ndmi300x-train", "rocm")
        # a modules-load.d entry for the blacklisted module loads nothing at boot
        stack.enter_context(planted(scratch, "etc/modules-load.d/amdgpu.conf", "amdgpu\n"))
        skipped = run_static(scratch, "ndmi300x-train", "rocm")
    assert good.ok and good.passed == 4, [(c.name, c.found) for c in good.failures()]
    assert failed(bad) == {"rocm.device_nodes"}
    assert failed(skipped) == {"rocm.device_nodes", "rocm.amdgpu_at_boot"}


def test_openmpi_check_on_planted_files(run_static, scratch, shipped_catalog):
    """Open MPI as the mpi role installs it passes `hpc.openmpi`; an mpirun of another version fails it."""
    from builder.verify.expectations import build_expectations

    version = build_expectations(shipped_catalog, "ndmi300x-train")["components"]["openmpi"]["version"]
    mpirun = "#!/bin/sh\necho 'mpirun (Open MPI) {0}'\n"
    module = f"usr/share/modules/modulefiles/mpi/openmpi-{version}"

    def openmpi_check(result):
        return next(c for c in result.checks if c.name == "hpc.openmpi")

    with contextlib.ExitStack() as stack:
        binary = stack.enter_context(planted(scratch, f"opt/openmpi-{version}/bin/mpirun", mpirun.format(version)))
        binary.chmod(0o755)
        stack.enter_context(planted(scratch, module, "#%Module1.0\n"))
        good = openmpi_check(run_static(scratch, "ndmi300x-train", "hpc"))
        binary.write_text(mpirun.format("4.1.6"))
        bad = openmpi_check(run_static(scratch, "ndmi300x-train", "hpc"))
    missing = openmpi_check(run_static(scratch, "ndmi300x-train", "hpc"))
    assert good.outcome == "passed", (good.expected, good.found)
    assert bad.outcome == "failed" and "(Open MPI) 4.1.6" in bad.found
    assert missing.outcome == "failed" and "not found" in missing.found and "module file missing" in missing.found
