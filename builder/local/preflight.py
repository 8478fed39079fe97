"""Before a local build starts: root, and every tool the requested phases need, with how to get them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import InputError, Problem

if TYPE_CHECKING:
    from builder.local.pipeline import BuildOptions

TOOLS = {  # tool -> Debian package
    "debootstrap": "debootstrap", "chroot": "coreutils", "mkfs.vfat": "dosfstools", "mmd": "mtools",
    "mcopy": "mtools", "mkfs.ext4": "e2fsprogs", "qemu-img": "qemu-utils",
    "dpkg-query": "dpkg", "tar": "tar",
}
STANDIN_TOOLS = {"dpkg-deb": "dpkg", "apt-ftparchive": "apt-utils", "gpg": "gnupg"}
BOOT_TOOLS = {"qemu-system-x86_64": "qemu-system-x86"}
OVMF = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None or Path(f"/usr/sbin/{tool}").exists()


def missing(options: BuildOptions) -> dict[str, str]:
    """Missing tools (name -> Debian package) for ``options``."""
    needed = dict(TOOLS)
    if options.base_rootfs is not None:
        needed.pop("debootstrap")
    if options.feed == "stand-in":
        needed.update(STANDIN_TOOLS)
    if options.boot:
        needed.update(BOOT_TOOLS)
    absent = {tool: package for tool, package in needed.items() if not _have(tool)}
    if options.boot and not OVMF.exists():
        absent[str(OVMF)] = "ovmf"
    return absent


def preflight(options: BuildOptions, euid: int | None = None) -> None:
    problems = []
    if (os.geteuid() if euid is None else euid) != 0:
        problems.append(Problem("local builds need root (debootstrap, chroot, mounts for Ansible): run as root, "
                                "e.g. `sudo .venv/bin/builder build ...`", field="user"))
    absent = missing(options)
    if absent:
        packages = " ".join(sorted(set(absent.values())))
        problems.append(Problem(f"missing {', '.join(sorted(absent))}; install with `sudo bash .ci/setup` "
                                f"(or `sudo apt-get install {packages}`)", field="tools"))
    if options.base_rootfs is not None and not options.base_rootfs.exists():
        problems.append(Problem(f"no such file or folder: {options.base_rootfs}", field="--base-rootfs"))
    if problems:
        raise InputError(problems)
