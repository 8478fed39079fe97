"""Recorded package facts of the vendors' apt repositories (``builder/data/feeds/<feed>-<os>.yaml``), each record
citing its source (docs/recorded-feeds.md). Read offline by ``builder validate`` to refuse a pin the records
contradict; a package or version without a record is unknown, not absent."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import InputError
from builder.paths import FEED_RECORDS


@dataclass(frozen=True)
class Record:
    feed: str
    os: str
    name: str
    version: str
    fields: dict[str, Any]
    source: str  # the resolved citation(s)

    @property
    def upstream(self) -> str:
        return upstream_of(self.version)


def upstream_of(version: str) -> str:
    """``1:4.5.2-1`` -> ``4.5.2``; ``2.30.4-1+cuda13.0`` -> ``2.30.4``."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


def _citation(sources: dict[str, str], ids: Any, file: Path) -> str:
    names = ids if isinstance(ids, list) else [part.strip() for part in str(ids).split(",")]
    missing = [name for name in names if name not in sources]
    if missing:
        raise InputError(f"record cites unknown source id(s) {', '.join(missing)}", file=file, field="source")
    return "; ".join(sources[name] for name in names)


def load_file(path: Path) -> list[Record]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read recorded feed facts: {exc}", file=path) from None
    sources = {str(k): str(v) for k, v in (data.get("sources") or {}).items()}
    records = []
    for entry in data.get("packages") or []:
        fields = {k: v for k, v in entry.items() if k not in ("name", "version", "source")}
        records.append(Record(str(data["feed"]), str(data["os"]), str(entry["name"]), str(entry["version"]), fields,
                              _citation(sources, entry.get("source"), path)))
    return records


@functools.cache
def all_records(root: Path = FEED_RECORDS) -> tuple[Record, ...]:
    return tuple(r for path in sorted(root.glob("*-*.yaml")) for r in load_file(path))


def for_package(feed: str, os_name: str, name: str, root: Path = FEED_RECORDS) -> list[Record]:
    """Records of ``name`` in ``feed`` for ``os_name`` (and the feed's OS-independent repository)."""
    return [r for r in all_records(root) if r.feed == feed and r.os in (os_name, "any") and r.name == name]


def exact_versions(packages: dict[str, list[Any]], os_name: str, root: Path = FEED_RECORDS) -> dict[str, list[Any]]:
    """Replace each version glob by the one recorded version of that release for ``os_name`` (with its source);
    a glob no record (or more than one) matches stays a glob: apt picks the build the repository has. An exact
    pin a record confirms gets that record's source; every other pin names the catalog as its source."""
    import dataclasses

    resolved: dict[str, list[Any]] = {}
    for component, group in packages.items():
        resolved[component] = []
        for pkg in group:
            found = sorted({(r.version, r.source) for r in for_package(pkg.feed, os_name, pkg.name, root)
                            if pkg.matches(r.version)})
            if len(found) == 1 and not pkg.source:
                pkg = dataclasses.replace(pkg, version=found[0][0], source=found[0][1])
            elif not pkg.source:  # the catalog's own pin; no record gives (or confirms) the version string
                glob = " (an apt glob: apt takes the repository's build of that release)" if not pkg.exact else ""
                pkg = dataclasses.replace(pkg, source=f"catalog components.{component}: no recorded {pkg.name} "
                                                      f"{pkg.version} for {os_name}{glob}")
            resolved[component].append(pkg)
    return resolved
