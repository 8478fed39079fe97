"""The build's base root filesystem: a cached debootstrap of the image's OS (Debian 12 with a notice when
that archive is unreachable), or a tarball or folder the user supplies (``--base-rootfs``)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError
from builder.hashing import sha256_file as _file_digest
from builder.local.sbom import os_release
from builder.local.tools import run
from builder.rootfs import ensure_base, remove_tree, require_tools, resolve_spec

OS_NAMES = {("debian", "12"): "debian12", ("ubuntu", "22.04"): "ubuntu2204", ("ubuntu", "24.04"): "ubuntu2404"}


@dataclass(frozen=True)
class Base:
    os: str
    key: str
    rootfs: Path
    source: str


def base_from_debootstrap(os_name: str, cache_dir: Path, log: Path, mirror: str | None = None,
                          notice: Callable[[str], None] = print,
                          progress: Callable[[str], None] = lambda _: None) -> Base:
    spec = resolve_spec(os_name, mirror, notice=notice)
    if not (cache_dir / "base" / spec.key / "complete.json").exists():
        progress(f"debootstrap {spec.suite} from {spec.mirror} into the cache (first build only, 1-3 min)")
    rootfs = ensure_base(spec, cache_dir, log)
    return Base(spec.os, spec.key, rootfs, f"debootstrap {spec.suite}")




def detect_os(tree: Path, where: Path) -> str:
    release = os_release(tree)
    name = OS_NAMES.get((release.get("ID", ""), release.get("VERSION_ID", "")))
    if name is None:
        known = ", ".join(f"{i} {v}" for i, v in OS_NAMES)
        raise InputError(f"unsupported OS {release.get('PRETTY_NAME') or 'without /etc/os-release'} (supported: "
                         f"{known})", file=where, field="--base-rootfs")
    return name


def check_tree(tree: Path, where: Path) -> None:
    """A usable base has Python (for Ansible), a kernel with an initrd and GRUB's EFI modules."""
    missing = []
    if not any((tree / p).exists() for p in ("usr/bin/python3", "bin/python3")):
        missing.append("python3")
    if not list((tree / "boot").glob("vmlinuz-*")) or not list((tree / "boot").glob("initrd.img-*")):
        missing.append("a kernel and initrd in /boot")
    if not (tree / "usr/lib/grub/x86_64-efi").is_dir():
        missing.append("grub-efi-amd64-bin (/usr/lib/grub/x86_64-efi)")
    if missing:
        raise InputError(f"the base root filesystem lacks {', '.join(missing)}", file=where, field="--base-rootfs")


def base_from_user(source: Path, cache_dir: Path, log: Path) -> Base:
    """Import ``source`` (a folder or a .tar[.gz|.xz|.zst] of a root filesystem) into the cache by content."""
    require_tools("tar")
    source = source.resolve()
    if not source.exists():
        raise InputError(f"no such file or folder: {source}", field="--base-rootfs")
    if source.is_dir():
        from builder.local.keys import tree_digest

        check_tree(source, source)
        key = "user-" + tree_digest(source)[:16]
        return Base(detect_os(source, source), key, source, f"folder {source}")
    if not tarfile.is_tarfile(source) and not source.name.endswith((".zst", ".tzst")):
        raise InputError("not a folder or a tar archive", file=source, field="--base-rootfs")
    key = "user-" + _file_digest(source)[:16]
    final = cache_dir / "base" / key
    rootfs = final / "rootfs"
    if not (final / "complete.json").exists():
        work = cache_dir / "base" / f".{key}.partial"
        remove_tree(work)
        (work / "rootfs").mkdir(parents=True)
        try:
            run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpaf", source, "-C",
                 work / "rootfs"], log, f"tar -x {source.name}")
            check_tree(work / "rootfs", source)
        except BaseException:
            remove_tree(work)
            raise
        (work / "complete.json").write_text(json.dumps({"source": str(source), "key": key}, indent=2))
        remove_tree(final)
        work.rename(final)
    return Base(detect_os(rootfs, source), key, rootfs, f"tarball {source.name}")
