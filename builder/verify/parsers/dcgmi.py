"""``dcgmi diag -r N`` output: the result table (DCGM 3 and 4 layouts) or its ``-j`` JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PASSING = ("pass", "skip", "not run")


@dataclass(frozen=True)
class DiagTest:
    name: str
    result: str  # "Pass", "Fail", "Skip", "Warn", ...
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.result.lower() in PASSING


_ROW = re.compile(r"^\|\s*(.*?)\s*\|\s*(.*?)\s*\|\s*$")
_RESULT = re.compile(r"^(Pass|Fail|Skip|Warn|Not Run)\b(.*)$", re.IGNORECASE)


def parse_diag(text: str) -> list[DiagTest]:
    """One entry per test row; per-GPU continuation lines (``GPU0: Pass``) and warnings go into detail."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return _parse_json(json.loads(stripped))
    tests: list[DiagTest] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("|-----"):
            section = line.strip("|- +").split("-")[0].strip()
            continue
        match = _ROW.match(line)
        if not match:
            continue
        name, value = match.groups()
        if name in ("Diagnostic",) or section == "Metadata":
            continue
        result = _RESULT.match(value)
        if name and result:
            tests.append(DiagTest(name, result.group(1).title(), result.group(2).strip(" -")))
        elif tests and value:
            last = tests[-1]
            sub = re.match(r"^GPU\s*\d+:\s*(Pass|Fail|Skip|Warn)", value, re.IGNORECASE)
            detail = f"{last.detail}; {value}".strip("; ")
            status = "Fail" if sub and sub.group(1).lower() == "fail" else last.result
            tests[-1] = DiagTest(last.name, status, detail)
    if not tests:
        raise ValueError("no dcgmi diag results found")
    return tests


def _parse_json(data: dict) -> list[DiagTest]:
    tests = []
    for category in data.get("DCGM GPU Diagnostic", data).get("test_categories", []):
        for test in category.get("tests", []):
            results = test.get("results", [])
            statuses = {str(r.get("status", "")).title() for r in results}
            status = "Fail" if "Fail" in statuses else (statuses.pop() if len(statuses) == 1 else "Pass")
            warnings = "; ".join(str(r.get("warnings", r.get("info", ""))) for r in results if r.get("warnings"))
            tests.append(DiagTest(test.get("name", "?"), status or "Pass", warnings))
    if not tests:
        raise ValueError("no dcgmi diag results found")
    return tests


def version(text: str) -> str | None:
    """``DCGM Version | 4.5.2`` from the metadata block of DCGM 4 output."""
    match = re.search(r"\|\s*DCGM Version\s*\|\s*([\d.]+)", text)
    return match.group(1) if match else None
