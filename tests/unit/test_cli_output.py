"""``-o/--output json|yaml|table|tsv`` beside ``--json`` on every command that prints data (issue 16): real
commands on the shipped catalog, their outputs compared with each other."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest
import yaml

from builder.cli import main
from builder.output import FORMATS, tsv_cell
from tests.conftest import REPO
from tests.unit.cli_tree import walk

IMAGES = REPO / "images"
# Commands whose output has no format to choose: matrix is a GitHub Actions matrix (JSON), emulator one JSON
# ready line, docs a markdown file it writes.
NO_FORMAT = {"matrix", "emulator", "docs"}


def run(capsys, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--catalog", str(IMAGES), "--state-dir", str(tmp_path / "state"), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def unescape(field: str) -> str:
    """The inverse of a TSV field's escapes (\\\\, \\t, \\n, \\r)."""
    out, chars = [], iter(field)
    for char in chars:
        if char == "\\":
            nxt = next(chars)
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[nxt])
        else:
            out.append(char)
    return "".join(out)


def tsv_rows(text: str) -> list[list[str]]:
    return [[unescape(f) for f in line.split("\t")] for line in text.splitlines()]


def test_every_command_with_json_has_the_output_option():
    """Each command with --json (or whose data it prints) takes -o; report's -o is its page's path: --format."""
    for path, command in walk():
        if isinstance(command, click.Group) or path in NO_FORMAT:
            continue
        options = {opt: p for p in command.params for opt in p.opts}
        flag = "--format" if path == "report" else "-o"
        assert flag in options and options[flag].name == "output_format", path
        assert options[flag].metavar == "[json|yaml|table|tsv]", path
        if path == "verify":  # --json PATH writes a file there
            assert options["--json"].name == "json_out"
        else:
            assert options["--json"].name == "json_synonym", path
    commands = {path for path, c in walk() if not isinstance(c, click.Group)}
    assert commands >= NO_FORMAT  # the exceptions are real commands


def _cases(tmp_path: Path) -> list[list[str]]:
    cache = str(tmp_path / "cache")
    return [["list"], ["list", "--all"], ["show", "cpu-infer"], ["show", "ndh100-train", "--explain"],
            ["validate", "cpu-infer"], ["plan", "ndh100-train"], ["reference", "ndh100-train", "--format", "bicep"],
            ["outdated", "--no-components", "--no-bases"], ["doctor", "-q"], ["builds"], ["cache", "ls",
            "--cache-dir", cache], ["cache", "prune", "--dry-run", "--cache-dir", cache],
            ["render", "cpu-infer", "--out", str(tmp_path / "render")]]


@pytest.mark.parametrize("index", range(13))
def test_json_yaml_and_json_flag_give_the_same_data(capsys, tmp_path, index):
    args = _cases(tmp_path)[index]
    code, flag_out, _ = run(capsys, tmp_path, *args, "--json")
    assert json.loads(flag_out) is not None
    for fmt, load in (("json", json.loads), ("yaml", yaml.safe_load), ("JSON", json.loads)):
        code_fmt, out, _ = run(capsys, tmp_path, *args, "-o", fmt)
        assert code_fmt == code
        assert load(out) == json.loads(flag_out), (args, fmt)
    code_table, table_out, _ = run(capsys, tmp_path, *args, "-o", "table")
    code_default, default_out, _ = run(capsys, tmp_path, *args)
    assert code_table == code_default == code and table_out == default_out  # table is the default view
    code_tsv, _, _ = run(capsys, tmp_path, *args, "-o", "tsv")
    assert code_tsv == code


def test_list_tsv_is_the_tables_rows(capsys, tmp_path):
    _, out, _ = run(capsys, tmp_path, "list", "--all", "--json")
    data = json.loads(out)
    _, tsv, _ = run(capsys, tmp_path, "list", "--all", "-o", "tsv")
    assert tsv_rows(tsv) == [[r["name"] + (" (abstract)" if r["abstract"] else ""), r["os"] or "", r["kind"] or "",
                              r["purpose"] or "", ", ".join(r["target_skus"])] for r in data]
    assert "image" not in tsv.split("\t")[0] and "┃" not in tsv  # no header, no box
    _, table, _ = run(capsys, tmp_path, "list", "--all")
    for row in tsv_rows(tsv):
        assert all(cell in table for cell in row)


def test_doctor_tsv_is_the_tables_rows_only(capsys, tmp_path):
    code, out, _ = run(capsys, tmp_path, "doctor", "-q", "--json")
    checks = json.loads(out)["checks"]
    code_tsv, tsv, _ = run(capsys, tmp_path, "doctor", "-q", "-o", "tsv")
    assert code_tsv == code
    assert tsv_rows(tsv) == [[c["name"], "ok" if c["ok"] else "MISS", c["found"] or "", c["fix"] or ""]
                             for c in checks]  # and not the summary line the table view ends with


def test_tsv_of_a_non_tabular_command_is_one_line_per_item(capsys, tmp_path):
    _, out, _ = run(capsys, tmp_path, "show", "ndh100-train", "--explain", "--json")
    rows = json.loads(out)
    _, tsv, _ = run(capsys, tmp_path, "show", "ndh100-train", "--explain", "-o", "tsv")
    assert tsv_rows(tsv) == [[r["field"], tsv_value(r["value"]), r["file"], str(r["line"])] for r in rows]
    _, tsv, _ = run(capsys, tmp_path, "show", "cpu-infer", "-o", "tsv")
    assert len(tsv.splitlines()) == 1 and tsv.split("\t")[0] == "cpu-infer"


