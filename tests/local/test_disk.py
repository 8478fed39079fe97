"""Disk export (no mounts) and the QEMU/OVMF boot test, on a copy of the cached Debian 12 base; the GPT and the
fixed-VHD footer the export writes itself, checked against sgdisk and qemu-img."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from builder.local import vhd
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


def test_the_gpt_written_by_hand_is_valid_for_sgdisk(tmp_path):
    disk = tmp_path / "disk.raw"
    with open(disk, "wb") as handle:
        handle.truncate(100 * MIB)
    vhd.write_gpt(disk, [vhd.Partition(2048, 6143, vhd.ESP_TYPE, "EFI System", uuid.uuid4()),
                         vhd.Partition(6144, 100 * 2048 - 2049, vhd.LINUX_ROOT_X86_64, "root", uuid.uuid4())])
    check = subprocess.run(["sgdisk", "-v", str(disk)], capture_output=True, text=True)
    assert "No problems found" in check.stdout, check.stdout
    assert [(p["number"], p["start"], p["end"], p["code"], p["name"]) for p in partitions(disk)] == [
        (1, 2048, 6143, "EF00", "EFI System"), (2, 6144, 202751, "8304", "root")]
    with pytest.raises(ValueError, match="outside the usable area"):
        vhd.write_gpt(disk, [vhd.Partition(2048, 100 * 2048, vhd.ESP_TYPE, "too big", uuid.uuid4())])


def test_the_fixed_vhd_footer_is_the_one_qemu_img_writes(tmp_path):
    """Appending the footer in place gives what ``qemu-img convert -O vpc -o subformat=fixed,force_size`` gives
    (but for the time stamp, unique id and checksum); qemu-img and the emulator's Azure check accept it."""
    from builder.emulator.vhd import check_fixed_vhd

    raw = tmp_path / "disk.raw"
    raw.write_bytes(bytes(range(256)) * (3 * MIB // 256))
    converted = tmp_path / "qemu.vhd"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size", str(raw),
                    str(converted)], check=True)
    ours = tmp_path / "ours.vhd"
    ours.write_bytes(raw.read_bytes())
    assert vhd.append_footer(ours) == 3 * MIB
    theirs_footer, our_footer = converted.read_bytes()[-512:], ours.read_bytes()[-512:]
    for start, end in ((0, 24), (28, 64), (84, 512)):  # all but time stamp (24), checksum (64) and unique id (68)
        assert our_footer[start:end] == theirs_footer[start:end], (start, end)
    assert ours.read_bytes()[:-512] == raw.read_bytes()
    info = json.loads(subprocess.run(["qemu-img", "info", "-f", "vpc", "--output=json", str(ours)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "vpc" and info["virtual-size"] == 3 * MIB
    assert check_fixed_vhd(ours) == 3 * MIB
    same = subprocess.run(["qemu-img", "compare", "-f", "vpc", "-F", "vpc", str(converted), str(ours)],
                          capture_output=True, text=True)
    assert same.returncode == 0, same.stdout + same.stderr
