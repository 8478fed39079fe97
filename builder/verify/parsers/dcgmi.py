"""``dcgmi diag -r N`` output: the result table (DCGM 3 and 4 layouts) or its ``-j`` JSON.

JSON layouts: DCGM 3 ``{"DCGM GPU Diagnostic": {"test_categories": [{"tests": [{"name", "results": [{"gpu_id",
"status", "warnings"}]}]}]}}`` (NVIDIA/DCGM#139); DCGM 4 ``{"DCGM Diagnostic": {"test_categories": [{"tests":
[{"name", "results": [{"entity_group", "entity_id", "status", "warnings": [{"warning", "error_id"}]}],
"test_summary": {"status"}}]}]}, "entity_groups", "metadata"}`` (NVIDIA/DCGM testing/python3/dcgm_diag_schema.json
@72fa3fea, NVIDIA/DCGM#215). dcgmi can print text before the document (a WARNING line); entries may be null.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from builder.verify.parsers.errors import ParseError

TOOL = "dcgmi diag"
PASSING = ("pass", "skip", "not run")
ROOT_KEYS = ("DCGM Diagnostic", "DCGM GPU Diagnostic")  # DCGM 4, DCGM 3


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
    """One entry per test; per-GPU results and warnings go into detail. ParseError when none is found."""
    start = text.find("{")
    if start >= 0:
        try:
            data, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            data = None
        if isinstance(data, dict) and any(key in data for key in ROOT_KEYS):
            return _parse_json(data)
    return _parse_table(text)


def _parse_table(text: str) -> list[DiagTest]:
    tests: list[DiagTest] = []
    section = ""
    for line in text.splitlines():
        if line.startswith(("|-----", "+-----")):
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
        raise ParseError(TOOL, "no diagnostic results found")
    return tests


def _items(value: Any) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _warnings(result: dict) -> list[str]:
    raw = result.get("warnings")
    raw = raw if isinstance(raw, list) else [raw] if raw else []
    texts = [str(w.get("warning", "")) if isinstance(w, dict) else str(w) for w in raw if w]
    entity = result.get("entity_id", result.get("gpu_id", result.get("gpu_ids")))
    return [f"GPU {entity}: {t}" if entity is not None else t for t in texts if t]


def _parse_json(data: dict) -> list[DiagTest]:
    root = next(data[key] for key in ROOT_KEYS if key in data)
    if not isinstance(root, dict):
        raise ParseError(TOOL, "diagnostic document has no test categories")
    tests = []
    for category in _items(root.get("test_categories")):
        for test in _items(category.get("tests")):
            results = _items(test.get("results"))
            statuses = {str(r.get("status", "")).title() for r in results if r.get("status")}
            summary = test.get("test_summary")
            if isinstance(summary, dict) and summary.get("status"):
                statuses.add(str(summary["status"]).title())
            if not statuses:
                continue
            status = next((s for s in ("Fail", "Warn") if s in statuses), None)
            status = status or ("Pass" if "Pass" in statuses else sorted(statuses)[0])
            detail = "; ".join(w for r in results for w in _warnings(r))
            tests.append(DiagTest(str(test.get("name", "?")), status, detail))
    if not tests:
        error = root.get("runtime_error")
        raise ParseError(TOOL, f"no diagnostic results found{': ' + str(error) if error else ''}")
    return tests


def version(text: str) -> str | None:
    """``DCGM Version | 4.5.2`` from the metadata block of DCGM 4 output (or ``metadata.version`` in JSON)."""
    match = re.search(r"\|\s*DCGM Version\s*\|\s*([\d.]+)", text) or re.search(r'"version"\s*:\s*"([\d.]+)"', text)
    return match.group(1) if match else None
