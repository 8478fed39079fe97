"""Publish a gallery image version: ensure the definition, create the version, wait per region, verify replication.

Idempotent and resumable: an existing version from the same source is a no-op (or, while still Creating, is
waited for; when Failed, is retried); another source is an error unless ``force``. Without an explicit version
the same source maps to one version: the definition's versions are searched for this source before a number is
taken, so a re-run (after success, after ``kill -9``, after a lost create response) and a concurrent run of the
same source all land on the version that source already has. Creation sends ``If-None-Match: *`` so of two
concurrent publishes of one version exactly one creates it; the other reads it back and waits for it when it is
its own source.
"""

from __future__ import annotations

import datetime as dt
import difflib
import time
from dataclasses import dataclass, field
from typing import Any

from builder.azure.clients import compute_client, if_match, read_with_etag, resource_client
from builder.azure.errors import arm_code, arm_errors, describe
from builder.azure.gallery import Destination, ensure_definition
from builder.azure.progress import Progress, ProgressCallback, ignore
from builder.azure.settings import Settings
from builder.azure.source import Source
from builder.catalog.loader import Catalog
from builder.catalog.reference_data import normalise_region, regions
from builder.catalog.rules import check_image
from builder.catalog.schema import Image
from builder.errors import InputError, OperationError
from builder.stack import from_image
from builder.stack.tags import VERIFICATION
from builder.versioning import next_version, require_valid, sort_key

BUSY = ("Creating", "Updating", "Migrating")
AUTO_NUMBER_ATTEMPTS = 5


@dataclass
class PublishResult:
    image: str
    version: str
    id: str
    regions: dict[str, str]
    exclude_from_latest: bool
    end_of_life_date: str | None
    tags: dict[str, str]
    action: str  # created | resumed | retried | replaced | unchanged | tags-updated
    seconds: float = 0.0
    source: str = ""
    definition: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "definition"}


def target_regions(image: Image, override: list[tuple[str, int]] | None = None) -> list[dict[str, Any]]:
    """``publishingProfile.targetRegions`` from the catalog (or an override), names checked."""
    g = image.gallery
    wanted = override if override is not None else [(r.name, r.replicas) for r in g.target_regions]
    out = []
    seen: set[str] = set()
    for name, replicas in wanted:
        short = normalise_region(name) if isinstance(name, str) and name.isascii() and name.isprintable() else None
        if short is None:
            hint = difflib.get_close_matches(name.lower(), list(regions()), n=1)
            tip = f"; did you mean '{hint[0]}'?" if hint else " (see builder/data/regions.yaml)"
            raise InputError(f"unknown region '{name}'{tip}", field="region")
        if short in seen:
            raise InputError(f"region '{name}' is given twice (as {regions()[short]})", field="region")
        seen.add(short)
        if replicas < 1:
            raise InputError(f"replica count for '{name}' must be >= 1, got {replicas}", field="region")
        entry: dict[str, Any] = {"name": short, "regionalReplicaCount": replicas}
        catalog_region = next((r for r in g.target_regions if normalise_region(r.name) == short), None)
        if catalog_region and catalog_region.storage_account_type:
            entry["storageAccountType"] = catalog_region.storage_account_type.value
        out.append(entry)
    return out


def end_of_life(image: Image, today: dt.date | None = None) -> str:
    g = image.gallery
    day = g.end_of_life_date or (today or dt.datetime.now(dt.UTC).date()) + dt.timedelta(days=g.end_of_life_days)
    return dt.datetime.combine(day, dt.time(), dt.UTC).isoformat()


def version_body(image: Image, dest: Destination, source: Source, tags: dict[str, str],
                 regions_: list[dict[str, Any]]) -> dict[str, Any]:
    g = image.gallery
    return {
        "location": dest.location,
        "tags": tags,
        "properties": {
            "storageProfile": source.storage_profile(),
            "publishingProfile": {
                "targetRegions": regions_,
                "replicaCount": 1,
                "storageAccountType": g.storage_account_type.value,
                "replicationMode": g.replication_mode,
                "excludeFromLatest": g.staging.exclude_from_latest,
                "endOfLifeDate": end_of_life(image),
            },
        },
    }


