"""One model each for what ``builder diff``, ``builder report`` and ``builder verify`` share: a version change
(``builder.changes``) and a check's outcome (``builder.verify.results.CheckResult``)."""

from __future__ import annotations


def test_diff_and_report_share_one_change_model():
    from builder import changes, diff
    from builder.report import model

    assert diff.Change is model.Change is changes.Change


def test_report_checks_are_verify_results(tmp_path):
    from builder.report.checks import read_junit
    from builder.verify.results import CheckResult

    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuite><testcase classname="static.test_units" name="test_enabled[a-local]">'
                     '<failure message="AssertionError: disabled"/></testcase></testsuite>', encoding="utf-8")
    run = read_junit(junit)
    assert run.checks == [CheckResult("units.enabled[a]", "static", "units", "failed", message="disabled")]


def test_changes_compare_sorted_by_name_with_their_kind():
    from builder.changes import changes_as_dicts, compare_versions

    found = compare_versions({"b": "1", "c": "1", "same": "2"}, {"a": "1", "b": "2", "same": "2"})
    assert changes_as_dicts(found) == [{"name": "a", "kind": "added", "old": None, "new": "1"},
                                       {"name": "b", "kind": "changed", "old": "1", "new": "2"},
                                       {"name": "c", "kind": "removed", "old": "1", "new": None}]
    assert changes_as_dicts(None) is None
