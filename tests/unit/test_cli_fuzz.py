"""Fuzz the CLI's argument handling (issue 18, "Done when"): random argument vectors for each offline command,
through click's ``CliRunner``, never end in a traceback: exit 0, 1 or 2, and any exception is ``SystemExit``.

Fixed budget (``max_examples``), ``derandomize=True``: the same vectors on every run, a few seconds in all.
Paths always point into a temporary folder; ``docs`` always gets ``--output`` there or ``--check`` (so nothing is
written into the repository); ``--feed stand-in`` is left out (it builds the stand-in feed, minutes).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder import cli
from tests.conftest import REPO

IMAGES = REPO / "images"
SCRATCH = Path(tempfile.mkdtemp(prefix="builder-cli-fuzz-"))
NAMES = ["cpu-infer", "ndh100-train", "nvidia-base", "ndh100-train-layered", "nope", "NDH100-TRAIN", ""]
HOSTILE = [
    "-",
    "--",
    "--help",
    "-h",
    "$(id)",
    "{{ lookup('pipe','id') }}",
    "${x}",
    "%{y}",
    "'\"",
    "../../etc",
    "nan",
    "inf",
    "-1",
    "0",
    "99999999999999999999",
    "a" * 300,
    "ñ\u202e\u0663",
    "\x1b[2J",
    "a\nb",
    " ",
]
PATHS = [
    str(SCRATCH / "out"),
    str(SCRATCH / "nested" / "deeper"),
    str(SCRATCH / "file.txt"),
    "/proc/nope/x",
    str(SCRATCH),
]

COMMANDS: dict[str, list[str]] = {
    "list": ["--all", "--json"],
    "show": ["--explain", "--json"],
    "validate": ["--all", "--json", "--strict"],
    "plan": ["--target", "--json"],
    "matrix": ["--changed-since", "--images"],
    "render": ["--target", "--out", "--feed", "--os", "--json"],
    "reference": ["--version", "--format", "--vm-size", "--spot", "--subscription"],
    "docs": ["--check"],
}
VALUES = [
    "local",
    "azure",
    "gcp",
    "upstream",
    "http://mirror.local/base",
    "ftp://x",
    "debian12",
    "centos7",
    "cli",
    "terraform",
    "bicep",
    "arm",
    "id",
    "batch",
    "cyclecloud",
    "yaml",
    "latest",
    "2026.1129.0",
    "1.0.0\n",
    "HEAD",
    "HEAD~1",
    "--output=F",
    "Standard_F32s_v2",
    "Standard_ND96isr_H100_v5",
    "cpu-infer,nope",
    ",",
]


def _token(command: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NAMES),
        st.sampled_from(COMMANDS[command]),
        st.sampled_from(VALUES),
        st.sampled_from(HOSTILE),
        st.sampled_from(PATHS),
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    )


@st.composite
def argv(draw) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    args = draw(st.lists(_token(command), max_size=6))
    if command == "docs" and "--check" not in args:
        args += ["--output", str(SCRATCH / "docs" / "images.md")]
    if command == "render" and "--feed" in args:
        i = args.index("--feed")
        if i + 1 < len(args) and args[i + 1] == "stand-in":
            args[i + 1] = "upstream"
    head = draw(
        st.sampled_from(
            [
                [],
                ["--catalog", str(IMAGES)],
                ["--state-dir", str(SCRATCH / "file.txt")],
                ["--catalog", str(SCRATCH / "missing")],
            ]
        )
    )
    return [*head, command, *args]


@pytest.fixture(scope="module", autouse=True)
def scratch():
    (SCRATCH / "file.txt").write_text("a file where a folder is expected\n")
    yield SCRATCH


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(args=argv())
def test_no_argument_vector_ends_in_a_traceback(args):
    env = {
        "BUILDER_STATE": str(SCRATCH / "state"),
        "AZURE_SUBSCRIPTION_ID": "",
        "BUILDER_CATALOG": str(IMAGES),
        "COLUMNS": "120",
    }
    result = CliRunner().invoke(cli.app, args, env=env, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output[-500:])
    assert "Traceback" not in result.output, (args, result.output[-2000:])
