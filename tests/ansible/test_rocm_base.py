"""Faults Azure's MI300X base shows (found by the project's own review, not published), reproduced by converging
ndmi300x-train with its Ubuntu 22.04 facts onto a Debian 12 tree with the ubuntu-hpc 2204-rocm profile laid
(builder/data/bases), as a local build does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.stack.bases import profile_for

pytestmark = [pytest.mark.slow, pytest.mark.root]

IMAGE = "ndmi300x-train"


@pytest.fixture(scope="module")
def mi300x_on_its_base(converged_rootfs):
    """(converged root, the profile): converged_rootfs lays ndmi300x-train's base profile first (FROM_PROFILE)."""
    profile = profile_for("microsoft-dsvm", "ubuntu-hpc", "2204-rocm")
    assert profile is not None
    return converged_rootfs(IMAGE), profile


def _dpkg(root: Path) -> dict[str, str]:
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Package} ${Version}\n"],
                         capture_output=True, text=True, check=True).stdout
    return {parts[1]: parts[2] for line in out.splitlines() if (parts := line.split()) and parts[0][1:2] == "i"}


def test_amdgpu_is_loaded_as_the_base_loads_it(mi300x_on_its_base, run_static):
    """#9: the MI300X base blacklists amdgpu and loads it from rocmstartup.service once the 8 GPUs are visible
    (modprobe -r hyperv_drm; modprobe amdgpu ip_block_mask=0x7f; Azure/azhpc-images install_rocm.sh:77-134). The
    role's /etc/modules-load.d/amdgpu.conf loaded nothing there: systemd-modules-load skips a deny-listed module
    (the static check failed: "deny-listed in modules-load.d (skipped at boot)": ["amdgpu"]). The role keeps the
    base's unit and loader and writes no modules-load entry."""
    root, profile = mi300x_on_its_base
    result = run_static(root, IMAGE, "rocm")
    [check] = [c for c in result.checks if c.name == "rocm.amdgpu_at_boot"]
    assert check.outcome == "passed", (check.expected, check.found)
    recorded = {f["path"]: f["content"] for f in profile.data["files"] if "content" in f}
    for path in ("/etc/init.d/initamdgpu.sh", "/etc/systemd/system/rocmstartup.service"):
        assert (root / path.lstrip("/")).read_text() == recorded[path], f"{path} is the base's, unchanged"


def test_rocm_installs_beside_docas_ucx(mi300x_on_its_base):
    """#9: ROCm 6.4 pulls Ubuntu's libucx0 (mivisionx-dev -> libopencv-dev -> libopenmpi3 -> libucx0), which
    conflicts with the ucx DOCA-OFED installed on the base (Azure/azhpc-images install_rocm.sh:15-17; the stand-in
    ucx carries UCX's own "Conflicts: libucx0 (<< its version)"). Installing ROCm removed DOCA's ucx and doca-ofed
    (apt resolves the conflict by removal), and the fabric layer then removed ROCm again. A marker package that
    provides libucx0 at DOCA's UCX version, as Azure's images install, keeps both."""
    root, _ = mi300x_on_its_base
    packages = _dpkg(root)
    missing = {"doca-ofed", "ucx", "rocm", "mivisionx-dev"} - set(packages)
    assert not missing, f"removed or never installed: {sorted(missing)}"
    assert "libucx0" not in packages  # Ubuntu's own is never installed
    provides = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Provides}", "ucx-provides-libucx0"],
                              capture_output=True, text=True, check=True).stdout
    assert provides == f"libucx0 (= {packages['ucx']})"


def test_the_bases_hpcx_build_is_used(mi300x_on_its_base):
    """#9/#19: the MI300X base carries HPC-X 2.18 (the cuda12 / MLNX_OFED build) under /opt, the build the catalog
    pins; the mpi role uses that tree, with no second copy."""
    root, profile = mi300x_on_its_base
    [tree] = [t for t in profile.data["trees"] if t.get("component") == "hpcx"]
    copies = sorted(p.name for p in (root / "opt").iterdir() if p.name.startswith("hpcx") and not p.is_symlink())
    assert copies == [Path(tree["path"]).name]
    assert (root / tree["path"].lstrip("/") / "modulefiles" / "hpcx").is_file()