class Publisher:
    """One publish run: clients, destination and progress reporting."""

    def __init__(self, catalog: Catalog, image_name: str, settings: Settings, progress: ProgressCallback) -> None:
        self.entry = catalog.get(image_name)
        self.image = catalog.model(image_name)
        self.settings = settings
        self.progress = progress
        self.dest = Destination.of(self.image)
        self.compute = compute_client(settings)
        self.resources = resource_client(settings)

    def say(self, message: str, stage: str = "ensure") -> None:
        self.progress(Progress(stage, message))

    # -------------------------------------------------------------- reading

    def get(self, version: str) -> dict[str, Any] | None:
        return self.read(version)[0]

    def read(self, version: str) -> tuple[dict[str, Any] | None, str | None]:
        """``(resource, ETag)``; ``(None, None)`` when the version does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        d = self.dest
        with arm_errors(f"reading version {version}"):
            try:
                return read_with_etag(self.compute.gallery_image_versions.get, d.resource_group, d.gallery,
                                      d.definition, version, expand="ReplicationStatus")
            except ResourceNotFoundError:
                return None, None

    def listing(self) -> list[dict[str, Any]]:
        """The definition's versions (ARM JSON); none when the gallery or definition does not exist yet."""
        from azure.core.exceptions import ResourceNotFoundError

        d = self.dest
        with arm_errors("listing versions"):
            try:
                return [v.as_dict() for v in self.compute.gallery_image_versions.list_by_gallery_image(
                    d.resource_group, d.gallery, d.definition)]
            except ResourceNotFoundError:
                return []

    def existing_versions(self) -> list[str]:
        """Names of the definition's versions; none when the gallery or definition does not exist yet."""
        return [v["name"] for v in self.listing()]

    def next_free(self, today: dt.date | None = None) -> str:
        """The day's next free ``YYYY.MMDD.N`` among the definition's versions."""
        return next_version(self.existing_versions(), today)

    @staticmethod
    def of_source(source: Source, listing: list[dict[str, Any]]) -> str | None:
        """The version in ``listing`` that ``source`` was published as (the oldest, should there be several)."""
        same = [v["name"] for v in listing if source.same_as(source_of(v))]
        return min(same, key=sort_key) if same else None

    def report(self, resource: dict[str, Any]) -> dict[str, tuple[str, int]]:
        status = (resource.get("properties") or {}).get("replicationStatus") or {}
        regions_ = {s["region"]: (s.get("state", "Unknown"), int(s.get("progress") or 0))
                    for s in status.get("summary") or []}
        if regions_:
            self.progress(Progress("replicate", resource["properties"].get("provisioningState", ""), regions_))
        return regions_

    # -------------------------------------------------------------- writing

    def create(self, version: str, body: dict[str, Any], only_if_absent: bool):
        d = self.dest
        headers = {"If-None-Match": "*"} if only_if_absent else {}
        return self.compute.gallery_image_versions.begin_create_or_update(
            d.resource_group, d.gallery, d.definition, version, body, headers=headers)

    def set_tags(self, version: str, new: dict[str, str]) -> dict[str, str]:
        """Add or change ``new`` on the version's tags (the others are kept). The write is conditional on the
        version being unchanged since it was read (If-Match); after a 412 the tags are read and merged again, so a
        concurrent tag change (a yank) is never lost."""
        from azure.core.exceptions import HttpResponseError

        d = self.dest
        for _attempt in range(5):
            resource, etag = self.read(version)
            if resource is None:
                raise OperationError(f"version {version} of {d.gallery}/{d.definition} not found: cannot tag it")
            tags = {**(resource.get("tags") or {}), **new}
            with arm_errors(f"tagging version {version}"):
                try:
                    self.compute.gallery_image_versions.begin_update(d.resource_group, d.gallery, d.definition,
                                                                     version, {"tags": tags},
                                                                     **if_match(etag)).result()
                    return tags
                except HttpResponseError as exc:
                    if exc.status_code != 412 and arm_code(exc) != "PreconditionFailed":
                        raise
        raise OperationError(f"version {version} kept changing while tagging it; try again later")

    def delete(self, version: str) -> None:
        d = self.dest
        with arm_errors(f"deleting version {version}"):
            self.compute.gallery_image_versions.begin_delete(d.resource_group, d.gallery, d.definition,
                                                             version).result()

    def wait_poller(self, poller, version: str) -> None:
        """Wait for the SDK's long-running operation, showing per-region progress meanwhile."""
        with arm_errors(f"publishing version {version}"):
            while not poller.done():
                poller.wait(self.settings.progress_interval)  # raises the operation's error when it failed
                if not poller.done():
                    current = self.get(version)
                    if current:
                        self.report(current)
            poller.result()

    def wait_existing(self, version: str) -> dict[str, Any]:
        """Wait for a version another (interrupted) run started, by reading its provisioningState."""
        while True:
            current = self.get(version)
            if current is None:
                raise OperationError(f"version {version} disappeared while waiting for it (deleted elsewhere?)")
            self.report(current)
            if current["properties"].get("provisioningState") not in BUSY:
                return current
            time.sleep(max(self.settings.progress_interval, 0.05))


