"""DCGM quick diagnostic (``dcgmi diag -r 1``) passes on every GPU."""

from __future__ import annotations

import pytest

from builder.verify.parsers import dcgmi


def test_diag_r1(gpus, expect, host, check):
    if "dcgm" not in expect["components"]:
        pytest.skip("image has no dcgm")
    result = host.run("dcgmi diag -r 1 2>&1")
    try:
        tests = dcgmi.parse_diag(result.stdout)
    except ValueError:
        check.that(False, "every diagnostic Pass", f"exit {result.rc}: {result.stdout.strip()[-200:]}")
    failed = [f"{t.name}: {t.result} {t.detail}".strip() for t in tests if not t.passed]
    check.that(not failed and result.rc == 0, "every diagnostic Pass",
               failed or f"{len(tests)} passed (exit {result.rc})")
