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


def retry_message(status: int | None, delay: float, attempt: int, attempts: int) -> str:
    """``throttled by Azure (429), retrying in 5 s (attempt 2/11)``: what the progress line says before a retry."""
    if status == 429:
        what = "throttled by Azure (429)"
    elif status:
        what = f"Azure answered {status}"
    else:
        what = "no answer from Azure"
    wait = f"{delay:.0f} s" if delay >= 1 or delay == 0 else f"{delay:.1f} s"
    return f"{what}, retrying in {wait} (attempt {attempt}/{attempts})"
