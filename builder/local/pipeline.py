"""``builder build IMAGE --target local``: every phase of a local build, in order, with records and cleanup.

base rootfs -> render variables -> converge each layer (resumed from the layer cache) -> image manifest
(per-build values, never cached) -> verify (static, pre-generalize) -> generalize -> verify (hygiene) -> SBOM +
manifest -> disk export -> boot test -> publish.
A failing phase names itself and its log and stops the build (nothing exported or published after it);
Ctrl-C or SIGTERM stops it too. Either way nothing stays mounted and the build's work tree is removed.

This module is the phases and their order. How the tree is made from layer snapshots is
``builder.local.snapshots``; stopping child processes ``builder.local.processes``; SIGTERM handling
``builder.local.signals``; artifact digests ``builder.local.digests``; the manifest and the publish step take
small fact objects (``builder.local.manifest.BuildFacts``, ``builder.local.publish.PublishRequest``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.errors import BuilderError, OperationError
from builder.local import records
from builder.local.cache import LayerCache
from builder.local.digests import Digests
from builder.local.display import Reporter
from builder.local.gallery import GalleryTarget, require_local_vhd_target, resolve_target
from builder.local.lock import BuildLock
from builder.local.manifest import BuildFacts, write_manifest
from builder.local.processes import terminate_children
from builder.local.signals import sigterm_as_interrupt
from builder.local.snapshots import LayerTrees
from builder.local.tools import remove
from builder.paths import DEFAULT_CACHE
from builder.rootfs import unmount_all
from builder.stack import resolve
from builder.stack.layers import FINAL_ROLES, LAYERS, MANIFEST_TAG

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog


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
    base_profile: bool = True  # lay the marketplace base's profile (builder/data/bases) on the base (stand-in feed)
    version: str | None = None  # build --version (checked free by the command); None: the next free number

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


@dataclass
class State:
    """What earlier phases hand to later ones."""

    os: str = ""
    base_key: str = ""
    base_rootfs: Path | None = None
    base_source: str = ""
    render_os: str = ""  # the OS facts the variables use: the catalog's where a base profile is laid, else the tree's
    variables: dict[str, Any] = field(default_factory=dict)
    vars_file: Path | None = None
    feed_sources: dict[Path, Path] = field(default_factory=dict)  # feed path in the tree -> host folder
    layers: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] = field(default_factory=dict)
    sbom_packages: int = 0
    sbom_package_list: str = ""  # sha256 of the SBOM's comparable package list
    disk: dict[str, Any] = field(default_factory=dict)
    boot: dict[str, Any] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    def __init__(self, catalog: Catalog, options: BuildOptions, reporter: Reporter | None = None) -> None:
        self.catalog = catalog
        self.options = options
        self.reporter = reporter or Reporter()
        self.model = catalog.model(options.image)
        self.stack = resolve(catalog, options.image)
        self.cache = LayerCache(options.cache_dir)
        self.state = State()
        self.record: records.BuildRecord | None = None
        self.version = ""
        self.gallery: GalleryTarget | None = None
        self.trees: LayerTrees | None = None  # once the base is known
        self.digests = Digests()
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
            with sigterm_as_interrupt():
                # numbered from the gallery before converging: the image manifest carries the version
                if opts.version:
                    self.version = opts.version
                else:
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
        keep = self.options.keep_rootfs and self.record.status != records.SUCCEEDED
        if self.trees is not None:
            self.trees.clean_up(keep)
        elif not keep:
            unmount_all(self.work)
            remove(self.work)

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
        self.state.render_os = base.os
        profile = self._base_profile()
        if profile is not None:
            from builder.local.feed import stable_standin
            from builder.local.profile import profile_base
            from builder.standin import apt_repositories

            feed, sources = stable_standin(self.catalog, self.options.image, self.options.cache_dir)
            base = profile_base(base, profile, image=self.options.image, feed=feed, feed_sources=sources,
                                repos=apt_repositories(self.catalog, feed.url, profile.os),
                                cache_dir=opts.cache_dir, log=log, progress=self.reporter.update)
            self.state.render_os = self.model.os.value
        self.state.os, self.state.base_key, self.state.base_rootfs = base.os, base.key, base.rootfs
        self.state.base_source = base.source
        self.trees = LayerTrees(self.cache, self.work, base.rootfs, notice=self.reporter.notice,
                                update=self.reporter.update)
        phase.detail = f"{base.source} ({base.os}, key {base.key})"

    def _base_profile(self) -> Any:
        """The profile of the image's marketplace base, when one is recorded and this build lays it: on the
        built-in base with the stand-in feed (the feed serves the repositories the profile's packages come from)."""
        from builder.stack.bases import profile_for

        market = self.model.base.marketplace
        opts = self.options
        if not (opts.base_profile and market and opts.feed == "stand-in" and not opts.base_rootfs):
            return None
        return profile_for(market.publisher, market.offer, market.sku)

    def render(self, phase: records.Phase) -> None:
        from builder.render import VARS_FILE, load_vars, write_render

        self.reporter.update(f"feed {self.options.feed}")
        feed: Any = self.options.feed
        if feed == "stand-in":
            from builder.local.feed import stable_standin

            self.reporter.update("stand-in feed (built on the first use of these pins)")
            feed, self.state.feed_sources = stable_standin(self.catalog, self.options.image,
                                                           self.options.cache_dir)
        out = self.build_dir / "render"
        written = write_render(self.catalog, self.options.image, "local", out, feed,
                               os_override=self.state.render_os or self.state.os, image_version=self.version,
                               cache_dir=self.options.cache_dir)
        self.state.vars_file = out / VARS_FILE
        self.state.variables = load_vars(self.state.vars_file)
        phase.detail = f"{len(written)} file(s), feed {self.state.variables.get('package_feed')}"

    def _layer_step(self, index: int) -> Callable[[records.Phase], None]:
        def step(phase: records.Phase) -> None:
            self.layer(index, phase)

        return step

    def _choose_snapshots(self) -> str:
        """``overlay`` (layer diffs on overlayfs) or ``copy`` (whole trees), recorded in build.json."""
        assert self.record is not None and self.trees is not None
        self.record.snapshots = self.trees.choose(self.options.snapshots)
        self.record.save()
        return self.trees.mode

    def layer(self, index: int, phase: records.Phase) -> None:
        from builder.local.keys import layer_keys, per_build_layers

        layer = LAYERS[index]
        keys = layer_keys(self.state.base_key, self.state.variables)
        key = keys[index][1]
        trees = self.trees
        assert trees is not None
        if index == 0:
            self._choose_snapshots()
            trees.find(keys, self.options.use_cache)
        info: dict[str, Any] = {"name": layer.name, "key": key, "cached": False}
        self.state.layers.append(info)
        if index < trees.reuse:
            info["cached"] = True
            info["format"] = trees.chain[index].format
            phase.status = "cached"
            phase.detail = trees.restored(index)
            return
        trees.open_layer(layer.name, index)
        self._converge([layer.name], Path(phase.log or self.log(phase.name)), phase)
        trees.close_layer()  # on failure the clean-up unmounts (or copies the tree out, --keep-rootfs)
        if layer.name in per_build_layers(self.state.variables) or trees.unsaved:
            why = ("its roles bake in the image version or git commit" if not trees.unsaved else
                   "a layer below it has none")
            phase.detail += f"; no snapshot ({why})"
            trees.keep_unsaved(layer.name)
            return
        meta = {"image": self.options.image, "layer": layer.name, "base": self.state.base_key,
                "build": self.record.id if self.record else None,
                "components": {name: c.version for name, c in self.stack.components.items()
                               if name in layer.components}}
        entry = trees.save(key, layer.name, meta)
        info["format"] = entry.format
        size = entry.meta.get("size", 0) / (1024 * 1024)
        phase.detail = f"{phase.detail}; snapshot {key} ({entry.format}, {size:.0f} MiB)".lstrip("; ")

    def _tree(self) -> Path:
        assert self.trees is not None
        return self.trees.tree()

    def image_manifest(self, phase: records.Phase) -> None:
        """``/etc/builder/image.json`` (version, git commit): its own tag after the layers, never snapshotted."""
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
        self._converge(list(FINAL_ROLES), Path(phase.log or self.log("generalize")), phase)

    @property
    def artifact_stem(self) -> str:
        return f"{self.options.image}-{self.version}"

    def sbom(self, phase: records.Phase) -> None:
        from builder.local.sbom import package_list_digest, write_sbom

        assert self.record is not None
        dest = self.build_dir / f"{self.artifact_stem}.cdx.json"
        versions = self.stack.versions
        downloads = {name: {**d, "version": versions.get(name, "")}
                     for name, d in self.state.variables.get("builder_downloads", {}).items()}
        self.state.sbom_packages = write_sbom(self.rootfs, dest, self.options.image, self.version, downloads)
        self.state.sbom_package_list = package_list_digest(dest)
        self.record.artifacts["sbom"] = str(dest)
        phase.detail = f"{self.state.sbom_packages} dpkg packages, package list {self.state.sbom_package_list[:12]}"

    def disk(self, phase: records.Phase) -> None:
        from builder.local.disk import export_disk

        assert self.record is not None
        result = export_disk(self.rootfs, self.build_dir, self.artifact_stem, Path(phase.log or self.log("disk")),
                             self.options.disk_mib, step=self.reporter.update)
        self.state.disk = result.as_dict()
        self.record.artifacts["disk"] = str(result.vhd)
        self.digests.start(result.vhd)  # hashed while the boot test runs; never modified
        phase.detail = f"{result.vhd.name}, {result.virtual_size // (1024 * 1024)} MiB fixed VHD"
        if not self.options.keep_rootfs:
            remove(self.work)  # the tree is in the disk now; free the space before booting

    def artifact_sha256(self, path: Path) -> str:
        """SHA-256 of an artifact (computed in the background since the phase that wrote it, for the VHD)."""
        return self.digests.sha256(path)

    def boot_test(self, phase: records.Phase) -> None:
        from builder.local.boot import boot_test, require_boot

        vhd = Path(self.state.disk["vhd"])
        result = boot_test(vhd, self.build_dir / "boot", self.options.boot_timeout, tick=self.reporter.update)
        self.state.boot = result.as_dict()
        phase.log = str(result.serial_log)
        phase.detail = f"marker after {result.seconds:.0f}s" if result.ok else result.reason
        require_boot(result)

    def facts(self) -> BuildFacts:
        """What this build found so far, for the manifest."""
        from builder.local.keys import inputs_digest
        from builder.packer.chain import inputs_digest as catalog_inputs_digest

        record, state, variables = self.record, self.state, self.state.variables
        assert record is not None
        return BuildFacts(
            image=self.options.image, version=self.version, build_id=record.id,
            git_commit=variables.get("builder_git_commit"),
            inputs_digest=inputs_digest(state.base_key, variables),
            catalog_inputs_digest=catalog_inputs_digest(self.catalog, self.options.image),
            base={"os": state.os, "catalog_os": variables.get("builder_catalog_os"), "key": state.base_key,
                  "source": state.base_source},
            feed={"name": variables.get("package_feed"), "base": variables.get("package_feed_base")},
            layers=state.layers, components=self.stack.versions, packages=variables.get("builder_packages", {}),
            verification=state.verify, sbom_packages=state.sbom_packages,
            sbom_package_list_sha256=state.sbom_package_list, disk=state.disk, boot_test=state.boot,
            phases=[{"name": p.name, "status": p.status, "seconds": round(p.seconds, 1)} for p in record.phases
                    if p.status not in ("pending", "skipped", "running")],
            artifacts=dict(record.artifacts))

    def manifest(self, phase: records.Phase) -> None:
        assert self.record is not None
        path = write_manifest(self.facts(), self.artifact_sha256, self.build_dir / "manifest.json")
        self.record.artifacts["manifest"] = str(path)
        phase.detail = path.name

    def publish(self, phase: records.Phase) -> None:
        from builder.local.publish import PublishRequest, publish

        record, state, opts = self.record, self.state, self.options
        assert record is not None and self.gallery is not None
        verified = opts.verify and bool(state.verify) and all(v.get("ok") for v in state.verify.values())
        request = PublishRequest(
            image=opts.image, version=self.version, build_id=record.id, disk=Path(record.artifacts["disk"]),
            sbom_sha256=self.artifact_sha256(Path(record.artifacts["sbom"])), verified=verified,
            git_commit=state.variables.get("builder_git_commit"), base=f"local:{state.os}:{state.base_key}",
            target=self.gallery, state_dir=opts.state_dir, artifacts=dict(record.artifacts),
            inputs=state.layers[-1]["key"] if state.layers else None)
        state.published = publish(self.catalog, request, self.reporter.update)
        record.published = {k: v for k, v in state.published.items() if k != "detail"}
        phase.detail = state.published.get("detail", "")
