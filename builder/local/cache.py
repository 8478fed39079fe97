"""The layer cache: root filesystem snapshots after each layer, under ``<cache>/layers/<key>/``.

Each entry holds ``rootfs/`` and ``meta.json`` (image, layer, key, parent key, size, created, last used).
Entries are written to a hidden partial folder and renamed into place, so a crash never leaves a half
snapshot that looks valid.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.local.tools import remove as remove_tree
from builder.rootfs import copy_tree, mounts_under


@dataclass
class Entry:
    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "path": str(self.path), **self.meta}


def _du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LayerCache:
    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "layers"

    def get(self, key: str) -> Entry | None:
        path = self.root / key
        meta = path / "meta.json"
        if not meta.exists() or not (path / "rootfs").is_dir():
            return None
        return Entry(key, path, json.loads(meta.read_text(encoding="utf-8")))

    def longest_prefix(self, keys: list[tuple[str, str]]) -> int:
        """How many leading layers of ``keys`` have valid snapshots."""
        count = 0
        for _, key in keys:
            if self.get(key) is None:
                break
            count += 1
        return count

    def restore(self, key: str, dest: Path) -> None:
        entry = self.get(key)
        if entry is None:
            raise KeyError(key)
        if dest.exists():
            remove_tree(dest)
        copy_tree(entry.rootfs, dest)
        entry.meta["last_used"] = time.time()
        self._write_meta(entry.path, entry.meta)

    def save(self, key: str, rootfs: Path, meta: dict[str, Any]) -> Entry:
        """Snapshot ``rootfs`` (which must have nothing mounted) as ``key``."""
        if mounts_under(rootfs):
            raise RuntimeError(f"refusing to snapshot {rootfs}: mounts remain under it")
        partial = self.root / f".{key}.partial.{os.getpid()}"
        if partial.exists():
            remove_tree(partial)
        partial.mkdir(parents=True)
        copy_tree(rootfs, partial / "rootfs")
        now = time.time()
        full = {**meta, "key": key, "created": now, "last_used": now, "size": _du(partial / "rootfs")}
        self._write_meta(partial, full)
        final = self.root / key
        if final.exists():
            remove_tree(final)
        partial.rename(final)
        return Entry(key, final, full)

    def entries(self) -> list[Entry]:
        if not self.root.is_dir():
            return []
        found = [self.get(p.name) for p in sorted(self.root.iterdir()) if not p.name.startswith(".")]
        return sorted((e for e in found if e), key=lambda e: e.meta.get("created", 0))

    def partials(self) -> list[Path]:
        """Half-written snapshots whose writing process is gone."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob(".*.partial.*") if not _alive(int(p.name.rsplit(".", 1)[1])))

    def stale(self) -> list[Entry]:
        """Entries superseded by a newer snapshot of the same image and layer."""
        newest: dict[tuple[str, str], Entry] = {}
        for entry in self.entries():
            slot = (entry.meta.get("image", ""), entry.meta.get("layer", ""))
            if slot not in newest or entry.meta.get("last_used", 0) >= newest[slot].meta.get("last_used", 0):
                newest[slot] = entry
        keep = {e.key for e in newest.values()}
        return [e for e in self.entries() if e.key not in keep]

    def prune(self, entries: list[Entry], partials: bool = True) -> tuple[int, int]:
        """Remove ``entries`` (and leftover partial snapshots); returns (count, bytes freed)."""
        freed = 0
        count = 0
        for entry in entries:
            freed += entry.meta.get("size", 0)
            remove_tree(entry.path)
            count += 1
        if partials:
            for partial in self.partials():
                freed += _du(partial)
                remove_tree(partial)
                count += 1
        return count, freed

    @staticmethod
    def _write_meta(path: Path, meta: dict[str, Any]) -> None:
        tmp = path / ".meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        tmp.replace(path / "meta.json")
