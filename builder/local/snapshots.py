"""How a local build's tree is made from layer snapshots: the overlay or whole-tree-copy strategy.

``overlay``: each layer converges on a mount of the snapshots below it with an empty upper directory, which
becomes its snapshot by a rename; the steps after the layers work on one more overlay with a per-build upper
directory. ``copy`` (where overlayfs cannot be mounted, or ``--snapshots copy``): the tree is a plain folder and
snapshots are whole-tree copies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.errors import OperationError
from builder.local import overlay
from builder.local.cache import Entry, LayerCache
from builder.local.tools import remove
from builder.rootfs import copy_tree, mounts_under, unmount_all

MODES = ("auto", "overlay", "copy")


def _ignore(text: str) -> None:
    return None


class LayerTrees:
    """The build's work tree (``<work>/rootfs``) over ``base`` and the layer snapshots in ``cache``."""

    def __init__(self, cache: LayerCache, work: Path, base: Path, *, notice: Callable[[str], None] = _ignore,
                 update: Callable[[str], None] = _ignore) -> None:
        self.cache = cache
        self.work = work
        self.base = base
        self.notice = notice
        self.update = update
        self.mode = ""  # overlay | copy, once chosen
        self.chain: list[Entry] = []  # the snapshots the tree is made of so far, bottom first
        self.unsaved: list[Path] = []  # overlay uppers not in the cache (top first)
        self.reuse = 0  # leading layers restored from the cache

    @property
    def rootfs(self) -> Path:
        return self.work / "rootfs"

    # -- strategy -----------------------------------------------------------------------------------------
    def choose(self, wanted: str) -> str:
        """``overlay`` or ``copy`` for ``wanted`` (auto | overlay | copy); returns how it is recorded in
        build.json (``overlay``, or ``copy: <why>``), with a notice for the fallback."""
        if wanted == "copy":
            self.mode = "copy"
            self.notice("notice: layer snapshots are whole-tree copies (forced by --snapshots copy or "
                        "BUILDER_SNAPSHOTS=copy); overlay diffs are faster")
            return "copy: forced (--snapshots copy or BUILDER_SNAPSHOTS=copy)"
        self.work.mkdir(parents=True, exist_ok=True)
        reason = overlay.probe(self.work)  # the work tree's folder: the cache's file system
        if reason is None:
            try:
                overlay.mount_options([self.base, self.cache.root], self.work, self.work)
            except OperationError as exc:
                reason = str(exc)
        if reason is None:
            self.mode = "overlay"
            return "overlay"
        if wanted == "overlay":
            raise OperationError(f"overlayfs cannot be used here: {reason} (--snapshots overlay)")
        self.mode = "copy"
        self.notice(f"notice: overlayfs cannot be used here ({reason}); layer snapshots fall back to "
                    "whole-tree copies (slower: each snapshot is copied when saved and restored)")
        return f"copy: overlayfs cannot be used here ({reason})"

    def find(self, keys: list[tuple[str, str]], use_cache: bool) -> int:
        """Look up the cached chain for the layer ``keys``; returns how many leading layers it restores."""
        self.chain = self.cache.chain(keys) if use_cache else []
        self.reuse = len(self.chain)
        return self.reuse

    def _lowers(self) -> list[Path]:
        """The overlay lower directories for the next tree, top first."""
        return [*self.unsaved, *self.cache.lowers(self.chain, self.base)]

    # -- layers -------------------------------------------------------------------------------------------
    def restored(self, index: int) -> str:
        """Layer ``index`` comes from the cache; returns the phase detail. After the last cached layer the next
        tree starts from its chain (copied in ``copy`` mode)."""
        entry = self.chain[index]
        detail = f"snapshot {entry.key}"
        if index == self.reuse - 1:
            self.cache.touch(self.chain)
            if self.mode == "copy":
                self.update(f"copying snapshot chain up to {entry.key}")
                self.cache.materialize(self.chain, self.base, self.rootfs)
                detail += " (copied)"
        return detail

    def _upper(self, layer: str) -> Path:
        return self.work / "layers" / layer

    def open_layer(self, layer: str, index: int) -> Path:
        """The tree to converge layer ``layer`` on: an overlay of what is below it, or the copied tree."""
        if self.mode == "overlay":
            self.update("mounting the overlay of the layers below")
            upper = self._upper(layer)
            overlay.mount(self._lowers(), upper / "upper", upper / "work", self.rootfs)
        elif not self.rootfs.exists():
            if index != 0:
                raise OperationError(f"no work tree to converge layer {layer} on")
            self.update("copying the base root filesystem")
            copy_tree(self.base, self.rootfs)
        return self.rootfs

    def close_layer(self) -> None:
        """After a layer converged: an overlay tree is unmounted (its upper directory holds the diff)."""
        if self.mode == "overlay":
            unmount_all(self.rootfs)

    def keep_unsaved(self, layer: str) -> None:
        """Layer ``layer`` gets no snapshot: in overlay mode its diff stays a lower of the trees above it."""
        if self.mode == "overlay":
            self.unsaved.insert(0, self._upper(layer) / "upper")

    def save(self, key: str, layer: str, meta: dict[str, Any]) -> Entry:
        """Snapshot layer ``layer`` as ``key`` (its diff, or a copy of the whole tree)."""
        self.update(f"saving snapshot {key}")
        parent = self.chain[-1] if self.chain else None
        if self.mode == "overlay":
            entry = self.cache.save_diff(key, self._upper(layer) / "upper", meta, parent, self.base)
        else:
            entry = self.cache.save(key, self.rootfs, {**meta, "parent": parent.key if parent else None})
        self.chain.append(entry)
        return entry

    # -- after the layers -----------------------------------------------------------------------------------
    def tree(self) -> Path:
        """The image's tree after the layers: in overlay mode a mount of every layer with a per-build upper
        directory (image manifest, generalize, boot files), kept until the disk is exported."""
        if self.mode == "overlay":
            if not self.mounted():
                top = self.work / "top"
                overlay.mount(self._lowers(), top / "upper", top / "work", self.rootfs)
        elif not self.rootfs.exists():
            raise OperationError("no work tree after the layers")
        return self.rootfs

    def mounted(self) -> bool:
        return str(self.rootfs.resolve()) in mounts_under(self.rootfs)

    def clean_up(self, keep: bool) -> None:
        """Unmount everything and remove the work folder; ``keep``: leave the tree (copied out of its overlay)."""
        keep = keep and self.rootfs.exists()
        if keep and self.mounted():
            self._copy_out_of_overlay()
            return
        unmount_all(self.work)
        if keep:
            self.notice(f"kept the work tree: {self.rootfs}")
            return
        remove(self.work)

    def _copy_out_of_overlay(self) -> None:
        """``--keep-rootfs`` on an overlay tree: copy what it shows to a plain folder, then unmount everything."""
        unmount_all(self.rootfs, keep_root=True)
        kept = self.work / "rootfs.kept"
        remove(kept)
        try:
            copy_tree(self.rootfs, kept)
        finally:
            unmount_all(self.work)
        for child in self.work.iterdir():
            if child != kept:
                remove(child)
        kept.rename(self.rootfs)
        self.notice(f"kept the work tree (copied out of its overlay): {self.rootfs}")
