"""overlayfs for layer snapshots: mount a layer's tree over the snapshots below it, apply a diff by copying.

A layer converges on an overlay whose lower directories are the parent chain (the newest layer's diff first,
the base root filesystem last) and whose upper directory starts empty; after the converge the upper directory
*is* the layer's snapshot (its diff), and moving it into the cache is a ``rename``. The mount options keep the
diffs plain (``redirect_dir=off,metacopy=off,index=off``): every changed file is a whole copy in the upper
directory, a deleted path is a whiteout (a character device 0/0) and a directory that replaced a deleted one
is marked opaque (``trusted.overlay.opaque=y``), so a diff can also be applied to a copied tree without
overlayfs (:func:`apply_diff`, the copy fallback).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

from builder.errors import OperationError

OPTIONS = ("redirect_dir=off", "metacopy=off", "index=off")
OPAQUE = "trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = "trusted.overlay."
_UNSAFE = (",", ":", "\\", "\n", " ")


def mount_options(lowers: list[Path], upper: Path, work: Path) -> str:
    """``-o`` for ``mount -t overlay``: ``lowers`` top first (the newest layer), the base last."""
    paths = [*lowers, upper, work]
    bad = [str(p) for p in paths if any(c in str(p) for c in _UNSAFE)]
    if bad:
        raise OperationError(f"overlay paths must not contain ',', ':', '\\' or spaces: {', '.join(bad)}")
    text = (f"lowerdir={':'.join(str(p) for p in lowers)},upperdir={upper},workdir={work},"
            + ",".join(OPTIONS))
    if len(text) >= 4000:  # the kernel takes one page of mount options
        raise OperationError(f"overlay mount options too long ({len(text)} characters, {len(lowers)} lower layers)")
    return text


def mount(lowers: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount the overlay of ``lowers`` (top first) with a writable ``upper`` at ``target``."""
    if not lowers:
        raise OperationError("an overlay needs at least one lower directory")
    fresh = not upper.exists()
    for path in (upper, work, target):
        path.mkdir(parents=True, exist_ok=True)
    if fresh:  # the merged root takes the upper directory's owner and mode: keep the tree's
        top = os.lstat(lowers[0])
        os.chown(upper, top.st_uid, top.st_gid)
        os.chmod(upper, stat.S_IMODE(top.st_mode))
    result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", mount_options(lowers, upper, work),
                             str(target)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OperationError(f"cannot mount the overlay at {target}: {result.stderr.strip() or result.returncode}")


def probe(scratch: Path) -> str | None:
    """None when overlayfs mounts (with :data:`OPTIONS`) under ``scratch``; else the reason it does not."""
    from builder.local.tools import remove

    root = scratch / f".overlay-probe.{os.getpid()}"
    try:
        (root / "lower").mkdir(parents=True, exist_ok=True)
        (root / "lower" / "file").write_text("probe\n")
        mount([root / "lower"], root / "upper", root / "work", root / "merged")
        try:
            (root / "merged" / "file").unlink()
            if not is_whiteout(os.lstat(root / "upper" / "file")):
                return "overlayfs did not record a deletion as a whiteout"
        finally:
            subprocess.run(["umount", str(root / "merged")], capture_output=True, check=False)
        return None
    except (OSError, OperationError) as exc:
        return str(exc)
    finally:
        remove(root)


def lower_dirs_in_use(path: Path) -> list[str]:
    """Overlay mounts (of this mount namespace) that have ``path`` or a folder in it as a layer."""
    needle = str(path).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split(" - ", 1)
            if len(fields) != 2 or not fields[1].startswith("overlay "):
                continue
            options = fields[1].split(" ", 2)[2].replace("\\040", " ")
            layers = [p for o in options.split(",") if o.startswith(("lowerdir=", "upperdir=", "workdir="))
                      for p in o.split("=", 1)[1].split(":")]
            if any((p.rstrip("/") + "/").startswith(needle) for p in layers):
                found.append(line.split()[4])
    return found


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _remove(path: str) -> None:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        if name.startswith(OVERLAY_XATTR_PREFIX):
            continue
        with contextlib.suppress(OSError):
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)


def _metadata(src: str, dst: str, st: os.stat_result) -> None:
    """Owner, mode, extended attributes (file capabilities after chown, which clears them), times."""
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    _copy_xattrs(src, dst)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def apply_diff(diff: Path, dest: Path) -> None:
    """Apply an overlay upper directory ``diff`` to the tree ``dest`` (what mounting it over ``dest`` shows).

    Whiteouts delete, opaque directories replace, everything else is copied with owner, mode, extended
    attributes, times and hard links (within the diff).
    """
    links: dict[tuple[int, int], str] = {}

    def walk(src_dir: str, dst_dir: str) -> None:
        with os.scandir(src_dir) as entries:
            items = sorted(entries, key=lambda e: e.name)
        for entry in items:
            src, dst = entry.path, os.path.join(dst_dir, entry.name)
            st = entry.stat(follow_symlinks=False)
            exists = os.path.lexists(dst)
            if is_whiteout(st):
                if exists:
                    _remove(dst)
                continue
            if stat.S_ISDIR(st.st_mode):
                if exists and (_opaque(src) or not stat.S_ISDIR(os.lstat(dst).st_mode)):
                    _remove(dst)
                    exists = False
                if not exists:
                    os.mkdir(dst, 0o700)
                walk(src, dst)
                _metadata(src, dst, st)
                continue
            if exists:
                _remove(dst)
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], dst)
                continue
            if stat.S_ISREG(st.st_mode):
                shutil.copyfile(src, dst, follow_symlinks=False)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISFIFO(st.st_mode):
                os.mkfifo(dst)
            else:  # devices and sockets
                os.mknod(dst, st.st_mode, st.st_rdev)
            _metadata(src, dst, st)
            if st.st_nlink > 1:
                links[key] = dst

    if not diff.is_dir() or not dest.is_dir():
        raise OperationError(f"cannot apply {diff} to {dest}: both must be folders")
    walk(str(diff), str(dest))
    root = os.lstat(diff)
    _metadata(str(diff), str(dest), root)
