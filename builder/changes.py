"""What changed between two ``name -> version`` maps (components, SBOM packages): the one change model that
``builder diff`` (``builder.diff``) and ``builder report`` (``builder.report``) both compare and print with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Change:
    """One name whose version differs: ``old`` None when it was added, ``new`` None when it was removed."""

    name: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"


def compare_versions(old: dict[str, str], new: dict[str, str]) -> list[Change]:
    """The names whose version differs between ``old`` and ``new``, sorted by name."""
    return [Change(n, old.get(n), new.get(n)) for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)]


def changes_as_dicts(items: list[Change] | None) -> list[dict[str, Any]] | None:
    """Changes as JSON-ready dicts (with their ``kind``); None stays None (nothing to compare with)."""
    return None if items is None else [{"name": c.name, "kind": c.kind, "old": c.old, "new": c.new} for c in items]
