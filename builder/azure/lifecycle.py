"""Version lifecycle in the gallery: list, promote (make eligible for latest), yank, garbage-collect."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from builder.azure.clients import compute_client, if_match, read_with_etag
from builder.azure.errors import arm_code, arm_errors
from builder.azure.gallery import Destination
from builder.azure.progress import Progress, ProgressCallback, ignore
from builder.azure.settings import Settings
from builder.catalog.loader import Catalog
from builder.errors import InputError, OperationError
from builder.stack import tags as T
from builder.versioning import require_valid, sort_key

BUSY = ("Creating", "Updating", "Deleting", "Migrating")
CONDITIONAL_ATTEMPTS = 5  # re-reads after a 412 (the version changed between our read and our write)


@dataclass
class VersionInfo:
    version: str
    provisioning_state: str
    state: str  # live | staged | yanked | expired | failed | in-progress
    latest: bool
    exclude_from_latest: bool
    end_of_life_date: str | None
    published_date: str | None
    regions: list[str]
    tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _info(resource: dict[str, Any], now: dt.datetime) -> VersionInfo:
    props = resource.get("properties") or {}
    profile = props.get("publishingProfile") or {}
    tags = resource.get("tags") or {}
    provisioning = props.get("provisioningState", "Unknown")
    eol = profile.get("endOfLifeDate")
    excluded = bool(profile.get("excludeFromLatest"))
    eol_at = _parse(eol)
    if provisioning in BUSY:
        state = "in-progress"
    elif provisioning != "Succeeded":
        state = "failed"
    elif T.YANKED in tags:
        state = "yanked"
    elif eol_at is not None and eol_at <= now:
        state = "expired"
    else:
        state = "staged" if excluded else "live"
    return VersionInfo(version=resource["name"], provisioning_state=provisioning, state=state, latest=False,
                       exclude_from_latest=excluded, end_of_life_date=eol, published_date=profile.get("publishedDate"),
                       regions=[r.get("name") for r in profile.get("targetRegions") or []], tags=tags)


class Lifecycle:
    """Operations on the versions of one catalog image's gallery definition."""

    def __init__(self, catalog: Catalog, image_name: str, settings: Settings,
                 progress: ProgressCallback = ignore) -> None:
        self.image = catalog.model(image_name)
        self.dest = Destination.of(self.image)
        self.compute = compute_client(settings)
        self.progress = progress
        self.listed_etags: dict[str, str | None] = {}

    def _args(self, version: str | None = None) -> tuple[str, ...]:
        d = self.dest
        base = (d.resource_group, d.gallery, d.definition)
        return (*base, version) if version else base

    def versions(self) -> list[VersionInfo]:
        """All versions, newest first; ``latest`` marks what Azure resolves ``latest`` to."""
        with arm_errors(f"listing versions of {self.dest.definition}"):
            items = [v.as_dict() for v in self.compute.gallery_image_versions.list_by_gallery_image(*self._args())]
        self.listed_etags = {i["name"]: i.get("etag") for i in items}  # for gc's conditional deletes
        now = _now()
        infos = sorted((_info(i, now) for i in items), key=lambda v: sort_key(v.version), reverse=True)
        for info in infos:
            if not info.exclude_from_latest and info.provisioning_state == "Succeeded":
                info.latest = True
                break
        return infos

    def get(self, version: str) -> dict[str, Any]:
        return self.read(version)[0]

    def read(self, version: str) -> tuple[dict[str, Any], str | None]:
        """``(resource, ETag)`` of ``version``; InputError when it does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        require_valid(version)
        with arm_errors(f"reading version {version}"):
            try:
                return read_with_etag(self.compute.gallery_image_versions.get, *self._args(version),
                                      expand="ReplicationStatus")
            except ResourceNotFoundError:
                raise InputError(f"version {version} of {self.image.name} not found in gallery "
                                 f"{self.dest.gallery}/{self.dest.definition}", field="version") from None

    def _update(self, version: str, tags: dict[str, str], profile: dict[str, Any],
                etag: str | None) -> dict[str, Any] | None:
        """PATCH tags and publishing profile only if the version is still what was read (If-Match ``etag``);
        None when it changed meanwhile (412): the caller re-reads and re-checks."""
        from azure.core.exceptions import HttpResponseError

        with arm_errors(f"updating version {version}"):
            try:
                return self.compute.gallery_image_versions.begin_update(
                    *self._args(version), {"tags": tags, "properties": {"publishingProfile": profile}},
                    **if_match(etag)).result().as_dict()
            except HttpResponseError as exc:
                if exc.status_code == 412 or arm_code(exc) == "PreconditionFailed":
                    return None
                raise

    def _conditional(self, version: str, stage: str, doing: str, change) -> dict[str, Any]:
        """Read, let ``change(resource) -> (tags, profile)`` check and build the update, write it conditionally;
        when another writer got in between (412), read again and re-check (``change`` may refuse then).

        With an ETag the write is refused by ARM if anything changed since the read (a delayed or retried PATCH
        included). A resource provider that sends no ETag gets a fresh read directly before the write instead."""
        for _attempt in range(CONDITIONAL_ATTEMPTS):
            resource, etag = self.read(version)
            tags, profile = change(resource)
            if etag is None:  # no ETag: narrow the window with a fresh read and the same checks right before
                resource, etag = self.read(version)
                tags, profile = change(resource)
            updated = self._update(version, tags, profile, etag)
            if updated is not None:
                return updated
            self.progress(Progress(stage, f"version {version} changed while {doing} it; reading it again"))
        raise OperationError(f"version {version} kept changing while {doing} it ({CONDITIONAL_ATTEMPTS} attempts); "
                             "another run is updating it: try again later")

    def promote(self, version: str, force: bool = False) -> VersionInfo:
        """Make ``version`` eligible for ``latest``; it must be Succeeded and fully replicated, and verified,
        not yanked and not expired (the last three unless ``force``). The checks and the write see the same
        state of the version (If-Match), so a concurrent yank is never undone."""
        self.progress(Progress("promote", f"promoting {version}"))
        now = _now()
        updated = self._conditional(version, "promote", "promoting", lambda r: self._promotion(version, r, force, now))
        return self._with_latest(_info(updated, _now()))

    def _with_latest(self, info: VersionInfo) -> VersionInfo:
        """``info`` with ``latest`` as Azure now resolves it (another version may be newer and eligible)."""
        info.latest = any(v.latest and v.version == info.version for v in self.versions())
        return info

    def _promotion(self, version: str, resource: dict[str, Any], force: bool,
                   now: dt.datetime) -> tuple[dict[str, str], dict[str, Any]]:
        props = resource["properties"]
        tags = dict(resource.get("tags") or {})
        if props.get("provisioningState") != "Succeeded":
            raise OperationError(f"version {version} is {props.get('provisioningState')}; only a Succeeded version "
                                 "can be promoted")
        replication = (props.get("replicationStatus") or {}).get("aggregatedState")
        if replication != "Completed":
            raise OperationError(f"version {version} replication is {replication}; re-run publish to finish it first")
        verification = tags.get(T.VERIFICATION, "missing")
        if verification != T.VERIFIED and not force:
            raise OperationError(f"version {version} verification is '{verification}'; promote only verified "
                                 "versions (or pass --force)")
        if T.YANKED in tags and not force:
            raise OperationError(f"version {version} was yanked ({tags[T.YANKED][:T.MAX_VALUE]!r}); pass --force to "
                                 "promote it")
        eol = (props.get("publishingProfile") or {}).get("endOfLifeDate")
        eol_at = _parse(eol)
        if eol_at is not None and eol_at <= now and not force:
            raise OperationError(f"version {version} expired (end of life {eol}); pass --force to promote it")
        tags.pop(T.YANKED, None)
        tags.pop(T.YANKED_AT, None)
        tags[T.PROMOTED_AT] = now.isoformat(timespec="seconds")
        return tags, {"excludeFromLatest": False}

    def yank(self, version: str, reason: str) -> VersionInfo:
        """Exclude ``version`` from latest, end its life now and record why (conditionally, as ``promote``)."""
        if not reason.strip():
            raise InputError("a reason is required", field="--reason")
        require_valid(version)
        now = _now()

        def change(resource: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
            tags = dict(resource.get("tags") or {})
            tags[T.YANKED] = reason.strip()[:T.MAX_VALUE]
            tags[T.YANKED_AT] = now.isoformat(timespec="seconds")
            return tags, {"excludeFromLatest": True, "endOfLifeDate": now.isoformat()}

        self.progress(Progress("yank", f"yanking {version}"))
        return _info(self._conditional(version, "yank", "yanking", change), now)

    def gc(self, keep: int, dry_run: bool = False) -> list[dict[str, str]]:
        """Delete excluded or expired versions older than the newest ``keep``; never the current latest or one
        still in progress. Returns ``[{version, reason}]`` (deleted, or to delete with ``dry_run``)."""
        if keep < 0:
            raise InputError(f"--keep must be >= 0, got {keep}", field="--keep")
        doomed = []
        for info in self.versions()[keep:]:
            if info.latest or info.state == "in-progress":
                continue
            if info.state in ("expired", "yanked", "failed") or info.exclude_from_latest:
                doomed.append({"version": info.version, "reason": info.state})
        if dry_run or not doomed:
            return doomed
        from azure.core.exceptions import HttpResponseError

        # each delete is conditional on the version being as listed (If-Match): one promoted (or otherwise changed)
        # since the listing is 412 and kept, never deleted on a stale decision
        deleted, pollers = [], []
        with arm_errors("deleting versions"):
            for item in doomed:
                version = item["version"]
                try:
                    pollers.append((item, self.compute.gallery_image_versions.begin_delete(
                        *self._args(version), **if_match(self.listed_etags.get(version)))))
                except HttpResponseError as exc:
                    if exc.status_code != 412 and arm_code(exc) != "PreconditionFailed":
                        raise
                    self.progress(Progress("gc", f"kept {version}: it changed since it was listed"))
            for item, poller in pollers:
                self.progress(Progress("gc", f"deleting {item['version']}"))
                poller.result()
                deleted.append(item)
        return deleted
