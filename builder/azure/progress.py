"""Progress events the publisher reports (the CLI prints them; other callers may ignore them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Progress:
    """``stage`` (ensure, create, replicate, done, ...), a message, and per-region ``(state, percent)``."""

    stage: str
    message: str = ""
    regions: dict[str, tuple[str, int]] = field(default_factory=dict)


ProgressCallback = Callable[[Progress], None]


def ignore(_: Progress) -> None:
    """The default callback."""
