"""Version comparison for dotted numeric versions (driver 580.95.05, CUDA 13.0.2)."""

from __future__ import annotations

import re


def parse(version: str) -> tuple[int, ...]:
    """``"580.95.05"`` -> ``(580, 95, 5)``; a Debian epoch and revision are ignored."""
    core = version.split(":")[-1].split("-")[0].split("+")[0]
    return tuple(int(p) for p in re.findall(r"[0-9]+", core))


def at_least(version: str, minimum: str) -> bool:
    return parse(version) >= parse(minimum)


def major_minor(version: str) -> str:
    parts = parse(version)
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}"
