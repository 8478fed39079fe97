"""The publish benchmark meets its targets (<= 1.5x the slowest region, <= 40 requests)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_publish_benchmark_meets_targets():
    reports = []
    for _attempt in range(2):  # one retry: wall time on a loaded 2-core runner can spike once
        out = subprocess.run([sys.executable, str(REPO / "bench" / "publish.py"), "--json"], capture_output=True,
                             text=True, cwd=REPO, timeout=120, check=False)
        report = json.loads(out.stdout)
        reports.append(report)
        assert report["requests"] <= 40 and report["regions"] == 6
        if report["ok"]:
            assert out.returncode == 0
            return
    pytest.fail(f"benchmark missed its targets twice: {reports}")
