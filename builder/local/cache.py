"""The layer cache: one snapshot per converged layer, under ``<cache>/layers/<key>/``.

An entry holds ``meta.json`` (format, image, layer, key, parent key and snapshot id, base key, size, created, last
used) and one of:

* ``diff/`` (format ``overlay-diff``): the overlayfs upper directory the layer converged into, i.e. only what the
  layer changed (whiteouts for deletions). It is meaningful only on top of its parent chain: the parent
  snapshot it was made on (``parent`` and ``parent_id`` must match that entry's key and ``id``), down to the
  base root filesystem (``base_rootfs``). Saving it is a ``rename`` of the upper directory; using it is a mount.
* ``rootfs/`` (format ``tree``): a whole root filesystem (the copy fallback when overlayfs cannot be mounted);
  it needs no parent.

Entries from before formats existed (a ``rootfs/`` without ``format`` in their meta) are listed as ``legacy``,
never used and always stale. Entries are written to a hidden partial folder and renamed into place, so a crash
never leaves a half snapshot that looks valid; a snapshot another build has mounted is never removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.local.overlay import apply_diff, lower_dirs_in_use
from builder.local.tools import remove as remove_tree
from builder.rootfs import copy_tree, mounts_under

DIFF = "overlay-diff"
TREE = "tree"
LEGACY = "legacy"
FORMATS = (DIFF, TREE)


@dataclass
class Entry:
    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def format(self) -> str:
        return self.meta.get("format") or LEGACY

    @property
    def data(self) -> Path:
        """The snapshot's folder: ``diff/`` or ``rootfs/``."""
        return self.path / ("diff" if self.format == DIFF else "rootfs")

    @property
    def usable(self) -> bool:
        return self.format in FORMATS and self.data.is_dir()

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "path": str(self.path), **self.meta, "format": self.format}


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

    # -- lookup ----------------------------------------------------------------------------------------
    def _load(self, path: Path) -> Entry | None:
        meta = path / "meta.json"
        if not meta.is_file():
            return None
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return Entry(path.name, path, data if isinstance(data, dict) else {})

    def get(self, key: str) -> Entry | None:
        """The usable snapshot ``key`` (a diff or a tree; never a legacy one), or None."""
        entry = self._load(self.root / key)
        return entry if entry is not None and entry.usable else None

    def _fits(self, entry: Entry, parent: Entry | None) -> bool:
        """Whether ``entry`` can stand on ``parent`` (None: directly on the base root filesystem)."""
        if entry.format == TREE:
            return True
        if parent is None:
            return entry.meta.get("parent") is None and Path(entry.meta.get("base_rootfs", "")).is_dir()
        return entry.meta.get("parent") == parent.key and entry.meta.get("parent_id") == parent.meta.get("id")

    def chain(self, keys: list[tuple[str, str]]) -> list[Entry]:
        """The longest prefix of ``keys`` (``(layer, key)`` in layer order) with valid snapshots, bottom first."""
        found: list[Entry] = []
        for _, key in keys:
            entry = self.get(key)
            if entry is None or not self._fits(entry, found[-1] if found else None):
                break
            found.append(entry)
        return found

    def longest_prefix(self, keys: list[tuple[str, str]]) -> int:
        """How many leading layers of ``keys`` have valid snapshots."""
        return len(self.chain(keys))

    @staticmethod
    def lowers(chain: list[Entry], base_rootfs: Path) -> list[Path]:
        """Overlay lower directories for a tree made of ``chain`` (bottom first): top first, down to the
        nearest whole tree (a ``tree`` snapshot, else the base root filesystem)."""
        found: list[Path] = []
        for entry in reversed(chain):
            found.append(entry.data)
            if entry.format == TREE:
                return found
        return [*found, base_rootfs]

    def materialize(self, chain: list[Entry], base_rootfs: Path, dest: Path) -> None:
        """Copy the tree ``chain`` (bottom first) describes into ``dest``: the nearest whole tree, then every
        diff above it applied in order (the copy fallback)."""
        start = max((i for i, e in enumerate(chain) if e.format == TREE), default=-1)
        if dest.exists():
            remove_tree(dest)
        copy_tree(chain[start].data if start >= 0 else base_rootfs, dest)
        for entry in chain[start + 1:]:
            apply_diff(entry.data, dest)

    def touch(self, chain: list[Entry]) -> None:
        now = time.time()
        for entry in chain:
            entry.meta["last_used"] = now
            with contextlib.suppress(OSError):
                self._write_meta(entry.path, entry.meta)

    # -- saving ----------------------------------------------------------------------------------------
    def _partial(self, key: str) -> Path:
        partial = self.root / f".{key}.partial.{os.getpid()}"
        if partial.exists():
            remove_tree(partial)
        partial.mkdir(parents=True)
        return partial

    def _commit(self, key: str, partial: Path, meta: dict[str, Any]) -> Entry:
        now = time.time()
        full = {**meta, "key": key, "id": uuid.uuid4().hex, "created": now, "last_used": now}
        self._write_meta(partial, full)
        final = self.root / key
        if final.exists():
            remove_tree(final)
        partial.rename(final)
        return Entry(key, final, full)

    def in_use(self, entry: Entry | Path) -> list[str]:
        """Mount points of overlays that use this snapshot (another build's tree)."""
        return lower_dirs_in_use(entry.path if isinstance(entry, Entry) else entry)

    def save(self, key: str, rootfs: Path, meta: dict[str, Any]) -> Entry:
        """Snapshot the whole tree ``rootfs`` (which must have nothing mounted) as ``key`` by copying it."""
        if mounts_under(rootfs):
            raise RuntimeError(f"refusing to snapshot {rootfs}: mounts remain under it")
        existing = self._load(self.root / key)
        if existing is not None and self.in_use(existing):
            return existing
        partial = self._partial(key)
        copy_tree(rootfs, partial / "rootfs")
        return self._commit(key, partial, {**meta, "format": TREE, "size": _du(partial / "rootfs")})

    def save_diff(self, key: str, upper: Path, meta: dict[str, Any], parent: Entry | None,
                  base_rootfs: Path) -> Entry:
        """Move the overlay upper directory ``upper`` (unmounted) into the cache as the diff ``key`` on
        ``parent`` (None: on ``base_rootfs``). When another build has ``key`` mounted, that snapshot is kept
        and returned (same key, same inputs) and ``upper`` is left where it is."""
        if mounts_under(upper):
            raise RuntimeError(f"refusing to snapshot {upper}: mounts remain under it")
        existing = self._load(self.root / key)
        if existing is not None and existing.usable and self.in_use(existing):
            return existing
        partial = self._partial(key)
        upper.rename(partial / "diff")
        links = {"parent": parent.key if parent else None, "parent_id": parent.meta.get("id") if parent else None,
                 "base_rootfs": str(base_rootfs) if parent is None else None}
        return self._commit(key, partial, {**meta, **links, "format": DIFF, "size": _du(partial / "diff")})

    # -- listing and pruning ---------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Every snapshot, oldest first, legacy ones included (see :attr:`Entry.format`)."""
        if not self.root.is_dir():
            return []
        found = [self._load(p) for p in sorted(self.root.iterdir()) if not p.name.startswith(".") and p.is_dir()]
        return sorted((e for e in found if e), key=lambda e: e.meta.get("created", 0))

    def partials(self) -> list[Path]:
        """Half-written snapshots whose writing process is gone."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.glob(".*.partial.*"):
            pid = path.name.rsplit(".", 1)[1]
            if not pid.isdigit() or not _alive(int(pid)):
                found.append(path)
        return sorted(found)

    def broken(self) -> list[Entry]:
        """Snapshots that can never be used: legacy ones, and diffs whose parent is gone or was replaced."""
        entries = {e.key: e for e in self.entries()}
        bad: list[Entry] = []
        for entry in entries.values():
            if not entry.usable:
                bad.append(entry)
            elif entry.format == DIFF:
                parent = entries.get(entry.meta.get("parent") or "")
                if entry.meta.get("parent") is None:
                    ok = self._fits(entry, None)
                else:
                    ok = parent is not None and parent.usable and self._fits(entry, parent)
                if not ok:
                    bad.append(entry)
        return self._with_dependents(bad)

    def dependents(self, chosen: list[Entry]) -> list[Entry]:
        """Diff snapshots that stand (directly or further up) on one of ``chosen``; removing those breaks them."""
        keys = {e.key for e in chosen}
        return [e for e in self._with_dependents(chosen) if e.key not in keys]

    def _with_dependents(self, chosen: list[Entry]) -> list[Entry]:
        picked = {e.key: e for e in chosen}
        children: dict[str, list[Entry]] = {}
        for entry in self.entries():
            if entry.format == DIFF and entry.meta.get("parent"):
                children.setdefault(entry.meta["parent"], []).append(entry)
        todo = list(picked.values())
        while todo:
            for child in children.get(todo.pop().key, []):
                if child.key not in picked:
                    picked[child.key] = child
                    todo.append(child)
        return sorted(picked.values(), key=lambda e: e.meta.get("created", 0))

    def stale(self) -> list[Entry]:
        """Entries superseded by a newer snapshot of the same image and layer, unusable ones (legacy, broken
        chain), and the diffs standing on any of those."""
        newest: dict[tuple[str, str], Entry] = {}
        usable = [e for e in self.entries() if e.usable]
        for entry in usable:
            slot = (entry.meta.get("image", ""), entry.meta.get("layer", ""))
            if slot not in newest or entry.meta.get("last_used", 0) >= newest[slot].meta.get("last_used", 0):
                newest[slot] = entry
        keep = {e.key for e in newest.values()}
        chosen = {e.key: e for e in self.broken()}
        chosen.update({e.key: e for e in usable if e.key not in keep})
        return self._with_dependents(list(chosen.values()))

    def plan_prune(self, chosen: list[Entry]) -> tuple[list[Entry], list[Entry]]:
        """``(remove, kept)``: ``chosen`` plus the diffs that depend on them, less those a mounted overlay uses
        (another build's tree; their parents stay too)."""
        remove = self._with_dependents(chosen)
        busy = {e.key for e in remove if self.in_use(e)}
        if busy:  # a busy snapshot's whole chain below it is in use too (they are its lower layers)
            kept = [e for e in remove if e.key in busy]
            return [e for e in remove if e.key not in busy], kept
        return remove, []

    def prune(self, entries: list[Entry], partials: bool = True) -> tuple[int, int]:
        """Remove ``entries`` and every diff that depends on them (and leftover partial snapshots), except
        snapshots a mounted overlay uses; returns (count, bytes freed)."""
        remove, _ = self.plan_prune(entries)
        freed = 0
        count = 0
        for entry in remove:
            freed += entry.meta.get("size", 0) or 0
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
