"""Base root filesystems (debootstrap, cached by content key) and chroot mounts.

Used by the local build target and by the Ansible integration tests: one cached Debian/Ubuntu tree
with a kernel, GRUB for EFI, systemd, Python (for Ansible) and the Azure Linux agent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError, OperationError

SUITES = {
    "debian12": ("bookworm", "http://deb.debian.org/debian"),
    "ubuntu2204": ("jammy", "http://archive.ubuntu.com/ubuntu"),
    "ubuntu2404": ("noble", "http://archive.ubuntu.com/ubuntu"),
}
COMPONENTS = {"debian12": "main", "ubuntu2204": "main,universe", "ubuntu2404": "main,universe"}
KERNEL = {"debian12": "linux-image-cloud-amd64", "ubuntu2204": "linux-image-azure", "ubuntu2404": "linux-image-azure"}
AZURE_AGENT = {"debian12": "waagent", "ubuntu2204": "walinuxagent", "ubuntu2404": "walinuxagent"}
KEYRINGS = {"debian12": "/usr/share/keyrings/debian-archive-keyring.gpg",
            "ubuntu2204": "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
            "ubuntu2404": "/usr/share/keyrings/ubuntu-archive-keyring.gpg"}
BASE_PACKAGES = (
    "python3", "python3-apt", "systemd-sysv", "udev", "kmod", "initramfs-tools", "grub-efi-amd64-bin",
    "ca-certificates", "gnupg", "openssh-server", "sudo", "iproute2", "ifupdown", "isc-dhcp-client",
)
BASE_LAYOUT_VERSION = "1"  # bump when the way bases are made changes


@dataclass(frozen=True)
class BaseSpec:
    os: str
    suite: str
    mirror: str
    packages: tuple[str, ...]

    @property
    def key(self) -> str:
        payload = json.dumps([BASE_LAYOUT_VERSION, self.os, self.suite, self.mirror, sorted(self.packages)])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def reachable(mirror: str, suite: str, timeout: float = 5.0) -> bool:
    """True when ``mirror`` serves ``dists/<suite>/Release``."""
    try:
        request = urllib.request.Request(f"{mirror}/dists/{suite}/Release", method="HEAD")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def resolve_spec(os_name: str, mirror: str | None = None, notice: Callable[[str], None] = print,
                 check: Callable[[str, str], bool] = reachable) -> BaseSpec:
    """The base for ``os_name``; Debian 12 (with a notice) when that OS's archive is unreachable."""
    if os_name not in SUITES:
        raise InputError(f"unknown OS '{os_name}' (known: {', '.join(SUITES)})", field="os")
    suite, default_mirror = SUITES[os_name]
    chosen = mirror or default_mirror
    if os_name != "debian12" and not Path(KEYRINGS[os_name]).exists():
        notice(f"notice: no archive keyring for {suite} ({KEYRINGS[os_name]}) to verify {chosen}; building on "
               "Debian 12 with the image's debian12 variables instead")
        os_name = "debian12"
        suite, chosen = SUITES["debian12"]
    elif os_name != "debian12" and not check(chosen, suite):
        notice(f"notice: {chosen} ({suite}) is unreachable; building on Debian 12 with the image's debian12 "
               "variables instead")
        os_name = "debian12"
        suite, chosen = SUITES["debian12"]
        chosen = mirror if mirror and check(mirror, suite) else chosen
    return BaseSpec(os_name, suite, chosen, (*BASE_PACKAGES, KERNEL[os_name], AZURE_AGENT[os_name]))


def require_tools(*tools: str) -> None:
    """Fail with a clear message when we are not root or a tool is missing."""
    if os.geteuid() != 0:
        raise InputError("local builds need root (debootstrap, chroot, mounts): run with sudo or as root")
    missing = [t for t in tools if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    if missing:
        raise InputError(f"missing tools: {', '.join(missing)}; install them with `bash .ci/setup` "
                         f"(apt-get install {' '.join(missing)})")


def ensure_base(spec: BaseSpec, cache_root: Path, log: Path | None = None) -> Path:
    """Return a cached base root filesystem for ``spec``, running debootstrap on a miss."""
    require_tools("debootstrap", "chroot")
    final = cache_root / "base" / spec.key
    rootfs = final / "rootfs"
    if (final / "complete.json").exists():
        return rootfs
    work = cache_root / "base" / f".{spec.key}.partial"
    if work.exists():
        remove_tree(work)
    (work / "rootfs").mkdir(parents=True)
    command = ["debootstrap", "--variant=minbase", f"--components={COMPONENTS[spec.os]}",
               f"--keyring={KEYRINGS[spec.os]}", f"--include={','.join(spec.packages)}", spec.suite,
               str(work / "rootfs"), spec.mirror]
    if not Path(f"/usr/share/debootstrap/scripts/{spec.suite}").exists():
        command.append("/usr/share/debootstrap/scripts/gutsy")  # Ubuntu releases newer than this debootstrap
    with open(log or os.devnull, "ab") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        remove_tree(work)
        raise OperationError(f"debootstrap {spec.suite} from {spec.mirror} failed (exit {result.returncode})", log)
    (work / "rootfs" / "etc" / "hostname").write_text("localhost\n")
    (work / "complete.json").write_text(json.dumps({"os": spec.os, "suite": spec.suite, "mirror": spec.mirror,
                                                    "packages": list(spec.packages)}, indent=2))
    if final.exists():
        remove_tree(final)
    work.rename(final)
    return rootfs


def copy_tree(source: Path, dest: Path) -> None:
    """Copy a root filesystem preserving owners, modes, links and xattrs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(dest)], check=True)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` (to prove nothing is left behind)."""
    prefix = str(root.resolve())
    found = []
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            point = line.split()[1].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def unmount_all(root: Path, keep_root: bool = False) -> None:
    """Unmount everything at or below ``root``, deepest first (``keep_root``: only what is below it, so a
    ``root`` that is itself a mount, such as an overlay work tree, stays mounted)."""
    top = str(root.resolve())
    for point in sorted(mounts_under(root), key=len, reverse=True):
        if keep_root and point == top:
            continue
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_tree(path: Path) -> None:
    unmount_all(path)
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[Path]:
    """Mount /proc, /sys, /dev, /dev/pts into ``root``; stop services from starting; always unmount."""
    root = root.resolve()
    policy = root / "usr/sbin/policy-rc.d"
    resolv = root / "etc/resolv.conf"
    try:
        for fs_type, source, target, options in (
            ("proc", "proc", "proc", None),
            ("sysfs", "sysfs", "sys", None),
            (None, "/dev", "dev", "bind"),
            ("devpts", "devpts", "dev/pts", "gid=5,mode=620,ptmxmode=666"),
        ):
            point = root / target
            point.mkdir(parents=True, exist_ok=True)
            command = ["mount"]
            command += ["--bind"] if options == "bind" else ["-t", fs_type]
            if options and options != "bind":
                command += ["-o", options]
            subprocess.run([*command, source, str(point)], check=True, capture_output=True)
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text("#!/bin/sh\n# written by builder during a build: no service starts in a chroot\nexit 101\n")
        policy.chmod(0o755)
        if resolv.is_symlink() or not resolv.exists():
            resolv.unlink(missing_ok=True)
            shutil.copy("/etc/resolv.conf", resolv)
        yield root
    finally:
        policy.unlink(missing_ok=True)
        unmount_all(root, keep_root=True)  # what was mounted into it; ``root`` itself may be an overlay
