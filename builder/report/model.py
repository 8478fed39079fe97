"""The typed model of one build report: what ``builder.report.data`` gathers and ``builder.report.html`` renders.

Nothing here reads files; every value is plain data (paths are absolute, links are made relative when rendered).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FAILING = ("failed", "error")  # as builder.verify.results.FAILING


@dataclass
class Link:
    """A file of the build (log or artifact); ``exists`` is False for one the record names but that is gone."""

    label: str
    path: Path
    exists: bool = True
    size: int | None = None

    @classmethod
    def of(cls, label: str, path: Path | str) -> Link:
        file = Path(path)
        found = file.is_file()
        return cls(label, file, found, file.stat().st_size if found else None)


@dataclass
class PhaseRow:
    name: str
    status: str
    seconds: float
    start: float  # seconds after the first phase started (phases run one after another)
    detail: str = ""
    log: Link | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "interrupted")


@dataclass
class Check:
    name: str
    outcome: str  # passed | warning | failed | error | skipped
    suite: str = ""
    group: str = ""
    expected: str | None = None
    found: str | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in FAILING


@dataclass
class CheckRun:
    """One verification run (``verify-pre-generalize.json``, ``verify-hygiene.json``, an Azure ``junit.xml``)."""

    label: str
    source: Link
    checks: list[Check] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        if outcome == "failed":
            return sum(c.failed for c in self.checks)
        return sum(c.outcome == outcome for c in self.checks)


@dataclass
class Change:
    name: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"


@dataclass
class Changes:
    """What changed since the previous build of the same image (``previous`` None: the first build)."""

    previous: str | None = None  # build id
    previous_version: str | None = None
    components: list[Change] | None = field(default_factory=list)  # None: no versions recorded on one side
    packages: list[Change] | None = None  # None: a package list is missing on one side
    note: str = ""
    package_note: str = ""


@dataclass
class Report:
    build_id: str
    image: str
    target: str  # local | azure
    status: str
    directory: Path
    version: str | None = None
    started: float | None = None
    finished: float | None = None
    duration: float | None = None
    error: str | None = None
    error_log: Link | None = None
    phases: list[PhaseRow] = field(default_factory=list)
    timeline_note: str = ""
    runs: list[CheckRun] = field(default_factory=list)
    components: dict[str, str] = field(default_factory=dict)
    components_source: str = ""
    packages: dict[str, str] | None = None
    packages_source: str = ""
    changes: Changes = field(default_factory=Changes)
    logs: list[Link] = field(default_factory=list)
    artifacts: list[Link] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    def failures(self) -> list[tuple[CheckRun, Check]]:
        return [(run, check) for run in self.runs for check in run.checks if check.failed]

    def as_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        data = plain(asdict(self))
        data["failed_checks"] = [{"run": run.label, **plain(asdict(check))} for run, check in self.failures()]
        for change in ("components", "packages"):
            items = getattr(self.changes, change)
            data["changes"][change] = None if items is None else [
                {"name": c.name, "kind": c.kind, "old": c.old, "new": c.new} for c in items]
        return data
