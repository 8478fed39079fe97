"""Error types and the exit codes the CLI maps them to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


@dataclass
class Problem:
    """One located problem in the user's input: ``file:line: field: message``."""

    message: str
    file: Path | str | None = None
    line: int | None = None
    field: str | None = None
    image: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        subject = f"{self.field}: " if self.field else ""
        owner = f"[{self.image}] " if self.image else ""
        return f"{where}{owner}{subject}{self.message}"

    def as_dict(self) -> dict:
        return {
            "severity": self.severity,
            "file": str(self.file) if self.file is not None else None,
            "line": self.line,
            "image": self.image,
            "field": self.field,
            "message": self.message,
        }


class BuilderError(Exception):
    """Base for errors the CLI reports without a traceback."""

    exit_code = EXIT_FAILED


class InputError(BuilderError):
    """Invalid input or usage (exit 2). Carries one or more located problems."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str | Problem | list[Problem], **where) -> None:
        if isinstance(message, list):
            self.problems = message
        elif isinstance(message, Problem):
            self.problems = [message]
        else:
            self.problems = [Problem(message, **where)]
        super().__init__("\n".join(str(p) for p in self.problems))


class OperationError(BuilderError):
    """An operation failed (exit 1); ``log`` points at the full log when there is one."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, log: Path | str | None = None) -> None:
        self.log = log
        text = f"{message} (log: {log})" if log else message
        super().__init__(text)


@dataclass
class Findings:
    """Accumulates problems; errors and warnings are kept apart."""

    items: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        self.items.append(problem)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]
