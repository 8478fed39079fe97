"""Shared test set-up. Each area keeps its fixtures in ``tests/fixtures/<area>.py`` (loaded as plugins)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (REPO / "tests" / "fixtures").glob("*.py") if p.stem != "__init__"
)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def builder_executable() -> list[str]:
    script = Path(sys.executable).parent / "builder"
    return [str(script)] if script.exists() else [sys.executable, "-m", "builder"]


@pytest.fixture
def run_cli(tmp_path):
    """Run the ``builder`` console script in a subprocess; returns code, stdout, stderr."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> Result:
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "BUILDER_STATE": str(tmp_path / "state"),
                    "COLUMNS": "200", **(env or {})}
        proc = subprocess.run([*builder_executable(), *args], capture_output=True, text=True, cwd=cwd or REPO,
                              env=full_env, timeout=timeout, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def catalog_copy(tmp_path) -> Path:
    """A writable copy of the shipped catalog."""
    dest = tmp_path / "images"
    shutil.copytree(REPO / "images", dest, ignore=shutil.ignore_patterns("packer"))
    return dest


def default_sigint() -> None:
    """``preexec_fn`` for a child a test interrupts: Ctrl-C's default action even when the test run itself was
    started in the background, where the shell sets SIGINT to ignored and Python then installs no
    KeyboardInterrupt handler (its startup keeps an ignored SIGINT ignored)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def is_root() -> bool:
    return os.geteuid() == 0


def have(tool: str) -> bool:
    return shutil.which(tool) is not None or Path(f"/usr/sbin/{tool}").exists()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout
