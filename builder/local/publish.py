"""Publish a local build: its fixed VHD becomes a staged version of the image's gallery definition.

The gallery is the one in the environment or the local gallery emulator (``builder.local.gallery``). The
version is the one the build numbered before it converged (``number_version``), because the image manifest
(``/etc/builder/image.json``) carries it; if the gallery has meanwhile got that version from another source, the
publish stops with a clear error (the build's artifacts stay in its folder). The version is also recorded in the
local build registry (``<state>/registry.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.azure.progress import Progress
from builder.errors import OperationError
from builder.local.gallery import GalleryTarget, open_gallery, storage_account_id
from builder.registry import LocalRegistry

if TYPE_CHECKING:
    from builder.azure.publish import PublishResult
    from builder.catalog.loader import Catalog


def number_version(catalog: Catalog, image: str, state_dir: Path, target: GalleryTarget | None) -> str:
    """The day's next free ``YYYY.MMDD.N`` over the gallery's versions (when publishing) and the local registry."""
    from builder.azure.progress import ignore
    from builder.azure.publish import Publisher
    from builder.versioning import next_version

    taken = set(LocalRegistry(state_dir).versions(image))
    if target is not None:
        with open_gallery(target) as settings:
            taken |= set(Publisher(catalog, image, settings, ignore).existing_versions())
    return next_version(sorted(taken))


def require_free_version(catalog: Catalog, image: str, state_dir: Path, target: GalleryTarget | None,
                         version: str) -> str:
    """``version`` (``build --version``) when it is valid and neither the local registry nor ``target`` has it;
    else an InputError (exit 2) before the build starts."""
    from builder.azure.progress import ignore
    from builder.azure.publish import Publisher
    from builder.versioning import require_new, require_valid

    require_valid(version, field="--version")
    registry = LocalRegistry(state_dir)
    require_new(version, registry.versions(image), f"the local registry ({registry.path})")
    if target is not None:
        with open_gallery(target) as settings:
            require_new(version, Publisher(catalog, image, settings, ignore).existing_versions(), target.label)
    return version


def publish_vhd(catalog: Catalog, image: str, version: str, vhd: Path, tags: dict[str, str], target: GalleryTarget,
                progress: Callable[[Progress], None] | None = None) -> PublishResult:
    """Publish ``vhd`` (a fixed VHD on this machine) as ``version`` of ``image`` to ``target``."""
    from builder.azure.progress import ignore
    from builder.azure.publish import Publisher, publish_version
    from builder.azure.source import Source

    progress = progress or ignore
    with open_gallery(target) as settings:
        source = Source(vhd_uri=vhd.resolve().as_uri(), storage_account_id=storage_account_id(settings.subscription_id))
        existing = Publisher(catalog, image, settings, ignore).get(version)
        if existing is not None and not source.same_as(Source.from_storage_profile(
                existing.get("properties", {}).get("storageProfile") or {})):
            raise OperationError(f"version {version} of {image} already exists in {target.label} from another source; "
                                 "this build numbered it before converging (the image manifest carries it), so it "
                                 f"cannot take another number now. The build's disk stays at {vhd}; build again to "
                                 "get the next free version")
        try:
            return publish_version(catalog, image, source=source, version=version, tags=tags, settings=settings,
                                   progress=progress)
        except OperationError as exc:
            raise OperationError(f"publishing {image} {version} to {target.label} failed: {exc}", exc.log) from None


@dataclass
class PublishRequest:
    """What the ``publish`` phase of a local build hands over: the disk, its facts for the tags, the target."""

    image: str
    version: str
    build_id: str
    disk: Path
    sbom_sha256: str
    verified: bool
    git_commit: str | None
    base: str  # local:<os>:<base key>, the builder.base_version tag
    target: GalleryTarget
    state_dir: Path
    artifacts: dict[str, str] = field(default_factory=dict)
    inputs: str | None = None  # the top layer's key


def publish(catalog: Catalog, request: PublishRequest, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The build's ``publish`` phase: tags, publish, registry entry; returns what ``build.json`` records."""
    from builder.stack.tags import VERIFIED, provenance

    tags = provenance(request.git_commit, request.build_id, request.sbom_sha256,
                      VERIFIED if request.verified else "pending", request.base)

    def report(event: Progress) -> None:
        if progress is None:
            return
        if event.regions:
            progress("  ".join(f"{r}: {s} {p}%" for r, (s, p) in sorted(event.regions.items())))
        elif event.message:
            progress(event.message)

    target = request.target
    result = publish_vhd(catalog, request.image, request.version, request.disk, tags, target, report)
    published = {"id": result.id, "version": result.version, "action": result.action, "gallery": target.label,
                 **target.as_dict(), "regions": result.regions, "exclude_from_latest": result.exclude_from_latest,
                 "tags": result.tags}
    registry = LocalRegistry(request.state_dir)
    registry.record(request.image, request.version, {"build_id": request.build_id, "target": "local",
                                                     "artifacts": dict(request.artifacts), "id": result.id,
                                                     "gallery": target.label, "action": result.action,
                                                     "inputs": request.inputs})
    staged = "staged (excluded from latest)" if result.exclude_from_latest else "eligible for latest"
    return {**published, "detail": f"{result.version} {result.action} in {target.label}, {staged}"}
