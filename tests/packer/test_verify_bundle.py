"""The verification bundle the Azure build uploads runs on the build VM from an installed copy of the package,
with no ansible/ beside it: what the expectations need travels in the bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.packer.render import VERIFY_SCRIPT, write_verify_bundle
from builder.stack import settings

REPO = Path(__file__).resolve().parent.parent.parent


def _bundle_builder(bundle: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``builder`` as the build VM runs it: the bundle's copy of the package (no ansible/ next to it)."""
    env = {**os.environ, "PYTHONPATH": str(bundle / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "builder", "--catalog", str(bundle / "images"), "--state-dir",
                           str(cwd / "state"), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600, check=False)


def test_bundle_carries_the_role_settings_and_the_script_passes_them(shipped_catalog, tmp_path):
    bundle = write_verify_bundle(shipped_catalog, tmp_path / "bundle")
    recorded = json.loads((bundle / settings.FILE_NAME).read_text())
    assert recorded == settings.from_roles() and recorded["limits"] and recorded["sysctl"]
    assert not (bundle / "src" / "ansible").exists()
    script = (bundle / VERIFY_SCRIPT).read_text()
    assert '--role-settings "$DIR/role-settings.json"' in script


@pytest.mark.slow
@pytest.mark.root
def test_limits_and_sysctl_checks_run_from_the_bundle_layout(shipped_catalog, debian_base, tmp_path):
    """Run from the bundle as verify-on-vm.sh does (over chroot here): the limits and sysctl checks run (they fail
    on a bare Debian base, which sets none) instead of skipping; without the bundle's settings file the run
    stops with a clear error rather than passing with those checks skipped."""
    bundle = write_verify_bundle(shipped_catalog, tmp_path / "bundle")
    common = ["verify", "ndh100-train", "--connection", "chroot", "--host", str(debian_base), "--select", "hpc",
              "--json", "-", "--quiet"]
    run = _bundle_builder(bundle, tmp_path, *common, "--role-settings", str(bundle / settings.FILE_NAME))
    assert run.returncode == 1, run.stderr[-2000:]
    outcomes = {c["name"]: c["outcome"] for c in json.loads(run.stdout)["checks"]}
    assert outcomes["hpc.limits"] == "failed" and outcomes["hpc.sysctl"] == "failed", outcomes
    missing = _bundle_builder(bundle, tmp_path, *common)
    assert missing.returncode == 2 and "role defaults not found" in missing.stderr, missing.stderr[-2000:]
