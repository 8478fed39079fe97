"""Disk export (no mounts) and the QEMU/OVMF boot test, on a copy of the cached Debian 12 base."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from builder.local.boot import boot_test
from builder.local.disk import BOOT_MARKER, MIB, partitions
from builder.local.sbom import dpkg_packages, make_sbom
from builder.rootfs import mounts_under
from tests.fixtures.local import needs_local_tools

pytestmark = [needs_local_tools()]


def _extract(vhd: Path, part: dict, dest: Path) -> Path:
    sectors = part["end"] - part["start"] + 1
    subprocess.run(["dd", f"if={vhd}", f"of={dest}", "bs=512", f"skip={part['start']}", f"count={sectors}",
                    "status=none"], check=True)
    return dest


@pytest.mark.slow
def test_exported_disk_is_an_azure_ready_fixed_vhd(exported_disk, tmp_path):
    info = json.loads(subprocess.run(["qemu-img", "info", "-f", "vpc", "--output=json", str(exported_disk)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "vpc"
    size = info["virtual-size"]
    assert size % MIB == 0
    raw = exported_disk.read_bytes()[-512:]
    assert raw.startswith(b"conectix")  # VHD footer
    assert int.from_bytes(raw[60:64], "big") == 2  # disk type 2 = fixed
    assert exported_disk.stat().st_size == size + 512
    parts = partitions(exported_disk)
    assert [(p["number"], p["code"]) for p in parts] == [(1, "EF00"), (2, "8304")]
    esp = _extract(exported_disk, parts[0], tmp_path / "esp.img")
    listing = subprocess.run(["mdir", "-i", str(esp), "-b", "::/EFI/BOOT"], capture_output=True, text=True)
    assert "BOOTX64.EFI" in listing.stdout.upper()
    root = _extract(exported_disk, parts[1], tmp_path / "root.img")
    fstab = subprocess.run(["debugfs", "-R", "cat /etc/fstab", str(root)], capture_output=True, text=True).stdout
    assert "/\text4" in fstab and "/boot/efi\tvfat" in fstab
    assert "swap" not in fstab.replace("no swap", "")
    grub = subprocess.run(["debugfs", "-R", "cat /boot/grub/grub.cfg", str(root)], capture_output=True,
                          text=True).stdout
    assert "console=ttyS0" in grub and "root=UUID=" in grub
    assert mounts_under(tmp_path) == []


@pytest.mark.slow
def test_boot_test_sees_the_marker(exported_disk, tmp_path):
    result = boot_test(exported_disk, tmp_path / "boot", timeout=240)
    assert result.ok, f"{result.reason}: {result.serial_log.read_text(errors='replace')[-2000:]}"
    log = result.serial_log.read_text(errors="replace")
    assert BOOT_MARKER in log and "Reached target" in log


def test_a_disk_that_does_not_boot_fails_within_the_limit(tmp_path, run_cli):
    blank = tmp_path / "blank.raw"
    with open(blank, "wb") as handle:
        handle.truncate(64 * MIB)
    result = boot_test(blank, tmp_path / "boot", timeout=12)
    assert not result.ok and "no boot marker within 12 s" in result.reason
    cli = run_cli("boot-test", str(blank), "--timeout", "10", "--json")
    assert cli.code == 1 and json.loads(cli.stdout)["ok"] is False
    missing = run_cli("boot-test", str(tmp_path / "absent.vhd"))
    assert missing.code == 2 and "no such disk" in missing.stderr and "Traceback" not in missing.stderr


def test_sbom_lists_every_dpkg_package(debian_base):
    text, count = make_sbom(debian_base, "img", "2026.1129.0",
                            {"nccl_tests": {"version": "2.17.1", "sha256": "ab" * 32, "filename": "n.tgz"}})
    bom = json.loads(text)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    installed = subprocess.run(["chroot", str(debian_base), "dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Package} "
                                "${Version}\n"], check=True, capture_output=True, text=True).stdout
    expected = {tuple(line.split()[1:3]) for line in installed.splitlines() if line.startswith("ii")}
    found = {(c["name"], c["version"]) for c in bom["components"] if c["type"] == "library"}
    assert found == expected and count == len(expected) > 100
    kernel = next(c for c in bom["components"] if c["name"].startswith("linux-image-") and c["type"] == "library")
    assert kernel["purl"].startswith("pkg:deb/debian/linux-image-")
    download = next(c for c in bom["components"] if c["name"] == "nccl_tests")
    assert download["hashes"][0]["content"] == "ab" * 32
    assert bom["metadata"]["component"]["name"] == "img"
    assert len(dpkg_packages(debian_base)) == count
