"""The result model of ``builder doctor``: one ``Check`` per thing a build needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Check:
    """``name``: what was checked; ``ok``: whether the build has it; ``found``: what was seen (never a secret);
    ``fix``: how to get it (empty when ok); ``group``: tools, azure."""

    name: str
    ok: bool
    found: str
    fix: str = ""
    group: str = "tools"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(name: str, found: str, group: str = "tools") -> Check:
    return Check(name, True, found, "", group)


def missed(name: str, found: str, fix: str, group: str = "tools") -> Check:
    return Check(name, False, found, fix, group)


def summary(checks: list[Check], image: str | None, target: str) -> dict[str, Any]:
    """The ``--json`` document: ``ok`` (no miss), the misses counted, every check."""
    misses = [c for c in checks if not c.ok]
    return {"image": image, "target": target, "ok": not misses, "misses": len(misses),
            "checks": [c.as_dict() for c in checks]}