def tsv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def test_tsv_escapes_tabs_and_newlines_in_values(capsys, tmp_path, catalog_copy):
    source = catalog_copy / "cpu-infer.yaml"
    text = source.read_text()
    assert "\ndescription:" in text
    lines = [line if not line.startswith("description:") else 'description: "tab\\there\\nnext \\\\ line"'
             for line in text.splitlines()]
    source.write_text("\n".join(lines) + "\n")
    code = main(["--catalog", str(catalog_copy), "--state-dir", str(tmp_path), "show", "cpu-infer", "-o", "tsv"])
    out, _ = capsys.readouterr()
    assert code == 0 and len(out.splitlines()) == 1
    assert "\ttab\\there\\nnext \\\\ line\t" in out
    code = main(["--catalog", str(catalog_copy), "--state-dir", str(tmp_path), "show", "cpu-infer", "--json"])
    data = json.loads(capsys.readouterr()[0])
    assert tsv_rows(out)[0][list(data).index("description")] == "tab\there\nnext \\ line"
    assert tsv_cell("a\x1b[31mb\x9bc") == "a[31mbc"  # no terminal control sequence either


@pytest.mark.parametrize("args", [["list", "-o", "xml"], ["show", "cpu-infer", "-o", "jsonx"],
                                  ["plan", "cpu-infer", "--output="], ["report", "b1", "--format", "html"],
                                  ["verify", "cpu-infer", "--connection", "local", "-o", "text"],
                                  ["list", "--json", "-o", "yaml"], ["cache", "ls", "-o", "csv"]])
def test_a_bad_output_value_is_one_line_and_exit_2(capsys, tmp_path, args):
    code, out, err = run(capsys, tmp_path, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: --output: "), err


def test_every_format_is_accepted_by_every_command():
    """Each value of -o, in any case, on each command that has the option (as click parses it)."""
    for path, command in walk():
        if isinstance(command, click.Group) or path in NO_FORMAT:
            continue
        param = next(p for p in command.params if p.name == "output_format")
        ctx = click.Context(command, info_name=path)
        for fmt in FORMATS:
            assert param.process_value(ctx, fmt) == fmt
            assert param.process_value(ctx, fmt.upper()) == fmt


def _verify(run_cli, tmp_path: Path, *args: str):
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")  # not root: every static check fails at once
    (fake / "id").chmod(0o755)
    return run_cli("verify", "cpu-infer", "--connection", "local", "--select", "hygiene", "-q", *args,
                   env={"PATH": f"{fake}:{os.environ['PATH']}"})


def _timeless(data):
    if isinstance(data, dict):
        return {k: _timeless(v) for k, v in data.items() if k != "duration_s"}
    if isinstance(data, list):
        return [_timeless(v) for v in data]
    return data


def test_verify_output_and_its_json_path(run_cli, tmp_path):
    """verify: --json - is -o json; -o yaml prints the same results; --json PATH still writes the file."""
    dash = _verify(run_cli, tmp_path, "--json", "-")
    assert dash.code == 1
    expected = _timeless(json.loads(dash.stdout))
    assert expected["checks"] and not expected["ok"]
    as_json = _verify(run_cli, tmp_path, "-o", "json")
    assert as_json.code == 1 and _timeless(json.loads(as_json.stdout)) == expected
    written = tmp_path / "results.json"
    as_yaml = _verify(run_cli, tmp_path, "--json", str(written), "-o", "yaml")
    assert as_yaml.code == 1 and _timeless(yaml.safe_load(as_yaml.stdout)) == expected
    assert _timeless(json.loads(written.read_text())) == expected
    text = _verify(run_cli, tmp_path)
    assert text.code == 1 and text.stdout.startswith("FAIL ")
    both = _verify(run_cli, tmp_path, "--json", "-", "-o", "tsv")
    assert both.code == 2 and len(both.stderr.splitlines()) == 1


def test_versions_tsv_is_the_tables_rows(tmp_path, run_cli):
    """A version in the local gallery emulator (as a local build publishes it): -o tsv, yaml and --json agree."""
    from builder.azure import provenance
    from builder.catalog.loader import load_catalog
    from builder.emulator.vhd import MIB, make_fixed_vhd
    from builder.local.gallery import resolve_target
    from builder.local.publish import number_version, publish_vhd

    catalog, state = load_catalog(IMAGES), tmp_path / "state"
    target = resolve_target(state, env={})
    version = number_version(catalog, "ndh100-train", state, target)
    tags = provenance("c0ffee", "build-1", "a" * 64, "passed", "local:debian12:k1")
    publish_vhd(catalog, "ndh100-train", version, make_fixed_vhd(tmp_path / "a.vhd", 4 * MIB), tags, target)
    env = {"BUILDER_STATE": str(state), "AZURE_SUBSCRIPTION_ID": "", "BUILDER_ARM_ENDPOINT": ""}
    listed = run_cli("versions", "ndh100-train", "--json", env=env)
    assert listed.code == 0, listed.stderr
    [info] = json.loads(listed.stdout)
    as_yaml = run_cli("versions", "ndh100-train", "-o", "yaml", env=env)
    assert yaml.safe_load(as_yaml.stdout) == [info]
    tsv = run_cli("versions", "ndh100-train", "-o", "tsv", env=env)
    [row] = tsv_rows(tsv.stdout)
    assert row[:5] == [version, info["state"], "yes" if info["latest"] else "", ", ".join(info["regions"]),
                       (info["end_of_life_date"] or "")[:10]]
    assert "verification=passed" in row[5].split(" ") and "build_id=build-1" in row[5].split(" ")
