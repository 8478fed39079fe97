"""The typed model of one build report: what ``builder.report.data`` gathers and ``builder.report.html`` renders.

Nothing here reads files; every value is plain data (paths are absolute, links are made relative when rendered).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# One model each with the commands that write what a report reads: a version change as ``builder diff`` has it,
# a check as ``builder verify`` writes it (the report reads no ``duration_s`` and lists none, see ``check_dict``).
from builder.changes import Change, changes_as_dicts
from builder.verify.results import CheckResult

CHECK_FIELDS = ("name", "outcome", "suite", "group", "expected", "found", "message")  # a check in --json


def check_dict(check: CheckResult) -> dict[str, Any]:
    """A check as ``builder report --json`` lists it."""
    return {name: getattr(check, name) for name in CHECK_FIELDS}


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
class CheckRun:
    """One verification run (``verify-pre-generalize.json``, ``verify-hygiene.json``, an Azure ``junit.xml``)."""

    label: str
    source: Link
    checks: list[CheckResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        if outcome == "failed":
            return sum(c.failed for c in self.checks)
        return sum(c.outcome == outcome for c in self.checks)


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

    def failures(self) -> list[tuple[CheckRun, CheckResult]]:
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
        for run, listed in zip(self.runs, data["runs"], strict=True):
            listed["checks"] = [check_dict(check) for check in run.checks]
        data["failed_checks"] = [{"run": run.label, **check_dict(check)} for run, check in self.failures()]
        for change in ("components", "packages"):
            data["changes"][change] = changes_as_dicts(getattr(self.changes, change))
        return data
