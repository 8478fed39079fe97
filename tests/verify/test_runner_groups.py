"""Every check module of the shipped suites can be selected by its group (``--select GROUP``)."""

from __future__ import annotations

from builder.verify.runner import HARDWARE_GROUPS, SELECTS, STATIC_GROUPS, SUITE_DIR, marker_expression


def test_every_suite_module_is_a_selectable_group():
    modules = {(suite, p.stem.removeprefix("test_")) for suite in ("static", "hardware")
               for p in (SUITE_DIR / suite).glob("test_*.py")}
    groups = {("static", g) for g in STATIC_GROUPS} | {("hardware", g) for g in HARDWARE_GROUPS}
    assert modules == groups
    for _, group in modules - {("static", name) for name in SELECTS}:  # hygiene is also a marker selection
        assert marker_expression(group) == (None, f"test_{group}.py")
