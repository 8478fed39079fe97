"""Progress for people: a rich live table of phases (status, elapsed, current Ansible task) on a terminal,
plain timestamped lines otherwise, and a summary table at the end. Everything goes to stderr."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from builder.local.records import BuildRecord

STYLE = {"done": "green", "cached": "cyan", "failed": "bold red", "interrupted": "yellow", "running": "bold",
         "skipped": "dim", "pending": "dim"}


def _fmt(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{seconds:.1f}s"


class Reporter:
    """Receives pipeline events; the base class prints nothing (used by ``--quiet`` and tests)."""

    def __init__(self) -> None:
        self.record: BuildRecord | None = None
        self.task = ""
        self.phase_started = 0.0

    def start(self, record: BuildRecord) -> None:
        self.record = record

    def phase(self, name: str) -> None:
        self.phase_started = time.monotonic()
        self.task = ""

    def update(self, text: str) -> None:
        """The current sub-step: an Ansible task name, a disk step, the last serial-console line."""
        self.task = text

    def notice(self, text: str) -> None:
        pass

    def phase_done(self, name: str) -> None:
        pass

    def stop(self) -> None:
        pass


class LineReporter(Reporter):
    """One line per event on stderr (CI logs, pipes)."""

    def __init__(self, stream=None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self._last_task = 0.0

    def _say(self, text: str) -> None:
        elapsed = self.record.duration if self.record else 0.0
        print(f"[{_fmt(elapsed):>7}] {text}", file=self.stream, flush=True)

    def phase(self, name: str) -> None:
        super().phase(name)
        self._say(f"{name}: started")

    def update(self, text: str) -> None:
        super().update(text)
        now = time.monotonic()
        if now - self._last_task >= 2.0:  # keep CI logs readable
            self._last_task = now
            self._say(f"  {text}")

    def notice(self, text: str) -> None:
        self._say(text)

    def phase_done(self, name: str) -> None:
        phase = self.record.phase(name) if self.record else None
        if phase:
            detail = f" ({phase.detail})" if phase.detail else ""
            self._say(f"{name}: {phase.status} in {_fmt(phase.seconds)}{detail}")


class LiveReporter(Reporter):
    """A rich ``Live`` table redrawn four times a second."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self._live = None
        self._lock = threading.Lock()

    def start(self, record: BuildRecord) -> None:
        from rich.live import Live

        super().start(record)
        self._live = Live(get_renderable=self._render, console=self.console, refresh_per_second=4, transient=False)
        self._live.start()

    def notice(self, text: str) -> None:
        self.console.print(text)

    def _render(self):
        from rich.table import Table

        record = self.record
        table = Table(title=f"build {record.id}" if record else None, title_justify="left", expand=False)
        for column in ("phase", "status", "time", "detail"):
            table.add_column(column, overflow="fold" if column == "detail" else None)
        if record:
            for phase in record.phases:
                seconds = time.monotonic() - self.phase_started if phase.status == "running" else phase.seconds
                detail = self.task if phase.status == "running" else phase.detail
                style = STYLE.get(phase.status, "")
                table.add_row(phase.name, f"[{style}]{phase.status}[/]", _fmt(seconds) if phase.status != "pending"
                              else "", (detail or "")[:100])
            table.caption = f"elapsed {_fmt(record.duration)}"
        return table

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def make_reporter(quiet: bool = False) -> Reporter:
    if quiet:
        return Reporter()
    return LiveReporter() if sys.stderr.isatty() else LineReporter()


def summary(record: BuildRecord):
    """The end-of-build table (a rich renderable)."""
    from rich.table import Table

    table = Table(title=f"{record.image}: {record.status} in {_fmt(record.duration)} (build {record.id})",
                  title_justify="left")
    for column in ("phase", "status", "time", "detail"):
        table.add_column(column)
    for phase in record.phases:
        style = STYLE.get(phase.status, "")
        table.add_row(phase.name, f"[{style}]{phase.status}[/]", _fmt(phase.seconds) if phase.seconds else "",
                      phase.detail)
    for name, path in record.artifacts.items():
        table.add_row(f"[dim]{name}[/]", "", "", path)
    return table
