"""Base profiles: what each marketplace base already carries (``builder/data/bases/<offer>-<sku>.yaml``), every
entry citing its source (docs/base-profiles.md)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import InputError
from builder.paths import BASE_PROFILES


@dataclass(frozen=True)
class BaseProfile:
    file: Path
    publisher: str
    offer: str
    sku: str
    os: str
    data: dict[str, Any]

    @property
    def sources(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.data.get("sources") or {}).items()}

    def cite(self, ids: Any) -> str:
        names = ids if isinstance(ids, list) else [part.strip() for part in str(ids).split(",")]
        return "; ".join(self.sources.get(name, name) for name in names)

    def packages(self) -> list[dict[str, Any]]:
        return list(self.data.get("packages") or [])

    def package(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.packages() if p.get("name") == name), None)

    def unknown(self) -> list[str]:
        return [str(u) for u in self.data.get("unknown") or []]


def _entries(node: Any):
    """Every mapping under ``node`` that carries a ``source`` key."""
    if isinstance(node, dict):
        if "source" in node:
            yield node
        for value in node.values():
            yield from _entries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _entries(value)


def load_profile(path: Path) -> BaseProfile:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        market = data["marketplace"]
        profile = BaseProfile(path, str(market["publisher"]), str(market["offer"]), str(market["sku"]),
                              str(data["os"]), data)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise InputError(f"not a readable base profile: {exc}", file=path) from None
    known = set(profile.sources)
    for entry in _entries({k: v for k, v in data.items() if k not in ("sources", "recorded_from")}):
        if entry["source"] is None:  # "nothing documented": the entry states no fact
            continue
        ids = entry["source"] if isinstance(entry["source"], list) else str(entry["source"]).split(",")
        missing = [str(i).strip() for i in ids if str(i).strip() not in known]
        if missing:
            raise InputError(f"entry cites unknown source id(s) {', '.join(missing)}", file=path, field="source")
    return profile


@functools.cache
def profiles(root: Path = BASE_PROFILES) -> tuple[BaseProfile, ...]:
    return tuple(load_profile(path) for path in sorted(root.glob("*.yaml")))


def profile_for(publisher: str, offer: str, sku: str, root: Path = BASE_PROFILES) -> BaseProfile | None:
    """The profile of a marketplace base, or None when none is recorded."""
    return next((p for p in profiles(root) if (p.publisher, p.offer, p.sku) == (publisher, offer, sku)), None)
