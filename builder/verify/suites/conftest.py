"""Shared fixtures of the verification suites: expectations, the ``check`` recorder and the JSON report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("builder-verify")
    group.addoption("--expectations", required=True, help="JSON written by builder.verify.expectations")
    group.addoption("--verify-report", default=None, help="Write per-check results (JSON lines) here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hygiene: only passes after the generalize role")
    config.pluginmanager.register(Reporter(config.getoption("--verify-report")), "builder-verify-reporter")


def load(config: pytest.Config) -> dict[str, Any]:
    """The expectations mapping (cached on the config object)."""
    cached = getattr(config, "_builder_expectations", None)
    if cached is None:
        cached = json.loads(Path(config.getoption("--expectations")).read_text(encoding="utf-8"))
        config._builder_expectations = cached  # type: ignore[attr-defined]
    return cached


@pytest.fixture(scope="session")
def expect(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.config)


class Check:
    """Records what a check expected and found (shown on failure, kept in JUnit and JSON) and asserts."""

    def __init__(self, node: pytest.Item) -> None:
        self.node = node

    def record(self, expected: Any, found: Any) -> None:
        self.node.user_properties.append(("expected", _text(expected)))
        self.node.user_properties.append(("found", _text(found)))

    def equal(self, expected: Any, found: Any) -> None:
        self.record(expected, found)
        assert found == expected, f"expected {_text(expected)}, found {_text(found)}"

    def that(self, ok: bool, expected: Any, found: Any) -> None:
        self.record(expected, found)
        assert ok, f"expected {_text(expected)}, found {_text(found)}"

    def warn(self, expected: Any, found: Any) -> None:
        """Passes, reported as a ``warning``: what was found deserves a look but fails nothing."""
        self.record(expected, found)
        self.node.user_properties.append(("warning", "true"))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set):
        items = [_text(v) for v in value]
        more = f" ... ({len(items) - 10} more)" if len(items) > 10 else ""
        return ", ".join(items[:10]) + more if items else "(none)"
    return json.dumps(value, default=str) if isinstance(value, dict) else str(value)


@pytest.fixture
def check(request: pytest.FixtureRequest) -> Check:
    return Check(request.node)


def check_name(item_nodeid: str) -> tuple[str, str, str]:
    """``static/test_packages.py::test_pinned[nvidia-open]`` -> (``static``, ``packages``, name)."""
    path, _, test = item_nodeid.partition("::")
    parts = path.split("/")
    suite = parts[-2] if len(parts) > 1 else "static"
    group = parts[-1].removeprefix("test_").removesuffix(".py")
    return suite, group, f"{group}.{test.removeprefix('test_')}"


def clean_id(item: pytest.Item) -> str:
    """The item's id without testinfra's host parameter (one host per run)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return item.nodeid
    host = callspec.params.get("_testinfra_host")
    param = callspec.id
    if host is not None:
        param = param.replace(host.backend.get_pytest_id(), "").replace("--", "-").strip("-")
    base = item.nodeid.split("[", 1)[0]
    return f"{base}[{param}]" if param else base


class Reporter:
    """Writes one JSON line per check to ``--verify-report`` and a progress line to stdout."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.start = time.monotonic()
        self.seen: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.names = {item.nodeid: clean_id(item) for item in items}

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed) or (
                report.when == "teardown" and report.failed):
            suite, group, name = check_name(self.names.get(report.nodeid, report.nodeid))
            props = dict(report.user_properties)
            outcome = report.outcome if report.when == "call" else ("skipped" if report.skipped else "error")
            if report.when == "call" and hasattr(report, "wasxfail"):
                outcome = "skipped"
            if outcome == "passed" and props.get("warning"):
                outcome = "warning"
            message = None
            if report.skipped and isinstance(report.longrepr, tuple):
                message = str(report.longrepr[2]).removeprefix("Skipped: ")
            elif report.failed:
                message = _short_failure(report)
            elif outcome == "warning":
                message = props.get("found")
            entry = {"name": name, "suite": suite, "group": group, "outcome": outcome,
                     "expected": props.get("expected"), "found": props.get("found"), "message": message,
                     "duration_s": round(report.duration, 3)}
            self.seen[report.nodeid] = entry
            sys.stdout.write(f"{outcome.upper():7} {name}" + (f"  ({message})" if outcome != "passed" and message
                                                               else "") + "\n")
            sys.stdout.flush()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.path is not None:
            with self.path.open("w", encoding="utf-8") as handle:
                for entry in self.seen.values():
                    handle.write(json.dumps(entry) + "\n")


def _short_failure(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    first = text.strip().splitlines()[0] if text.strip() else "failed"
    return first.removeprefix("AssertionError: ").removeprefix("Failed: ")[:500]
