"""Outcome of a verification run: one entry per check with what was expected and what was found."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FAILING = ("failed", "error")


@dataclass(frozen=True)
class CheckResult:
    name: str  # "<group>.<check>[<item>]", e.g. "packages.pinned[nvidia-open]"
    suite: str  # static | hardware
    group: str
    outcome: str  # passed | warning (passed, with something to look at) | failed | skipped | error
    expected: str | None = None
    found: str | None = None
    message: str | None = None
    duration_s: float = 0.0

    @property
    def failed(self) -> bool:
        return self.outcome in FAILING


@dataclass
class VerifyResult:
    image: str
    suite: str
    select: str
    connection: str
    host: str | None
    checks: list[CheckResult] = field(default_factory=list)
    duration_s: float = 0.0
    log: str | None = None
    junit: str | None = None

    @property
    def passed(self) -> int:
        return sum(c.outcome == "passed" for c in self.checks)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.checks)

    @property
    def warnings(self) -> int:
        return sum(c.outcome == "warning" for c in self.checks)

    @property
    def skipped(self) -> int:
        return sum(c.outcome == "skipped" for c in self.checks)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed + self.warnings > 0

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    def warned(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome == "warning"]

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "suite": self.suite, "select": self.select, "connection": self.connection,
                "host": self.host, "ok": self.ok, "passed": self.passed, "failed": self.failed,
                "warnings": self.warnings, "skipped": self.skipped, "duration_s": round(self.duration_s, 2),
                "log": self.log, "junit": self.junit, "checks": [asdict(c) for c in self.checks]}
