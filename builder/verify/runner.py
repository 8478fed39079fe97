"""Run the pytest-testinfra suites against a host in a subprocess and collect per-check results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.catalog.loader import Catalog
from builder.errors import InputError, OperationError
from builder.paths import VERIFY_SUITES
from builder.verify.expectations import SUITES, build_expectations
from builder.verify.results import CheckResult, VerifyResult

SUITE_DIR = VERIFY_SUITES
CONNECTIONS = ("chroot", "ssh", "local", "docker")
SELECTS = {
    "all": None,
    "pre-generalize": "not hygiene",
    "hygiene": "hygiene",
}
STATIC_GROUPS = ("packages", "repositories", "services", "gpu_stack", "hpc", "rocm", "secure_boot", "manifest",
                 "hygiene")


def marker_expression(select: str) -> tuple[str | None, str | None]:
    """(``-m`` expression, ``-k`` expression) for ``all``, ``pre-generalize``, ``hygiene`` or a list of groups."""
    if select in SELECTS:
        return SELECTS[select], None
    groups = [g.strip() for g in select.split(",") if g.strip()]
    unknown = [g for g in groups if g not in STATIC_GROUPS + HARDWARE_GROUPS]
    if not groups or unknown:
        raise InputError(f"unknown selection '{select}': use all, pre-generalize, hygiene or groups from "
                         f"{', '.join(STATIC_GROUPS + HARDWARE_GROUPS)}", field="--select")
    return None, " or ".join(f"test_{g}.py" for g in groups)


HARDWARE_GROUPS = ("gpu", "fabric", "collectives", "dcgm", "containers", "host", "topology")


def check_target(connection: str, host: str | None) -> list[str]:
    """testinfra arguments for the connection; InputError for a bad combination."""
    if connection not in CONNECTIONS:
        raise InputError(f"unknown connection '{connection}' (use {', '.join(CONNECTIONS)})", field="--connection")
    if connection == "local":
        if host:
            raise InputError("--connection local checks this machine and takes no --host; use --connection ssh "
                             f"--host {host} for another one", field="--host")
        return ["--connection=local"]
    if not host:
        raise InputError(f"--host is required with --connection {connection}", field="--host")
    if connection == "chroot":
        root = Path(host)
        if not root.is_dir() or not ((root / "bin").exists() or (root / "usr/bin").exists()):
            raise InputError("not a root filesystem (no bin/ inside)", file=host, field="--host")
        if os.geteuid() != 0:
            raise InputError("--connection chroot needs root (chroot(2)); run as root or with sudo",
                             field="--connection")
        return ["--connection=chroot", f"--hosts={root.resolve()}"]
    return [f"--connection={connection}", f"--hosts={host}"]


def run_suite(catalog: Catalog, image_name: str, *, connection: str, host: str | None, suite: str = "static",
              select: str = "all", junit: Path | None = None, json_out: Path | None = None,
              expect_version: str | None = None, skus: str = "auto", sudo: bool = False,
              progress: Callable[[str], None] | None = None, env: dict[str, str] | None = None,
              settings: dict[str, Any] | None = None) -> VerifyResult:
    """Verify ``image_name`` on a host; returns per-check results (``.ok`` when nothing failed).

    ``select``: ``all``, ``pre-generalize`` (everything but hygiene), ``hygiene`` (only after generalize) or a
    comma list of check groups. ``sudo`` runs the host's commands through sudo (SSH as a normal user).
    ``settings``: the role settings (``builder.stack.settings``; default: this checkout's roles).
    Raises InputError on bad input and OperationError when pytest itself breaks.
    """
    if suite not in SUITES:
        raise InputError(f"unknown suite '{suite}' (use {', '.join(SUITES)})", field="--suite")
    target = check_target(connection, host)
    marks, keywords = marker_expression(select)
    expectations = build_expectations(catalog, image_name, sku=skus, expect_version=expect_version, settings=settings)
    dirs = [SUITE_DIR / s for s in (("static", "hardware") if suite == "all" else (suite,))]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="builder-verify-") as tmp:
        work = Path(tmp)
        (work / "expectations.json").write_text(json.dumps(expectations, indent=2), encoding="utf-8")
        (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        report = work / "report.jsonl"
        args = [sys.executable, "-m", "pytest", *map(str, dirs), "-c", str(work / "pytest.ini"),
                "--rootdir", str(SUITE_DIR), "--confcutdir", str(SUITE_DIR), "-p", "no:cacheprovider",
                "-p", "no:terminal", "-o", "junit_family=xunit1", "-o", "junit_suite_name=builder-verify",
                f"--expectations={work / 'expectations.json'}", f"--verify-report={report}", *target]
        if sudo:
            args.append("--sudo")
        if marks:
            args += ["-m", marks]
        if keywords:
            args += ["-k", keywords]
        if junit:
            junit.parent.mkdir(parents=True, exist_ok=True)
            args.append(f"--junitxml={junit.resolve()}")
        log_lines: list[str] = []
        full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=full_env) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log_lines.append(line)
                if progress:
                    progress(line.rstrip("\n"))
        code = proc.returncode
        checks = [CheckResult(**json.loads(line)) for line in report.read_text().splitlines()] \
            if report.exists() else []
    log_text = "".join(log_lines)
    if code == 5 or (code == 0 and not checks):
        raise InputError(f"no checks selected for suite '{suite}' with --select {select}", field="--select")
    if code not in (0, 1):
        log_file = Path(tempfile.mkstemp(prefix="builder-verify-", suffix=".log")[1])
        log_file.write_text(log_text, encoding="utf-8")
        tail = "\n".join(log_text.strip().splitlines()[-5:])
        raise OperationError(f"verification could not run (pytest exit {code}):\n{tail}", log_file)
    result = VerifyResult(image=image_name, suite=suite, select=select, connection=connection, host=host,
                          checks=checks, duration_s=time.monotonic() - started,
                          junit=str(junit) if junit else None)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    return result
