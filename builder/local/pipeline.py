"""``builder build IMAGE --target local``: every phase of a local build, in order, with records and cleanup.

base rootfs -> render variables -> converge each layer (resumed from the layer cache) -> image manifest
(per-build values, never cached) -> verify (static, pre-generalize) -> generalize -> verify (hygiene) -> SBOM +
manifest -> disk export -> boot test -> publish.
A failing phase names itself and its log and stops the build (nothing exported or published after it);
Ctrl-C or SIGTERM stops it too. Either way nothing stays mounted and the build's work tree is removed.

Layers converge on overlayfs (``builder.local.overlay``): each on a mount of the snapshots below it with an empty
upper directory, which becomes its snapshot by a rename; the steps after the layers work on one more overlay
with a per-build upper directory. Where overlayfs cannot be mounted (or ``--snapshots copy``) the tree is a
plain folder and snapshots are whole-tree copies, as before.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.errors import BuilderError, OperationError
from builder.layers import LAYERS
from builder.local import overlay, records
from builder.local.cache import Entry, LayerCache
from builder.local.display import Reporter
from builder.local.gallery import GalleryTarget, require_local_vhd_target, resolve_target
from builder.local.lock import BuildLock
from builder.local.tools import remove
from builder.rootfs import copy_tree, mounts_under, unmount_all

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog

DEFAULT_CACHE = Path("/var/tmp/builder-cache")


@dataclass
class BuildOptions:
    image: str
    state_dir: Path
    cache_dir: Path = DEFAULT_CACHE
    feed: str = "upstream"
    base_rootfs: Path | None = None
    mirror: str | None = None
    use_cache: bool = True
    verify: bool = True
    boot: bool = True
    boot_timeout: float = 300.0
    publish: bool = True
    keep_rootfs: bool = False
    disk_mib: int | None = None
    snapshots: str = "auto"  # auto: overlay diffs when overlayfs mounts here, else whole-tree copies; overlay; copy

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


@dataclass
class State:
    """What earlier phases hand to later ones."""

    os: str = ""
    base_key: str = ""
    base_rootfs: Path | None = None
    base_source: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    vars_file: Path | None = None
    feed_sources: dict[Path, Path] = field(default_factory=dict)  # feed path in the tree -> host folder
    layers: list[dict[str, Any]] = field(default_factory=list)
    snapshots: str = ""  # overlay or copy, as chosen for this build
    reuse: int = 0  # leading layers restored from the cache
    chain: list[Entry] = field(default_factory=list)  # the snapshots the tree is made of so far, bottom first
    unsaved: list[Path] = field(default_factory=list)  # overlay uppers not in the cache (top first)
    verify: dict[str, Any] = field(default_factory=dict)
    sbom_packages: int = 0
    disk: dict[str, Any] = field(default_factory=dict)
    boot: dict[str, Any] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    def __init__(self, catalog: Catalog, options: BuildOptions, reporter: Reporter | None = None) -> None:
        self.catalog = catalog
        self.options = options
        self.reporter = reporter or Reporter()
        self.model = catalog.model(options.image)
        self.cache = LayerCache(options.cache_dir)
        self.state = State()
        self.record: records.BuildRecord | None = None
        self.version = ""
        self.gallery: GalleryTarget | None = None
        self._digests: dict[str, _Digest] = {}
        if options.publish:  # bad Azure settings, or a local VHD bound for real Azure: exit 2 before building
            self.gallery = resolve_target(options.state_dir)
            require_local_vhd_target(self.gallery)

    # -- paths -----------------------------------------------------------------------------------------
    @property
    def build_dir(self) -> Path:
        assert self.record is not None
        return self.record.directory

    @property
    def work(self) -> Path:
        assert self.record is not None
        return self.options.cache_dir / "work" / self.record.id

    @property
    def rootfs(self) -> Path:
        return self.work / "rootfs"

    def log(self, name: str) -> Path:
        path = self.build_dir / "logs" / f"{name.replace(':', '-')}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # -- running ---------------------------------------------------------------------------------------
    def run(self) -> records.BuildRecord:
        """Run every phase; raises ``OperationError`` (exit 1) or ``KeyboardInterrupt`` (exit 130)."""
        from builder.local.publish import number_version

        opts = self.options
        self.record = records.new_build(opts.state_dir, opts.image, opts.as_dict())
        for name in self.phase_names():
            self.record.phase(name)
        self.record.save()
        lock = BuildLock(opts.state_dir, opts.image, self.record.id)
        try:
            lock.acquire()
        except OperationError as exc:
            self._finish(records.FAILED, str(exc))
            raise
        self.reporter.start(self.record)
        try:
            with _sigterm_as_interrupt():
                # numbered from the gallery before converging: the image manifest carries the version
                self.reporter.notice(f"numbering the version from {self.gallery.label}" if self.gallery else
                                     "numbering the version from the local build registry (--no-publish)")
                self.version = number_version(self.catalog, opts.image, opts.state_dir, self.gallery)
                self.record.version = self.version
                self.record.save()
                for name, step in self.steps():
                    self._phase(name, step)
            self._finish(records.SUCCEEDED)
        except KeyboardInterrupt:
            terminate_children()
            self._mark_running(records.INTERRUPTED)
            self._finish(records.INTERRUPTED, "interrupted")
            raise
        except BuilderError as exc:
            self._mark_running("failed")
            self._finish(records.FAILED, str(exc), getattr(exc, "log", None))
            raise
        except Exception as exc:  # an unexpected bug still leaves a record and no mounts
            self._mark_running("failed")
            self._finish(records.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self._cleanup()
            lock.release()
            self.reporter.stop()
        return self.record

    def phase_names(self) -> list[str]:
        return [name for name, _ in self.steps()]

    def steps(self) -> list[tuple[str, Callable[[records.Phase], None]]]:
        opts = self.options
        steps: list[tuple[str, Callable[[records.Phase], None]]] = [("base", self.base), ("render", self.render)]
        steps += [(f"layer:{layer.name}", self._layer_step(index)) for index, layer in enumerate(LAYERS)]
        steps.append(("image-manifest", self.image_manifest))
        if opts.verify:
            steps.append(("verify", self.verify_pre))
        steps.append(("generalize", self.generalize))
        if opts.verify:
            steps.append(("verify:hygiene", self.verify_hygiene))
        steps += [("sbom", self.sbom), ("disk", self.disk)]
        if opts.boot:
            steps.append(("boot-test", self.boot_test))
        steps += [("manifest", self.manifest)]
        if opts.publish:
            steps.append(("publish", self.publish))
        return steps

    def _phase(self, name: str, step: Callable[[records.Phase], None]) -> None:
        assert self.record is not None
        phase = self.record.phase(name)
        phase.status = "running"
        phase.log = str(self.log(name))
        self.record.save()
        self.reporter.phase(name)
        start = time.monotonic()
        try:
            step(phase)
        except OperationError as exc:
            phase.seconds = time.monotonic() - start
            log = exc.log or phase.log
            phase.log = str(log)
            message = str(exc).removesuffix(f" (log: {exc.log})") if exc.log else str(exc)
            phase.detail = f"{message[:160]} (log: {log})"
            raise OperationError(f"phase '{name}' failed: {message}", log) from exc
        finally:
            phase.seconds = phase.seconds or time.monotonic() - start
            if phase.status == "running" and not self._failing():
                phase.status = "done"
            self.record.save()
        self.reporter.phase_done(name)

    @staticmethod
    def _failing() -> bool:
        import sys

        return sys.exc_info()[0] is not None

    def _mark_running(self, status: str) -> None:
        assert self.record is not None
        for phase in self.record.phases:
            if phase.status == "running":
                phase.status = status
                self.reporter.phase_done(phase.name)
            elif phase.status == "pending":
                phase.status = "skipped"

    def _finish(self, status: str, error: str | None = None, log: Path | str | None = None) -> None:
        assert self.record is not None
        self.record.status = status
        self.record.finished = time.time()
        self.record.error = error
        self.record.error_log = str(log) if log else None
        self.record.save()

    def _cleanup(self) -> None:
        if self.record is None:
            return
        keep = self.options.keep_rootfs and self.record.status != records.SUCCEEDED and self.rootfs.exists()
        if keep and self._mounted():
            self._copy_out_of_overlay()
            return
        unmount_all(self.work)
        if keep:
            self.reporter.notice(f"kept the work tree: {self.rootfs}")
            return
        remove(self.work)

    def _mounted(self) -> bool:
        return str(self.rootfs.resolve()) in mounts_under(self.rootfs)

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
        self.reporter.notice(f"kept the work tree (copied out of its overlay): {self.rootfs}")

    # -- phases ----------------------------------------------------------------------------------------
    def base(self, phase: records.Phase) -> None:
        from builder.local.base import base_from_debootstrap, base_from_user

        opts = self.options
        log = Path(phase.log or self.log("base"))
        if opts.base_rootfs:
            base = base_from_user(opts.base_rootfs, opts.cache_dir, log)
        else:
            base = base_from_debootstrap(self.model.os.value, opts.cache_dir, log, opts.mirror, self.reporter.notice,
                                         self.reporter.update)
        self.state.os, self.state.base_key, self.state.base_rootfs = base.os, base.key, base.rootfs
        self.state.base_source = base.source
        phase.detail = f"{base.source} ({base.os}, key {base.key})"

    def render(self, phase: records.Phase) -> None:
        from builder.render import VARS_FILE, write_render

        self.reporter.update(f"feed {self.options.feed}")
        feed: Any = self.options.feed
        if feed == "stand-in":
            from builder.local.feed import stable_standin

            self.reporter.update("stand-in feed (built on the first use of these pins)")
            feed, self.state.feed_sources = stable_standin(self.catalog, self.options.image,
                                                           self.options.cache_dir)
        out = self.build_dir / "render"
        written = write_render(self.catalog, self.options.image, "local", out, feed,
                               os_override=self.state.os, image_version=self.version,
                               cache_dir=self.options.cache_dir)
        self.state.vars_file = out / VARS_FILE
        import yaml

        self.state.variables = yaml.safe_load(self.state.vars_file.read_text())
        phase.detail = f"{len(written)} file(s), feed {self.state.variables.get('package_feed')}"

    def _layer_step(self, index: int) -> Callable[[records.Phase], None]:
        def step(phase: records.Phase) -> None:
            self.layer(index, phase)

        return step

    def _choose_snapshots(self) -> str:
        """``overlay`` (layer diffs on overlayfs) or ``copy`` (whole trees), with a notice for the fallback."""
        wanted = self.options.snapshots
        if wanted == "copy":
            self._snapshot_notice("copy: forced (--snapshots copy or BUILDER_SNAPSHOTS=copy)",
                                  "notice: layer snapshots are whole-tree copies (forced by --snapshots copy or "
                                  "BUILDER_SNAPSHOTS=copy); overlay diffs are faster")
            return "copy"
        assert self.state.base_rootfs is not None
        self.work.mkdir(parents=True, exist_ok=True)
        reason = overlay.probe(self.work)  # the work tree's folder: the cache's file system
        if reason is None:
            try:
                overlay.mount_options([self.state.base_rootfs, self.cache.root], self.work, self.work)
            except OperationError as exc:
                reason = str(exc)
        if reason is None:
            self._snapshot_notice("overlay", "")
            return "overlay"
        if wanted == "overlay":
            raise OperationError(f"overlayfs cannot be used here: {reason} (--snapshots overlay)")
        self._snapshot_notice(f"copy: overlayfs cannot be used here ({reason})",
                              f"notice: overlayfs cannot be used here ({reason}); layer snapshots fall back to "
                              "whole-tree copies (slower: each snapshot is copied when saved and restored)")
        return "copy"

    def _snapshot_notice(self, recorded: str, notice: str) -> None:
        """Say how layer trees are made: in build.json (``snapshots``) and, for the fallback, as a notice."""
        assert self.record is not None
        self.record.snapshots = recorded
        self.record.save()
        if notice:
            self.reporter.notice(notice)

    def _lowers(self) -> list[Path]:
        """The overlay lower directories for the next tree, top first."""
        assert self.state.base_rootfs is not None
        return [*self.state.unsaved, *self.cache.lowers(self.state.chain, self.state.base_rootfs)]

    def layer(self, index: int, phase: records.Phase) -> None:
        from builder.local.keys import layer_keys, per_build_layers

        layer = LAYERS[index]
        keys = layer_keys(self.state.base_key, self.state.variables)
        key = keys[index][1]
        state = self.state
        assert state.base_rootfs is not None
        if index == 0:
            state.snapshots = self._choose_snapshots()
            state.chain = self.cache.chain(keys) if self.options.use_cache else []
            state.reuse = len(state.chain)
        info = {"name": layer.name, "key": key, "cached": False}
        state.layers.append(info)
        if index < state.reuse:
            info["cached"] = True
            info["format"] = state.chain[index].format
            phase.status = "cached"
            phase.detail = f"snapshot {key}"
            if index == state.reuse - 1:  # the last cached layer: the next tree starts from its chain
                self.cache.touch(state.chain)
                if state.snapshots == "copy":
                    self.reporter.update(f"copying snapshot chain up to {key}")
                    self.cache.materialize(state.chain, state.base_rootfs, self.rootfs)
                    phase.detail += " (copied)"
            return
        log = Path(phase.log or self.log(phase.name))
        upper = self.work / "layers" / layer.name
        if state.snapshots == "overlay":
            self.reporter.update("mounting the overlay of the layers below")
            overlay.mount(self._lowers(), upper / "upper", upper / "work", self.rootfs)
            self._converge([layer.name], log, phase)  # on failure the clean-up unmounts (or copies, --keep-rootfs)
            unmount_all(self.rootfs)
        else:
            if not self.rootfs.exists():
                if index != 0:
                    raise OperationError(f"no work tree to converge layer {layer.name} on")
                self.reporter.update("copying the base root filesystem")
                copy_tree(state.base_rootfs, self.rootfs)
            self._converge([layer.name], log, phase)
        if layer.name in per_build_layers(state.variables) or state.unsaved:
            why = ("its roles bake in the image version or git commit" if not state.unsaved else
                   "a layer below it has none")
            phase.detail += f"; no snapshot ({why})"
            if state.snapshots == "overlay":
                state.unsaved.insert(0, upper / "upper")
            return
        self.reporter.update(f"saving snapshot {key}")
        meta = {"image": self.options.image, "layer": layer.name, "base": state.base_key,
                "build": self.record.id if self.record else None,
                "components": {c: v.get("version") for c, v in state.variables.get("builder_components", {}).items()
                               if c in layer.components}}
        parent = state.chain[-1] if state.chain else None
        if state.snapshots == "overlay":
            entry = self.cache.save_diff(key, upper / "upper", meta, parent, state.base_rootfs)
        else:
            entry = self.cache.save(key, self.rootfs, {**meta, "parent": parent.key if parent else None})
        state.chain.append(entry)
        info["format"] = entry.format
        size = entry.meta.get("size", 0) / (1024 * 1024)
        phase.detail = f"{phase.detail}; snapshot {key} ({entry.format}, {size:.0f} MiB)".lstrip("; ")

    def _tree(self) -> Path:
        """The image's tree after the layers: in overlay mode a mount of every layer with a per-build upper
        directory (image manifest, generalize, boot files), kept until the disk is exported."""
        if self.state.snapshots == "overlay":
            if not self._mounted():
                top = self.work / "top"
                overlay.mount(self._lowers(), top / "upper", top / "work", self.rootfs)
        elif not self.rootfs.exists():
            raise OperationError("no work tree after the layers")
        return self.rootfs

    def image_manifest(self, phase: records.Phase) -> None:
        """``/etc/builder/image.json`` (version, git commit): its own tag after the layers, never snapshotted."""
        from builder.converge import MANIFEST_TAG

        self._tree()
        self._converge([MANIFEST_TAG], Path(phase.log or self.log(phase.name)), phase)

    def _converge(self, tags: list[str], log: Path, phase: records.Phase) -> None:
        from builder.converge import converge

        assert self.state.vars_file is not None
        result = converge(self.rootfs, self.state.vars_file, log=log, tags=tags, on_task=self.reporter.update,
                          feed_sources=self.state.feed_sources)
        unmount_all(self.rootfs, keep_root=True)  # anything the converge left mounted in the tree (not the overlay)
        phase.detail = f"{result.tasks} task(s), {result.changed} changed"

    def _verify(self, select: str, phase: records.Phase) -> None:
        from builder.verify import run_suite

        stem = self.build_dir / f"verify-{select}"
        result = run_suite(self.catalog, self.options.image, connection="chroot", host=str(self.rootfs),
                           suite="static", select=select, junit=stem.with_suffix(".xml"),
                           json_out=stem.with_suffix(".json"), expect_version=self.version,
                           progress=self.reporter.update)
        self.state.verify[select] = {"ok": result.ok, "passed": result.passed, "failed": result.failed,
                                     "skipped": result.skipped, "json": str(stem.with_suffix(".json"))}
        phase.detail = f"{result.passed} passed, {result.failed} failed, {result.skipped} skipped"
        if not result.ok:
            names = ", ".join(c.name for c in result.failures()[:5]) or "no check passed"
            raise OperationError(f"static verification ({select}) failed: {names}",
                                 getattr(result, "log", None) or stem.with_suffix(".json"))

    def verify_pre(self, phase: records.Phase) -> None:
        self._verify("pre-generalize", phase)

    def verify_hygiene(self, phase: records.Phase) -> None:
        self._verify("hygiene", phase)

    def generalize(self, phase: records.Phase) -> None:
        from builder.layers import FINAL_ROLES

        self._converge(list(FINAL_ROLES), Path(phase.log or self.log("generalize")), phase)

    @property
    def artifact_stem(self) -> str:
        return f"{self.options.image}-{self.version}"

    def sbom(self, phase: records.Phase) -> None:
        from builder.local.sbom import write_sbom

        assert self.record is not None
        dest = self.build_dir / f"{self.artifact_stem}.cdx.json"
        downloads = {name: {**d, "version": self.state.variables.get("builder_components", {}).get(name, {})
                            .get("version", "")}
                     for name, d in self.state.variables.get("builder_downloads", {}).items()}
        self.state.sbom_packages = write_sbom(self.rootfs, dest, self.options.image, self.version, downloads)
        self.record.artifacts["sbom"] = str(dest)
        phase.detail = f"{self.state.sbom_packages} dpkg packages"

    def disk(self, phase: records.Phase) -> None:
        from builder.local.disk import export_disk

        assert self.record is not None
        result = export_disk(self.rootfs, self.build_dir, self.artifact_stem, Path(phase.log or self.log("disk")),
                             self.options.disk_mib, step=self.reporter.update)
        self.state.disk = result.as_dict()
        self.record.artifacts["disk"] = str(result.vhd)
        self._digests[str(result.vhd)] = _Digest(result.vhd)  # hashed while the boot test runs; never modified
        phase.detail = f"{result.vhd.name}, {result.virtual_size // (1024 * 1024)} MiB fixed VHD"
        if not self.options.keep_rootfs:
            remove(self.work)  # the tree is in the disk now; free the space before booting

    def artifact_sha256(self, path: Path) -> str:
        """SHA-256 of an artifact (computed in the background since the phase that wrote it, for the VHD)."""
        digest = self._digests.get(str(path))
        if digest is not None:
            return digest.result()
        from builder.hashing import sha256_file

        return sha256_file(path)

    def boot_test(self, phase: records.Phase) -> None:
        from builder.local.boot import boot_test, require_boot

        vhd = Path(self.state.disk["vhd"])
        result = boot_test(vhd, self.build_dir / "boot", self.options.boot_timeout, tick=self.reporter.update)
        self.state.boot = result.as_dict()
        phase.log = str(result.serial_log)
        phase.detail = f"marker after {result.seconds:.0f}s" if result.ok else result.reason
        require_boot(result)

    def manifest(self, phase: records.Phase) -> None:
        from builder.local.manifest import write_manifest

        assert self.record is not None
        path = write_manifest(self, self.build_dir / "manifest.json")
        self.record.artifacts["manifest"] = str(path)
        phase.detail = path.name

    def publish(self, phase: records.Phase) -> None:
        from builder.local.publish import publish

        assert self.record is not None
        self.state.published = publish(self)
        self.record.published = {k: v for k, v in self.state.published.items() if k != "detail"}
        phase.detail = self.state.published.get("detail", "")


class _Digest(threading.Thread):
    """SHA-256 of a file in a background thread (hashlib releases the GIL): the manifest needs the VHD's digest
    and the boot test, which only reads the VHD, leaves a core free for it."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True, name=f"sha256 {path.name}")
        self.path = path
        self.value = ""
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        from builder.hashing import sha256_file

        try:
            self.value = sha256_file(self.path)
        except BaseException as exc:  # re-raised in the phase that needs the digest
            self.error = exc

    def result(self) -> str:
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


def _children(pid: int) -> list[int]:
    """Descendants of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def terminate_children(grace: float = 5.0) -> None:
    """Stop the processes this build started (ansible-playbook, pytest, qemu ...) before cleaning up."""
    import os

    pids = _children(os.getpid())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.1)
        for pid in pids:  # reap our own children so they do not linger as zombies
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (CI cancel, ``kill``) takes the same clean-up path as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