def source_of(resource: dict[str, Any]) -> Source | None:
    """The source an existing version was published from (None when it names none we know)."""
    return Source.from_storage_profile((resource.get("properties") or {}).get("storageProfile") or {})


def _check_replication(version: str, resource: dict[str, Any], wanted: list[dict[str, Any]]) -> dict[str, str]:
    props = resource.get("properties") or {}
    state = props.get("provisioningState")
    status = props.get("replicationStatus") or {}
    summary = {s["region"]: s.get("state", "Unknown") for s in status.get("summary") or []}
    expected = {regions()[r["name"]] for r in wanted}
    failed = {r: s for r, s in summary.items() if s != "Completed"}
    missing = expected - set(summary)
    if state != "Succeeded" or status.get("aggregatedState") != "Completed" or failed or missing:
        parts = [f"{r}: {s}" for r, s in sorted(failed.items())] + [f"{r}: not replicated" for r in sorted(missing)]
        raise OperationError(f"version {version} is {state}, replication {status.get('aggregatedState', 'Unknown')}"
                             + (f" ({'; '.join(parts)})" if parts else "")
                             + "; re-run the same publish to retry the failed regions")
    return summary


def publish_version(catalog: Catalog, image_name: str, *, source: Source, version: str | None = None,
                    tags: dict[str, str] | None = None, settings: Settings, progress: ProgressCallback = ignore,
                    force: bool = False, regions_override: list[tuple[str, int]] | None = None) -> PublishResult:
    """Publish ``image_name`` from ``source`` as ``version`` (None: the gallery's next ``YYYY.MMDD.N``)."""
    from azure.core.exceptions import HttpResponseError

    started = time.monotonic()
    # everything is checked before the first request: version, catalog rules, destination names, regions
    if version is not None:
        require_valid(version)
    catalog_errors = [p for p in check_image(catalog.get(image_name), catalog) if p.severity == "error"]
    if catalog_errors:
        raise InputError(catalog_errors)
    Destination.of(catalog.model(image_name)).require_valid()
    if source.is_local_file and not settings.is_local:
        raise InputError(f"{source.vhd_uri} is a VHD on this machine: only the local gallery emulator takes file:// "
                         "sources. Azure needs the VHD uploaded to a page blob first (not implemented): upload it "
                         "(e.g. `az storage blob upload --type page`) and pass its https:// URL with "
                         "--storage-account-id", field="--vhd-uri")
    pub = Publisher(catalog, image_name, settings, progress)
    wanted_regions = target_regions(pub.image, regions_override)
    all_tags = from_image(pub.image).version_tags(tags or {})
    body = version_body(pub.image, pub.dest, source, all_tags, wanted_regions)
    definition = ensure_definition(pub.compute, pub.resources, pub.entry, pub.image, pub.dest, pub.say)

    auto = version is None
    action = "created"
    pinned = version  # the name to publish as: --version, or the version this source turned out to have
    for _attempt in range(AUTO_NUMBER_ATTEMPTS):
        if pinned:
            name = pinned
        else:
            listing = pub.listing()
            name = pub.of_source(source, listing) or next_version(v["name"] for v in listing)
            if any(v["name"] == name for v in listing):
                pub.say(f"version {name} already holds this source: publishing as {name}", "create")
        existing = pub.get(name)
        only_if_absent = True
        if existing is not None:
            same = source.same_as(source_of(existing))
            state = existing["properties"].get("provisioningState")
            if not same and auto:
                pub.say(f"version {name} was just taken by another publish; trying the next number", "create")
                continue
            if not same and not force:
                raise OperationError(f"version {name} already exists from a different source; choose another "
                                     "--version or pass --force to replace it")
            if not same:
                pub.say(f"deleting version {name} (different source, --force)", "replace")
                pub.delete(name)
                action = "replaced"
            elif state in BUSY:
                pub.say(f"version {name} is {state}: resuming the wait", "resume")
                existing = pub.wait_existing(name)
                action = "resumed"
                if existing["properties"].get("provisioningState") == "Succeeded":
                    return _finish(pub, name, existing, wanted_regions, action, started, source, definition)
                only_if_absent = False
                action = "retried"
            elif state == "Succeeded" and (existing["properties"].get("replicationStatus") or {}).get(
                    "aggregatedState") == "Completed":
                verdict = (tags or {}).get(VERIFICATION)
                if verdict and (existing.get("tags") or {}).get(VERIFICATION) != verdict:
                    pub.say(f"version {name} already published from this source: recording verification {verdict}",
                            "tags")
                    pub.set_tags(name, {VERIFICATION: verdict})
                    return _finish(pub, name, pub.get(name) or {}, wanted_regions, "tags-updated", started, source,
                                   definition)
                pub.say(f"version {name} already published from this source: nothing to do", "done")
                return _finish(pub, name, existing, wanted_regions, "unchanged", started, source, definition)
            else:
                pub.say(f"version {name} is {state}: retrying", "retry")
                only_if_absent = False
                action = "retried"
        pub.say(f"creating version {name} from {source.describe()} in "
                f"{', '.join(regions()[r['name']] for r in wanted_regions)}", "create")
        with arm_errors(f"creating version {name}"):
            try:
                poller = pub.create(name, body, only_if_absent)
            except HttpResponseError as exc:
                if arm_code(exc) not in ("PreconditionFailed", "OperationNotAllowed"):
                    raise
                current = pub.get(name)
                if current is not None and source.same_as(source_of(current)):
                    # our own create whose answer was lost (the SDK's retry met If-None-Match), or a concurrent
                    # run of the same source: that version is this source's; wait for it, never take a new number
                    pub.say(f"version {name} from this source already exists (a lost answer or a concurrent run): "
                            "continuing with it", "create")
                    pinned = name
                    continue
                if not auto:
                    raise OperationError(f"version {name} is being published concurrently by another run "
                                         f"({describe(exc)}); this run stops") from None
                pub.say(f"version {name} was taken concurrently; trying the next number", "create")
                continue
        pub.wait_poller(poller, name)
        return _finish(pub, name, pub.get(name) or {}, wanted_regions, action, started, source, definition)
    raise OperationError(f"no free version number after {AUTO_NUMBER_ATTEMPTS} attempts (concurrent publishes?)")


