"""Fast start: loading the CLI (every command module) imports no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("azure", "ansible", "pydantic", "rich", "testinfra", "hcl2", "cryptography")


def test_cli_import_pulls_no_heavy_library():
    code = ("import sys, json, builder.cli; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert json.loads(out.stdout) == []
