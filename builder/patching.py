"""Hands-off patching (``builder patch``): outdated -> build -> verify -> staged version -> release notes.

For every image ``builder outdated`` flags (a newer marketplace base, a newer live version of a catalog base
image, a newer release of a pinned package), this module builds a new version with the chosen target, whose build
verifies it (local: the static and hygiene suites of the pipeline; azure: the suite Packer runs on the build VM,
without which nothing is captured: ``builder/packer/render.py``), and whose publish step stages it
(``excludeFromLatest``: the catalog's ``gallery.staging``). Nothing here promotes: approval is a person's
``builder promote``. The staged version then gets release notes: ``builder diff`` against the current latest
(components, packages) plus the changes that triggered the patch (base version old -> new), written to
``<state>/patches/<image>/<version>.md`` and attached as tags (``builder.patch``: one line;
``builder.patch_notes_sha256``: the notes' digest; ``builder.patch_key``: what the patch was built for).

Idempotent: the key is the SHA-256 of the image's triggering findings (kind, subject, newest version) and its
resolved catalog entry. A staged, live or in-progress version carrying the same
key means the patch exists: nothing is built. A yanked one means a person rejected it: nothing is built either.
An image whose build or verification fails publishes nothing (the build stops before its publish step) and is
reported; the other images go on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.catalog.loader import Catalog
from builder.errors import BuilderError, InputError, OperationError
from builder.stack import tags as T

# ``builder.outdated`` and ``builder.diff`` are command backends (docs/architecture.md): ``builder/commands/patch.py``
# runs the checks and hands this module their report (a ``builder.outdated.Report``: ``images``, ``findings``,
# ``notes``, ``errors``, ``as_dict()``) and a ``Differ`` that writes ``builder diff``'s markdown.
Finding = Any  # builder.outdated.Finding: image, kind, subject, current, latest, rebuild, as_dict()
Report = Any

PATCHES_DIR = "patches"
STAGED, UNCHANGED, REJECTED, FAILED, PLANNED = "staged", "unchanged", "rejected", "failed", "planned"
# States (builder.azure.lifecycle.VersionInfo.state) in which a version with the same key counts as the patch.
EXISTING_STATES = ("staged", "live", "in-progress")


@dataclass
class Built:
    """What a build hands back: the new version and where its facts are (for the release notes)."""

    version: str
    build_id: str | None = None
    sbom_places: list[Path] = field(default_factory=list)


Build = Callable[[str], Built]  # image name -> the staged version; raises BuilderError when it fails


@dataclass
class Outcome:
    image: str
    status: str  # staged | unchanged | rejected | failed | planned
    key: str
    findings: list[Finding]
    current: str | None = None  # the version `latest` resolves to
    version: str | None = None  # the staged (or already existing) patch version
    verification: str | None = None
    message: str = ""
    notes: str | None = None
    notes_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [f.as_dict() for f in self.findings]
        return data


@dataclass
class PatchReport:
    outdated: Report
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.outdated.errors and all(o.status != FAILED for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        staged = [{"image": o.image, "version": o.version, "verification": o.verification}
                  for o in self.outcomes if o.status == STAGED]
        return {"ok": self.ok, "images": [o.as_dict() for o in self.outcomes], "staged": staged,
                "failed": [o.image for o in self.outcomes if o.status == FAILED],
                "outdated": self.outdated.as_dict()}


# ---------------------------------------------------------------- keys and summaries


def catalog_digest(catalog: Catalog, image: str) -> str:
    """SHA-256 of the image's resolved catalog entry (without the fields that only document or arrange it)."""
    from builder.packer.chain import NOT_IMAGE_FIELDS

    data = catalog.model(image).model_dump(mode="json", exclude=set(NOT_IMAGE_FIELDS))
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def patch_key(catalog: Catalog, image: str, findings: list[Finding]) -> str:
    """SHA-256 of what a patch of ``image`` is built for: its triggering findings (kind, subject, newest) and its
    catalog entry. Changes to the repository's build files are releases of their own (``release.yml``, ``builder
    matrix --changed-since``), not patches: they do not make a staged patch stale."""
    wanted = sorted({(f.kind, f.subject, f.latest) for f in findings if f.rebuild})
    payload = json.dumps({"image": image, "findings": wanted, "catalog": catalog_digest(catalog, image)},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def summary(findings: list[Finding]) -> str:
    """One line for the ``builder.patch`` tag, cut to Azure's tag value limit (``tags.MAX_VALUE``)."""
    text = "; ".join(f"{f.kind} {f.subject}: {f.current} -> {f.latest}" for f in findings if f.rebuild)
    return text if len(text) <= T.MAX_VALUE else text[:T.MAX_VALUE - 3] + "..."


def trigger_markdown(findings: list[Finding], current_base: str | None, new_base: str | None) -> str:
    rows = ["### Why this version (builder patch)", "", "| change | kind | built on | newest |", "|---|---|---|---|"]
    rows += [f"| {f.subject} | {f.kind} | {f.current} | {f.latest} |" for f in findings if f.rebuild]
    rows += ["", f"Base version recorded (`{T.BASE_VERSION}`): {current_base or '(none)'} (current latest) -> "
                 f"{new_base or '(none)'} (this version).", ""]
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------- the flow


def existing_patch(infos: list, key: str):
    """The version already built for ``key`` (staged, live, in progress or yanked), else None."""
    return next((i for i in infos if i.tags.get(T.PATCH_KEY) == key and
                 (i.state in EXISTING_STATES or i.state == "yanked")), None)


# (image, new version, its gallery tags, the current latest VersionInfo or None, SBOM places) -> markdown
Differ = Callable[[str, str, dict[str, str], Any, list[Path]], str]


def release_notes(differ: Differ, image: str, state_dir: Path, built: Built, new_tags: dict[str, str], current,
                  findings: list[Finding]) -> str:
    """``builder diff`` of the new version against the current latest, plus the triggering changes."""
    places = [p for p in (*built.sbom_places, state_dir / "builds", state_dir / "azure") if p.exists()]
    notes = differ(image, built.version, new_tags, current, places)
    return notes + "\n" + trigger_markdown(findings, current.tags.get(T.BASE_VERSION) if current else None,
                                           new_tags.get(T.BASE_VERSION))


def write_notes(state_dir: Path, image: str, version: str, notes: str) -> Path:
    path = state_dir / PATCHES_DIR / image / f"{version}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notes, encoding="utf-8")
    return path


GalleryOpener = Callable[[], contextlib.AbstractContextManager]


def run(catalog: Catalog, report: Report, build: Build, differ: Differ, gallery: GalleryOpener, state_dir: Path,
        dry_run: bool = False, say: Callable[[str], None] = lambda _m: None) -> PatchReport:
    """Patch every image ``report`` says to rebuild; ``gallery()`` opens SDK settings (not held during builds:
    a local build opens the local gallery itself)."""
    from builder.azure.lifecycle import Lifecycle

    result = PatchReport(report)
    for image in report.images:
        findings = [f for f in report.findings if f.image == image and f.rebuild]
        outcome = Outcome(image, PLANNED, patch_key(catalog, image, findings), findings)
        result.outcomes.append(outcome)
        try:
            _patch(catalog, image, outcome, build, differ, gallery, state_dir, dry_run, say, Lifecycle)
        except BuilderError as exc:
            outcome.status, outcome.message = FAILED, str(exc)
            say(f"{image}: failed: {exc}")
    return result


def _patch(catalog: Catalog, image: str, outcome: Outcome, build: Build, differ: Differ, gallery: GalleryOpener,
           state_dir: Path, dry_run: bool, say: Callable[[str], None], lifecycle) -> None:
    model = catalog.model(image)
    if not model.gallery.staging.exclude_from_latest:
        raise InputError(f"{image}: gallery.staging.exclude_from_latest is false, so a patched version would be "
                         "in latest without approval; builder patch only stages", field="gallery.staging")
    with gallery() as settings:
        infos = lifecycle(catalog, image, settings).versions()
    current = next((i for i in infos if i.latest), None)
    outcome.current = current.version if current else None
    found = existing_patch(infos, outcome.key)
    if found is not None:
        outcome.version, outcome.verification = found.version, found.tags.get(T.VERIFICATION)
        if found.state == "yanked":
            outcome.status = REJECTED
            outcome.message = f"{found.version} was built for the same inputs and yanked: not rebuilt"
        else:
            outcome.status = UNCHANGED
            outcome.message = f"{found.version} ({found.state}) was already built for the same inputs"
        say(f"{image}: {outcome.message}")
        return
    if dry_run:
        outcome.message = f"would build and stage a new version ({summary(outcome.findings)})"
        return
    say(f"{image}: building ({summary(outcome.findings)})")
    built = build(image)  # verification failing stops the build before it publishes
    outcome.version = built.version
    with gallery() as settings:
        life = lifecycle(catalog, image, settings)
        resource = life.get(built.version)
        profile = (resource.get("properties") or {}).get("publishingProfile") or {}
        if not profile.get("excludeFromLatest"):
            raise OperationError(f"{image} {built.version} was published eligible for latest, not staged: its "
                                 "release notes were not attached; yank it or promote it deliberately")
        tags = resource.get("tags") or {}
        notes = release_notes(differ, image, state_dir, built, tags, current, outcome.findings)
        path = write_notes(state_dir, image, built.version, notes)
        from builder.azure.publish import tag_version

        tagged = tag_version(catalog, image, built.version, {
            T.PATCH_KEY: outcome.key, T.PATCH: summary(outcome.findings),
            T.PATCH_NOTES: hashlib.sha256(notes.encode()).hexdigest()}, settings)
    outcome.status, outcome.notes, outcome.notes_file = STAGED, notes, str(path)
    outcome.verification = tagged.get(T.VERIFICATION)
    outcome.message = f"staged {built.version} (excluded from latest; promote after approval)"
    say(f"{image}: {outcome.message}")


# ---------------------------------------------------------------- builds


def local_build(catalog: Catalog, state_dir: Path, cache_dir: Path, feed: str, boot: bool = True) -> Build:
    """The local pipeline (``builder build --target local``), publishing to the environment's gallery."""
    from builder.local.display import Reporter
    from builder.local.pipeline import BuildOptions, Pipeline

    def build(image: str) -> Built:
        options = BuildOptions(image=image, state_dir=state_dir.resolve(), cache_dir=cache_dir.resolve(), feed=feed,
                               boot=boot, publish=True)
        record = Pipeline(catalog, options, Reporter()).run()
        return Built(record.version, record.id, [record.directory])

    return build


def azure_build(catalog: Catalog, state_dir: Path, feed: str, settings) -> Build:
    """The Packer build (``builder build --target azure``): Packer publishes the staged version."""
    import datetime as dt

    from builder.packer.azure import azure_build as packer_build
    from builder.packer.build import base_versions

    def build(image: str) -> Built:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        out = (state_dir / "azure" / f"{image}-patch-{stamp}").resolve()
        artifact = packer_build(catalog, image, out_dir=out, feed=feed, base_versions=base_versions(catalog, image),
                                settings=settings)
        return Built(artifact.version, None, [out])

    return build


@contextlib.contextmanager
def env_gallery(state_dir: Path) -> Iterator:
    """The gallery of the environment (Azure or an emulator), else the local gallery in ``<state>/gallery``."""
    from builder.local.gallery import open_gallery, resolve_target

    with open_gallery(resolve_target(state_dir)) as settings:
        yield settings
