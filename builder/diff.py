"""``builder diff IMAGE V1 V2``: component and package changes between two image versions, as markdown.

Facts about a version come from where it was recorded:
- a local build (``<state>/registry.json`` entry with its artifacts -> ``manifest.json`` components and the
  ``*.cdx.json`` SBOM); an entry that ``builder publish`` wrote records only where the version went, not what it
  contains, so it never shadows the gallery (it used to: every such version read as "no components");
- a gallery version's tags (``component.<name>`` pins, ``builder.sbom_sha256`` naming its SBOM by digest).
  The SBOM itself is found among ``--sbom`` files/folders (for example downloaded release artifacts) and the
  local builds by that SHA-256.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The change model is shared with builder.report (builder.changes); imported here, it stays importable as
# builder.diff.Change.
from builder.changes import Change, changes_as_dicts, compare_versions
from builder.errors import InputError
from builder.hashing import sha256_file as digest
from builder.stack import tags as T

PREVIOUS = "previous"


@dataclass
class VersionFacts:
    """What one image version contains, and where that was read from."""

    version: str
    origin: str
    components: dict[str, str]
    packages: dict[str, str] | None = None  # None: no SBOM found
    sbom: str | None = None
    sbom_digest: str | None = None


@dataclass
class Diff:
    image: str
    old: VersionFacts | None
    new: VersionFacts
    components: list[Change] = field(default_factory=list)
    packages: list[Change] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "old": self.old.version if self.old else None, "new": self.new.version,
                "old_origin": self.old.origin if self.old else None, "new_origin": self.new.origin,
                "components": changes_as_dicts(self.components),
                "packages": changes_as_dicts(self.packages)}


# ---------------------------------------------------------------- reading SBOMs


def sbom_packages(path: Path) -> dict[str, str]:
    """``name -> version`` of every component of a CycloneDX JSON SBOM (dpkg packages and downloads)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable CycloneDX JSON SBOM: {exc}", file=path) from None
    if doc.get("bomFormat") != "CycloneDX":
        raise InputError("not a CycloneDX SBOM (bomFormat is not 'CycloneDX')", file=path, field="bomFormat")
    packages: dict[str, str] = {}
    for comp in doc.get("components") or []:
        name = comp.get("name")
        if name:
            packages[name] = str(comp.get("version", ""))
    return packages




def sbom_files(places: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for place in places:
        if place.is_dir():
            out += sorted(place.rglob("*.cdx.json"))
        elif place.is_file():
            out.append(place)
        else:
            raise InputError("SBOM file or folder not found", file=place, field="--sbom")
    return out


def find_sbom(sha256: str, places: Iterable[Path]) -> Path | None:
    for path in sbom_files(places):
        if digest(path) == sha256:
            return path
    return None


# ---------------------------------------------------------------- where versions are recorded


def local_facts(state_dir: Path, image: str, version: str) -> VersionFacts | None:
    """Facts from the local build registry (manifest components, SBOM), or None when not built here."""
    from builder.registry import LocalRegistry

    entry = LocalRegistry(state_dir).load()["images"].get(image, {}).get(version)
    artifacts = entry.get("artifacts") if isinstance(entry, dict) else None
    if not isinstance(artifacts, dict) or not (artifacts.get("manifest") or artifacts.get("sbom")):
        return None  # not built here (a `builder publish` record): the gallery's tags say what it contains
    components: dict[str, str] = {}
    manifest = Path(artifacts["manifest"]) if artifacts.get("manifest") else None
    if manifest and manifest.is_file():
        components = {k: str(v) for k, v in (json.loads(manifest.read_text()).get("components") or {}).items()}
    sbom = Path(artifacts["sbom"]) if artifacts.get("sbom") else None
    facts = VersionFacts(version, f"local build {entry.get('build_id', '?')}", components)
    if sbom and sbom.is_file():
        facts.packages, facts.sbom, facts.sbom_digest = sbom_packages(sbom), str(sbom), digest(sbom)
    return facts


def tag_facts(version: str, tags: dict[str, str], sbom_places: Iterable[Path], origin: str) -> VersionFacts:
    """Facts from a gallery version's tags; the SBOM is looked up by the digest its tag records."""
    components = T.components_from_tags(tags)
    facts = VersionFacts(version, origin, components, sbom_digest=tags.get(T.SBOM))
    if facts.sbom_digest:
        found = find_sbom(facts.sbom_digest, sbom_places)
        if found:
            facts.packages, facts.sbom = sbom_packages(found), str(found)
    return facts


# ---------------------------------------------------------------- comparing


def compare(image: str, old: VersionFacts | None, new: VersionFacts) -> Diff:
    diff = Diff(image, old, new, compare_versions(old.components if old else {}, new.components))
    if new.packages is not None and (old is None or old.packages is not None):
        diff.packages = compare_versions(old.packages if old else {}, new.packages)
    return diff


def pick_previous(version: str, known: Iterable[str]) -> str | None:
    """The newest of ``known`` older than ``version``."""
    from builder.versioning import sort_key

    older = [v for v in known if sort_key(v) < sort_key(version)]
    return max(older, key=sort_key) if older else None


def resolve(image: str, version: str, readers: list[Callable[[str], VersionFacts | None]]) -> VersionFacts:
    for read in readers:
        facts = read(version)
        if facts is not None:
            return facts
    raise InputError(f"version {version} of '{image}' is neither in the local build registry nor in a configured "
                     "gallery (set AZURE_SUBSCRIPTION_ID for the gallery)", field="version")


# ---------------------------------------------------------------- markdown


def _table(old_label: str, new_label: str, changes: list[Change]) -> list[str]:
    rows = [f"| name | {old_label} | {new_label} |", "|---|---|---|"]
    rows += [f"| {c.name} | {c.old or '—'} | {c.new or '—'} |" for c in changes]
    return rows


def to_markdown(diff: Diff, package_limit: int = 200) -> str:
    old_label = diff.old.version if diff.old else "(none)"
    out = [f"## {diff.image} {diff.new.version}", ""]
    if diff.old is None:
        out += ["First release: no earlier version to compare with.", ""]
    else:
        out += [f"Changes since {diff.old.version} ({diff.old.origin}; {diff.new.version}: {diff.new.origin}).", ""]
    out += ["### Components", ""]
    out += _table(old_label, diff.new.version, diff.components) if diff.components else ["No component changes."]
    out += ["", "### Packages", ""]
    if diff.packages is None:
        missing = [f for f in (diff.old, diff.new) if f is not None and f.packages is None]
        reasons = [f"{f.version}: " + (f"no SBOM with SHA-256 {f.sbom_digest} found (pass --sbom)" if f.sbom_digest
                                       else "no SBOM recorded") for f in missing]
        out.append("Package changes unavailable (" + "; ".join(reasons) + ").")
    elif not diff.packages:
        out.append("No package changes.")
    else:
        counts = {k: sum(c.kind == k for c in diff.packages) for k in ("changed", "added", "removed")}
        out.append(", ".join(f"{n} {k}" for k, n in counts.items()) + ".")
        out.append("")
        shown = diff.packages[:package_limit]
        out += _table(old_label, diff.new.version, shown)
        if len(diff.packages) > len(shown):
            out += ["", f"... and {len(diff.packages) - len(shown)} more (see --json)."]
    return "\n".join(out) + "\n"