def next_free_version(catalog: Catalog, image_name: str, settings: Settings, today: dt.date | None = None) -> str:
    """The version ``publish_version(version=None)`` would pick now: the day's next free ``YYYY.MMDD.N`` among the
    image's gallery versions (``YYYY.MMDD.0`` when the gallery or definition does not exist yet)."""
    return Publisher(catalog, image_name, settings, ignore).next_free(today)


def tag_version(catalog: Catalog, image_name: str, version: str, tags: dict[str, str],
                settings: Settings) -> dict[str, str]:
    """Add ``tags`` to an existing version of the image (for example the SBOM digest after a Packer build);
    returns all its tags. A missing version is an OperationError."""
    require_valid(version)
    pub = Publisher(catalog, image_name, settings, ignore)
    return pub.set_tags(version, tags)


def _finish(pub: Publisher, name: str, resource: dict[str, Any], wanted: list[dict[str, Any]], action: str,
            started: float, source: Source, definition: dict[str, Any]) -> PublishResult:
    summary = _check_replication(name, resource, wanted)
    pub.report(resource)
    props = resource["properties"]
    profile = props.get("publishingProfile") or {}
    pub.progress(Progress("done", f"version {name} {action}"))
    resource_id = resource.get("id") or pub.dest.version_id(pub.settings.subscription_id, name)
    return PublishResult(image=pub.image.name, version=name, id=resource_id, regions=summary,
        exclude_from_latest=bool(profile.get("excludeFromLatest")),
        end_of_life_date=profile.get("endOfLifeDate"), tags=resource.get("tags") or {}, action=action,
        seconds=round(time.monotonic() - started, 3), source=source.describe(), definition=definition)
