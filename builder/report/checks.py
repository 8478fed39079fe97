"""Verification results for the report: the JSON ``builder.verify.run_suite`` writes (``VerifyResult.as_dict``)
and the JUnit XML it writes with ``expected`` / ``found`` properties per test case (an Azure build keeps only
that: ``images/packer/verify-on-vm.sh`` passes ``--junit``)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from builder.report.model import CheckRun, Link
from builder.verify.results import CheckResult

# Order of the local build's runs (its phases `verify` then `verify:hygiene`); other selections follow by name.
RUN_ORDER = ("pre-generalize", "hygiene")


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def read_json(path: Path) -> CheckRun:
    """One ``verify-<select>.json``; ValueError/OSError when it cannot be read."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
        raise ValueError("not a verification result (no 'checks' list)")
    checks = [CheckResult(name=str(c.get("name", "?")), outcome=str(c.get("outcome", "?")),
                          suite=str(c.get("suite", "")), group=str(c.get("group", "")),
                          expected=_text(c.get("expected")), found=_text(c.get("found")),
                          message=_text(c.get("message")))
              for c in data["checks"] if isinstance(c, dict)]
    label = f"{data.get('suite', 'static')} suite, {data.get('select', 'all')}"
    return CheckRun(label, Link.of(path.name, path), checks)


def _param(param: str) -> str:
    """A test id's parameter without testinfra's host id (``local``, ``ssh://host``), as the suites' reporter
    names checks (``builder/verify/suites/conftest.py`` ``clean_id``); the host id is not in the XML, so the ids
    testinfra gives its backends are stripped by form."""
    parts = [p for p in param.split("-") if p and p != "local" and "://" not in p]
    return "-".join(parts)


def junit_name(classname: str, name: str) -> tuple[str, str, str]:
    """(suite, group, check name) of a JUnit test case: ``static.test_packages`` + ``test_pinned[nvidia-open-local]``
    -> ``static``, ``packages``, ``packages.pinned[nvidia-open]`` (``suites/conftest.py`` ``check_name``)."""
    module = classname.rsplit(".", 1)
    suite = module[0] if len(module) > 1 else "static"
    group = module[-1].removeprefix("test_")
    base, _, rest = name.partition("[")
    param = _param(rest.removesuffix("]")) if rest else ""
    check = f"{group}.{base.removeprefix('test_')}" + (f"[{param}]" if param else "")
    return suite, group, check


def _first_line(text: str | None) -> str | None:
    if not text or not text.strip():
        return None
    line = text.strip().splitlines()[0]
    return re.sub(r"^(AssertionError|Failed|Skipped): ", "", line)[:500]


def read_junit(path: Path, label: str = "verification (JUnit)") -> CheckRun:
    """The test cases of a JUnit XML file as checks; ET.ParseError (a ValueError) / OSError when unreadable."""
    root = ET.parse(path).getroot()
    checks = []
    for case in root.iter("testcase"):
        suite, group, name = junit_name(case.get("classname", ""), case.get("name", "?"))
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        outcome, message = "passed", None
        for tag, result in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(tag)
            if element is not None:
                outcome, message = result, _first_line(element.get("message") or element.text)
                break
        if outcome == "passed" and props.get("warning"):
            outcome, message = "warning", props.get("found")
        checks.append(CheckResult(name, suite, group, outcome, props.get("expected"), props.get("found"), message))
    return CheckRun(label, Link.of(path.name, path), checks)


def local_runs(directory: Path, notes: list[str]) -> list[CheckRun]:
    """Every ``verify-<select>.json`` of a local build folder, in phase order; unreadable ones become notes."""
    def order(path: Path) -> tuple[int, str]:
        select = path.stem.removeprefix("verify-")
        return (RUN_ORDER.index(select) if select in RUN_ORDER else len(RUN_ORDER), select)

    runs = []
    for path in sorted(directory.glob("verify-*.json"), key=order):
        try:
            runs.append(read_json(path))
        except (OSError, ValueError) as exc:
            notes.append(f"{path.name}: not readable ({exc})")
    return runs
