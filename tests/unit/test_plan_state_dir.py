"""`builder plan` honours `--state-dir` in its text and its JSON output alike (issue 16)."""

from __future__ import annotations

import datetime as dt
import json

from builder.registry import LocalRegistry
from builder.versioning import day_prefix

IMAGE = "ndh100-train"


def test_text_and_json_name_the_given_state_dir(run_cli, tmp_path):
    state = tmp_path / "elsewhere"
    today = day_prefix(dt.datetime.now(dt.UTC).date())
    LocalRegistry(state).record(IMAGE, f"{today}.4", {"id": "x"})
    text = run_cli("--state-dir", str(state), "plan", IMAGE)
    assert text.code == 0, text.stderr
    as_json = run_cli("--state-dir", str(state), "plan", IMAGE, "--json")
    assert as_json.code == 0, as_json.stderr
    plan = json.loads(as_json.stdout)
    assert plan["next_version"] == f"{today}.5" and f"{today}.5" in text.stdout
    assert plan["build"]["artifacts"].endswith(f"under {state}/builds/<id>/")
    assert f"under {state}/builds/<id>/" in text.stdout.replace("\n", "")
    assert ".builder/builds" not in text.stdout + as_json.stdout
