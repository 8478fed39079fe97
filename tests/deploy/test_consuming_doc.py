"""docs/consuming.md shows each format exactly as ``builder reference`` prints it."""

from __future__ import annotations

import re
import shlex

from builder.reference import FORMATS
from tests.conftest import REPO

EXAMPLE = re.compile(r"<!-- builder reference (?P<args>[^>]+) -->\n```\w*\n(?P<body>.*?)```", re.S)


def test_every_format_is_shown_and_matches_the_command(run_cli):
    text = (REPO / "docs" / "consuming.md").read_text()
    examples = list(EXAMPLE.finditer(text))
    shown = {shlex.split(m["args"])[shlex.split(m["args"]).index("--format") + 1] for m in examples}
    assert shown == set(FORMATS)
    env = {"AZURE_SUBSCRIPTION_ID": ""}
    for m in examples:
        result = run_cli("reference", *shlex.split(m["args"]), env=env)
        assert result.code == 0, result.stderr
        assert result.stdout == m["body"], f"docs/consuming.md example '{m['args']}' is stale"


def test_the_format_table_names_every_format_and_its_check():
    text = (REPO / "docs" / "consuming.md").read_text()
    rows = dict(re.findall(r"^\| `([\w-]+)` \| [^|]+ \| ([^|]+) \|$", text, re.M))
    assert set(rows) == set(FORMATS)
    assert all(check.strip() for check in rows.values())
