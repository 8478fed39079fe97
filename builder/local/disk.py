"""Export a root filesystem tree to an Azure-ready disk without mounting anything.

GPT disk: partition 1 a vfat EFI System Partition (``mkfs.vfat -C`` + mtools) holding a standalone GRUB
(``grub-mkstandalone`` run in the tree's chroot) at the UEFI fallback path; partition 2 an ext4 root made
from the tree (``mkfs.ext4 -d``, written in place at its offset, ``dd`` puts the ESP at its own). The GPT and
the fixed-VHD footer are written by ``builder.local.vhd`` onto the sparse disk file itself, which becomes the
VHD in place (a fixed VHD is the raw disk plus a 512-byte footer); its virtual size is a whole number of MiB
(Azure's rule), checked with ``qemu-img info``. The tree gets ``/etc/fstab`` (no swap),
``/boot/grub/grub.cfg`` with ``console=ttyS0`` and the boot-marker unit first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from builder.errors import OperationError
from builder.local import vhd
from builder.local.tools import output, run

MIB = 1024 * 1024
ESP_MIB = 64
BOOT_MARKER = "BUILDER-BOOT-OK multi-user.target reached"
MARKER_UNIT = "builder-boot-marker.service"
KERNEL_CMDLINE = "ro console=tty1 console=ttyS0,115200n8 earlyprintk=ttyS0 net.ifnames=0"
DISK_TOOLS = ("mkfs.vfat", "mmd", "mcopy", "mkfs.ext4", "qemu-img", "chroot")
APT_HINT = {"mkfs.vfat": "dosfstools", "mmd": "mtools", "mcopy": "mtools", "mkfs.ext4": "e2fsprogs",
            "qemu-img": "qemu-utils", "chroot": "coreutils"}


@dataclass
class DiskResult:
    vhd: Path
    virtual_size: int
    file_size: int
    root_uuid: str
    esp_serial: str
    kernel: str

    def as_dict(self) -> dict:
        data = asdict(self)
        data["vhd"] = str(self.vhd)
        return data


def missing_tools() -> list[str]:
    """Disk tools not installed, as apt package names."""
    absent = [t for t in DISK_TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    return sorted({APT_HINT[t] for t in absent})


def latest_kernel(tree: Path) -> str:
    """The highest kernel version with both vmlinuz and initrd in ``tree/boot``."""
    versions = [p.name.removeprefix("vmlinuz-") for p in (tree / "boot").glob("vmlinuz-*")]
    versions = [v for v in versions if (tree / "boot" / f"initrd.img-{v}").exists()]
    if not versions:
        raise OperationError(f"no kernel with an initrd in {tree / 'boot'}: the base root filesystem needs one")

    def key(version: str) -> list:
        return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", version)]

    return max(versions, key=key)


def prepare_boot(tree: Path, root_uuid: str, esp_serial: str, title: str) -> str:
    """Write fstab, grub.cfg and the boot-marker unit into ``tree``; returns the kernel version booted."""
    kernel = latest_kernel(tree)
    esp_uuid = f"{esp_serial[:4]}-{esp_serial[4:]}"
    (tree / "boot/efi").mkdir(parents=True, exist_ok=True)
    (tree / "etc/fstab").write_text(
        "# written by builder (local target): root and EFI System Partition; no swap on the OS disk\n"
        f"UUID={root_uuid}\t/\text4\tdefaults,discard,errors=remount-ro\t0\t1\n"
        f"UUID={esp_uuid}\t/boot/efi\tvfat\tdefaults,umask=0077,nofail\t0\t2\n")
    for swap in ("swapfile", "swap.img"):
        (tree / swap).unlink(missing_ok=True)
    grub = tree / "boot/grub"
    grub.mkdir(parents=True, exist_ok=True)
    (grub / "grub.cfg").write_text(
        "# written by builder (local target)\n"
        "set timeout=0\nset default=0\n"
        "serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n"
        f"search --no-floppy --fs-uuid --set=root {root_uuid}\n"
        f"menuentry '{title}' {{\n"
        f"  linux /boot/vmlinuz-{kernel} root=UUID={root_uuid} {KERNEL_CMDLINE}\n"
        f"  initrd /boot/initrd.img-{kernel}\n"
        "}\n")
    unit = tree / "etc/systemd/system" / MARKER_UNIT
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(
        "[Unit]\nDescription=Print a boot marker on the serial console once multi-user.target is reached\n"
        "After=multi-user.target\n\n"
        "[Service]\nType=oneshot\n"
        f"ExecStart=/bin/sh -c 'echo \"{BOOT_MARKER}\" > /dev/ttyS0'\n\n"
        "[Install]\nWantedBy=multi-user.target\n")
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / MARKER_UNIT
    link.unlink(missing_ok=True)
    link.symlink_to(f"/etc/systemd/system/{MARKER_UNIT}")
    return kernel


def build_efi(tree: Path, root_uuid: str, dest: Path, log: Path) -> None:
    """A standalone GRUB EFI binary (modules + a config that finds the root by UUID) made in the chroot."""
    embed = tree / "tmp/builder-grub-embed.cfg"
    efi = tree / "tmp/builder-BOOTX64.EFI"
    embed.write_text(f"search --no-floppy --fs-uuid --set=root {root_uuid}\n"
                     "set prefix=($root)/boot/grub\nconfigfile ($root)/boot/grub/grub.cfg\n")
    try:
        run(["chroot", tree, "grub-mkstandalone", "-O", "x86_64-efi", "--locales=", "--fonts=", "--themes=",
             "--modules=part_gpt fat ext2 search search_fs_uuid configfile linux serial terminal",
             "-o", "/tmp/builder-BOOTX64.EFI", "boot/grub/grub.cfg=/tmp/builder-grub-embed.cfg"], log,
            "grub-mkstandalone (in the image chroot)")
        shutil.move(efi, dest)
    finally:
        embed.unlink(missing_ok=True)
        efi.unlink(missing_ok=True)


def tree_bytes(tree: Path) -> int:
    return int(output(["du", "-sx", "--block-size=1", str(tree)]).split()[0])


def root_size_mib(tree: Path, extra_mib: int = 512) -> int:
    """Root filesystem size: the tree plus 25% for ext4 metadata and growth, plus ``extra_mib`` free."""
    return int(tree_bytes(tree) * 1.25 / MIB) + extra_mib


def _mkfs_prezeroed() -> list[str]:
    """``-E assume_storage_prezeroed=1`` where mke2fs has it (1.47+): the disk file is new and sparse, so its
    inode tables and journal are already zero; mke2fs then neither writes them nor leaves them to the guest's
    lazy init."""
    text = subprocess.run(["mkfs.ext4", "-V"], capture_output=True, text=True, check=False).stderr
    match = re.search(r"mke2fs (\d+)\.(\d+)", text)
    return ["assume_storage_prezeroed=1"] if match and (int(match[1]), int(match[2])) >= (1, 47) else []


def export_disk(tree: Path, out_dir: Path, name: str, log: Path, size_mib: int | None = None,
                step: Callable[[str], None] = lambda _: None) -> DiskResult:
    """Turn ``tree`` into ``out_dir/<name>.vhd`` (fixed VHD, GPT, ESP + ext4 root); no mounts are used."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".disk-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    root_uuid = str(uuid.uuid4())
    esp_serial = uuid.uuid4().hex[:8].upper()
    try:
        step("boot files")
        kernel = prepare_boot(tree, root_uuid, esp_serial, name)
        build_efi(tree, root_uuid, work / "BOOTX64.EFI", log)

        step("EFI System Partition")
        esp = work / "esp.img"
        run(["mkfs.vfat", "-C", "-F", "32", "-n", "ESP", "-i", esp_serial, esp, str(ESP_MIB * 1024)], log, "mkfs.vfat")
        run(["mmd", "-i", esp, "::/EFI", "::/EFI/BOOT"], log, "mmd")
        run(["mcopy", "-i", esp, work / "BOOTX64.EFI", "::/EFI/BOOT/BOOTX64.EFI"], log, "mcopy")

        step("GPT disk")
        root_mib = size_mib - ESP_MIB - 2 if size_mib else root_size_mib(tree)
        raw = work / "disk.raw"
        with open(raw, "wb") as handle:
            handle.truncate((1 + ESP_MIB + root_mib + 1) * MIB)
        mib_lba = MIB // vhd.SECTOR
        vhd.write_gpt(raw, [
            vhd.Partition(mib_lba, (1 + ESP_MIB) * mib_lba - 1, vhd.ESP_TYPE, "EFI System", uuid.uuid4()),
            vhd.Partition((1 + ESP_MIB) * mib_lba, (1 + ESP_MIB + root_mib) * mib_lba - 1, vhd.LINUX_ROOT_X86_64,
                          "root", uuid.uuid4())])
        _log(log, f"GPT: ESP 1 MiB + {ESP_MIB} MiB (EF00), root {1 + ESP_MIB} MiB + {root_mib} MiB (8304)")
        run(["dd", f"if={esp}", f"of={raw}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"], log, "dd")
        esp.unlink()

        step("ext4 root filesystem")  # written in place at the partition's offset: no copy of the tree image
        extended = ",".join([f"offset={(1 + ESP_MIB) * MIB}", "root_owner=0:0", *_mkfs_prezeroed()])
        run(["mkfs.ext4", "-q", "-F", "-L", "cloudimg-rootfs", "-U", root_uuid, "-E", extended, "-d", tree, raw,
             f"{root_mib}M"], log, "mkfs.ext4 -d")

        step("fixed VHD")  # the raw disk plus the footer: appended in place, then moved next to the build
        size = vhd.append_footer(raw)
        _log(log, f"fixed VHD footer appended ({size} bytes of disk)")
        dest = out_dir / f"{name}.vhd"
        dest.unlink(missing_ok=True)
        raw.rename(dest)
        info = json.loads(output(["qemu-img", "info", "-f", "vpc", "--output=json", str(dest)]))
        virtual = int(info["virtual-size"])
        if info.get("format") != "vpc" or virtual != size or virtual % MIB:
            raise OperationError(f"{dest}: qemu-img reads it as {info.get('format')} of {virtual} bytes, expected a "
                                 f"fixed VHD of {size} bytes (a whole number of MiB)", log)
        return DiskResult(dest, virtual, os.stat(dest).st_size, root_uuid, esp_serial, kernel)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _log(log: Path, line: str) -> None:
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"# {line}\n")


def partitions(disk: Path) -> list[dict]:
    """GPT partitions of a raw or fixed-VHD disk (``sgdisk -p`` reads the VHD; the footer is past the end)."""
    text = subprocess.run(["sgdisk", "-p", str(disk)], capture_output=True, text=True, check=False).stdout
    rows = []
    for line in text.splitlines():
        match = re.match(r"\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+(\w+)\s+(.*)$", line)
        if match:
            rows.append({"number": int(match[1]), "start": int(match[2]), "end": int(match[3]),
                         "code": match[4], "name": match[5].strip()})
    return rows
