"""Converge the playbook into real Debian 12 root filesystems with the stand-in feed (slow, root)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from builder.converge import converge
from builder.errors import InputError
from builder.rootfs import copy_tree, mounts_under, remove_tree
from tests.fixtures.ansible import FROM_PROFILE

pytestmark = [pytest.mark.slow, pytest.mark.root]
IMAGES = ["ndh100-train", "nca100-infer", "ndmi300x-train", "cpu-infer"]
TAGS = ["base", "gpu", "fabric", "image", "manifest"]


def rendered(converged_rootfs, image: str) -> dict:
    return yaml.safe_load(converged_rootfs.vars_file(image).read_text())


def dpkg_status(root: Path) -> set[str]:
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Package}=${Version} ${Status}\n"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


def enabled(root: Path, unit: str) -> bool:
    """The unit is enabled: a (possibly absolute, so dangling from outside) link in a .wants folder."""
    return any(os.path.lexists(wants / f"{unit}.service") for wants in (root / "etc/systemd/system").glob("*.wants"))


@pytest.mark.parametrize("image", IMAGES)
def test_pinned_packages_installed_and_held(converged_rootfs, image):
    root = converged_rootfs(image)
    status = dpkg_status(root)
    data = rendered(converged_rootfs, image)
    for group in data["builder_packages"].values():
        for package in group:  # a version may be an apt glob: its pattern says which builds are the pin
            held = [line.removesuffix(" hold ok installed") for line in status if line.endswith(" hold ok installed")]
            assert any(re.match(package["pattern"], entry) for entry in held), package
    manifest = json.loads((root / "etc/builder/image.json").read_text())
    assert manifest["image"] == image and manifest["version"] == "2026.1130.1" and manifest["git_commit"] == "0" * 40
    assert manifest["components"] == {k: str(v["version"]) for k, v in data["builder_components"].items()}
    # the kernel meta package the tree has is held: Debian's cloud kernel, or the one the laid base profile carries
    kernel = "linux-azure-lts-22.04" if image in FROM_PROFILE else "linux-image-cloud-amd64"
    assert kernel in {line.split("=")[0] for line in status if " hold " in line}
    limits = (root / "etc/security/limits.d/90-builder.conf").read_text()
    assert "memlock unlimited" in limits and "nofile  1048576" in limits
    assert 'APT::Periodic::Unattended-Upgrade "0"' in (root / "etc/apt/apt.conf.d/80builder").read_text()
    assert mounts_under(root) == []
    assert enabled(root, "builder-sku-tuning")


def test_nvidia_training_stack(converged_rootfs):
    root = converged_rootfs("ndh100-train")
    data = rendered(converged_rootfs, "ndh100-train")
    cuda = data["builder_components"]["cuda"]["version"]
    major_minor = ".".join(cuda.split(".")[:2])
    target = subprocess.run(["chroot", str(root), "readlink", "-f", "/usr/local/cuda"], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert target == f"/usr/local/cuda-{major_minor}"
    nvcc = subprocess.run(["chroot", str(root), "/bin/sh", "-c", ". /etc/profile.d/cuda.sh && nvcc --version"],
                          capture_output=True, text=True, check=True).stdout
    assert f"V{cuda}" in nvcc
    assert "blacklist nouveau" in (root / "etc/modprobe.d/blacklist-nvidia-nouveau.conf").read_text()
    assert (root / "etc/modules-load.d/nvidia-peermem.conf").read_text().strip() == "nvidia_peermem"
    for unit in ("nvidia-persistenced", "nvidia-fabricmanager", "nvidia-dcgm", "openibd", "nvidia-dcgm-exporter",
                 "node_exporter"):
        assert enabled(root, unit), unit
    assert "OS.EnableRDMA=y" in (root / "etc/waagent.conf").read_text().splitlines()
    assert json.loads((root / "etc/docker/daemon.json").read_text())["runtimes"]["nvidia"]
    assert "runtimes.nvidia]" in (root / "etc/containerd/config.toml").read_text()
    assert (root / "opt/nccl-tests/build/all_reduce_perf").is_file()
    hpcx = data["builder_components"]["hpcx"]["version"]
    assert (root / f"opt/hpcx-v{hpcx}/ompi/bin/mpirun").is_file()
    assert os.readlink(root / "opt/hpcx") == f"/opt/hpcx-v{hpcx}"
    assert (root / f"usr/share/modules/modulefiles/mpi/hpcx-v{hpcx}").is_file()
    assert (root / "usr/local/lib/slurm/spank_pyxis.so").is_file()
    assert "spank_pyxis.so" in (root / "etc/slurm/plugstack.conf.d/pyxis.conf").read_text()
    sources = (root / "etc/apt/sources.list.d/builder-cuda.sources").read_text()
    assert "Signed-By: /etc/apt/keyrings/builder-cuda.asc" in sources


def test_sku_tuning_writes_nccl_conf_at_first_boot(converged_rootfs, tmp_path):
    copy = tmp_path / "rootfs"
    copy_tree(converged_rootfs("ndh100-train"), copy)
    try:
        sku = rendered(converged_rootfs, "ndh100-train")["builder_target_skus"][0]
        run = subprocess.run(["chroot", str(copy), "/usr/local/sbin/builder-sku-tuning", sku], capture_output=True,
                             text=True, check=True)
        assert sku in run.stdout
        conf = (copy / "etc/nccl.conf").read_text()
        assert "NCCL_IB_PCI_RELAXED_ORDERING=1" in conf
        other = subprocess.run(["chroot", str(copy), "/usr/local/sbin/builder-sku-tuning", "Standard_F2s_v2"],
                               capture_output=True, text=True, check=True)
        assert "nothing to tune" in other.stdout
        (copy / "etc/nccl.conf").unlink()
        unit = subprocess.run(["chroot", str(copy), "/usr/local/sbin/builder-sku-tuning"], capture_output=True,
                              text=True, check=False)  # as the unit runs it, on a machine that is not an Azure VM
        assert unit.returncode == 0 and "not an Azure VM" in unit.stdout, unit.stdout + unit.stderr
        assert not (copy / "etc/nccl.conf").exists()
    finally:
        remove_tree(copy)


def test_inference_image_has_no_fabric(converged_rootfs):
    root = converged_rootfs("nca100-infer")
    status = {line.split("=")[0] for line in dpkg_status(root)}
    assert "nvidia-open" in status and "nvidia-fabricmanager" not in status and "doca-ofed" not in status
    assert not (root / "etc/modules-load.d/nvidia-peermem.conf").exists()
    assert not any(line == "OS.EnableRDMA=y" for line in (root / "etc/waagent.conf").read_text().splitlines())
    assert not (root / "opt/hpcx").exists()


def test_amd_image(converged_rootfs):
    root = converged_rootfs("ndmi300x-train")
    status = {line.split("=")[0] for line in dpkg_status(root)}
    assert {"rocm", "rccl", "amdgpu-dkms", "doca-ofed"} <= status and "nvidia-open" not in status
    assert "kernel.numa_balancing=0" in (root / "etc/sysctl.d/90-rocm.conf").read_text().replace(" ", "")
    assert 'KERNEL=="kfd", MODE="0666"' in (root / "etc/udev/rules.d/70-amdgpu.rules").read_text()
    version = rendered(converged_rootfs, "ndmi300x-train")["builder_components"]["rocm"]["version"]
    target = subprocess.run(["chroot", str(root), "readlink", "-f", "/opt/rocm"], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert target == f"/opt/rocm-{version}"
    assert "repo.radeon.com" not in "".join(p.read_text() for p in (root / "etc/apt/preferences.d").glob("builder-*"))
    openmpi = rendered(converged_rootfs, "ndmi300x-train")["builder_components"]["openmpi"]["version"]
    configured = (root / f"usr/local/src/openmpi-{openmpi}/config.status").read_text()
    assert f"--prefix=/opt/openmpi-{openmpi}" in configured and "--with-rocm=/opt/rocm" in configured
    assert "--with-ucx=/opt/hpcx-v" in configured and "--with-cuda" not in configured
    printed = subprocess.run(["chroot", str(root), f"/opt/openmpi-{openmpi}/bin/mpirun", "--version"],
                             capture_output=True, text=True, check=True).stdout
    assert f"(Open MPI) {openmpi}" in printed
    module = (root / f"usr/share/modules/modulefiles/mpi/openmpi-{openmpi}").read_text()
    assert f"prepend-path PATH /opt/openmpi-{openmpi}/bin" in module


def test_cpu_image_has_no_vendor_feeds(converged_rootfs):
    root = converged_rootfs("cpu-infer")
    assert not list((root / "etc/apt/sources.list.d").glob("builder-*"))
    assert enabled(root, "node_exporter") and not enabled(root, "nvidia-dcgm")


@pytest.mark.parametrize("image", IMAGES)
def test_second_converge_changes_nothing(converged_rootfs, image):
    root = converged_rootfs(image)
    vars_file = converged_rootfs.vars_file(image)
    again = converged_rootfs.converge_again(image, root, vars_file.parent / "converge-again.log", TAGS)
    assert again.changed == 0, (vars_file.parent / "converge-again.log").read_text()[-3000:]
    assert again.ok >= 15 and again.failed == 0  # cpu-infer, the smallest image, reports 20


def test_rerun_repairs_drift(converged_rootfs, tmp_path):
    """A re-run skips what the state read at its start shows in place (holds, units, accounts, packages,
    unpacked tarballs): what drifted is still found and repaired, and the run after that changes nothing."""
    copy = tmp_path / "rootfs"
    copy_tree(converged_rootfs("ndh100-train"), copy)
    vars_file = converged_rootfs.vars_file("ndh100-train")
    pin = rendered(converged_rootfs, "ndh100-train")["builder_packages"]["nvidia_driver"][-1]

    def chroot(*command: str) -> None:
        subprocess.run(["chroot", str(copy), *command], check=True, capture_output=True)

    try:
        chroot("apt-mark", "unhold", pin["name"], "linux-image-cloud-amd64")
        chroot("systemctl", "disable", "node_exporter.service", "nvidia-persistenced.service")
        chroot("userdel", "prometheus-exporter")
        chroot("dpkg", "--remove", "environment-modules")
        for path in ("usr/local/bin/node_exporter", "opt/hpcx", "etc/profile.d/cuda.sh"):
            (copy / path).unlink()
        (copy / "opt/nccl-tests/.builder-sha256").write_text("0" * 64 + "  tampered.tar.gz\n")
        shutil.rmtree(copy / "opt/nccl-tests/build")
        assert not enabled(copy, "node_exporter") and not enabled(copy, "nvidia-persistenced")

        repaired = converge(copy, vars_file, log=tmp_path / "drift.log", tags=TAGS)
        assert repaired.changed >= 8 and repaired.failed == 0
        status = dpkg_status(copy)
        assert f"{pin['name']}={pin['version']} hold ok installed" in status
        assert any(line.startswith("linux-image-cloud-amd64=") and " hold " in line for line in status)
        assert any(line.startswith("environment-modules=") and line.endswith(" ok installed") for line in status)
        assert enabled(copy, "node_exporter") and enabled(copy, "nvidia-persistenced")
        assert "prometheus-exporter:" in (copy / "etc/passwd").read_text()
        assert os.readlink(copy / "usr/local/bin/node_exporter").endswith("/node_exporter")
        assert (copy / "opt/hpcx").is_symlink() and (copy / "etc/profile.d/cuda.sh").is_file()
        data = rendered(converged_rootfs, "ndh100-train")
        assert (copy / "opt/nccl-tests/.builder-sha256").read_text().split()[0] == \
            data["builder_downloads"]["nccl_tests"]["sha256"]
        assert (copy / "opt/nccl-tests/build/all_reduce_perf").is_file()

        again = converge(copy, vars_file, log=tmp_path / "again.log", tags=TAGS)
        assert again.changed == 0, (tmp_path / "again.log").read_text()[-3000:]
    finally:
        remove_tree(copy)


def test_profiling_units_are_disabled_where_the_exporter_runs(converged_rootfs, tmp_path):
    """Shown by the ubuntu-hpc profile: the base, at its release tags, enables dynolog.service, which holds the
    exclusive GPU profiling context (DCGM_FI_PROF_*) dcgm-exporter needs (Azure/azhpc-images#587); the image
    enabled the exporter beside it. The monitoring role disables it, and the static suite checks it."""
    copy = tmp_path / "rootfs"
    copy_tree(converged_rootfs("ndh100-train"), copy)
    try:
        unit = copy / "etc/systemd/system/dynolog.service"
        unit.write_text("[Service]\nExecStart=/usr/local/bin/dynolog\n\n[Install]\nWantedBy=multi-user.target\n")
        subprocess.run(["chroot", str(copy), "systemctl", "enable", "dynolog.service"], check=True,
                       capture_output=True)
        assert enabled(copy, "dynolog")
        result = converge(copy, converged_rootfs.vars_file("ndh100-train"), log=tmp_path / "converge.log",
                          tags=["image"])
        assert result.failed == 0 and not enabled(copy, "dynolog")
        assert enabled(copy, "nvidia-dcgm-exporter")
    finally:
        remove_tree(copy)


def test_check_mode_reports_no_changes_on_a_converged_tree(converged_rootfs):
    root = converged_rootfs("cpu-infer")
    vars_file = converged_rootfs.vars_file("cpu-infer")
    before = (root / "etc/builder/image.json").stat().st_mtime
    result = converge(root, vars_file, log=vars_file.parent / "check.log", tags=TAGS, check_mode=True)
    assert result.changed == 0 and (root / "etc/builder/image.json").stat().st_mtime == before


def test_converge_rejects_bad_input(converged_rootfs, tmp_path):
    vars_file = converged_rootfs.vars_file("cpu-infer")
    with pytest.raises(InputError, match="unknown tag"):
        converge(converged_rootfs("cpu-infer"), vars_file, log=tmp_path / "x.log", tags=["gpus"])
    with pytest.raises(InputError, match="not a root filesystem"):
        converge(tmp_path, vars_file, log=tmp_path / "x.log")
    bogus = tmp_path / "vars.yml"
    bogus.write_text("a: 1\n")
    with pytest.raises(InputError, match="builder render"):
        converge(converged_rootfs("cpu-infer"), bogus, log=tmp_path / "x.log")


def test_generalize_removes_host_identity_and_build_leftovers(converged_rootfs, tmp_path):
    copy = tmp_path / "rootfs"
    copy_tree(converged_rootfs("cpu-infer"), copy)
    outside = tmp_path / "outside"  # a writable mount inside a folder generalize empties: left alone
    (outside / "data").mkdir(parents=True)
    (outside / "data/keep.txt").write_text("not the image's\n")
    point = copy / "var/tmp/mounted/data"
    point.mkdir(parents=True)
    (copy / "var/tmp/leftover.txt").write_text("build leftover\n")
    subprocess.run(["mount", "--bind", str(outside), str(copy / "var/tmp/mounted")], check=True)
    try:
        assert list(copy.glob("etc/ssh/ssh_host_*")) and list(copy.glob("var/lib/apt/lists/*"))
        (copy / "root/.bash_history").write_text("secret command\n")
        result = converge(copy, converged_rootfs.vars_file("cpu-infer"), log=tmp_path / "generalize.log",
                          tags=["generalize"])
        assert result.changed > 0
        assert (outside / "data/keep.txt").read_text() == "not the image's\n"
        assert not (copy / "var/tmp/leftover.txt").exists()
        assert not list(copy.glob("etc/ssh/ssh_host_*")) and not list(copy.glob("var/lib/apt/lists/*"))
        assert (copy / "etc/machine-id").read_text() == ""
        assert not (copy / "root/.bash_history").exists() and not (copy / "var/cache/builder").exists()
        assert (copy / "etc/builder/image.json").exists()
    finally:
        subprocess.run(["umount", str(copy / "var/tmp/mounted")], check=False, capture_output=True)
        remove_tree(copy)
