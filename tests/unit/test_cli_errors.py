"""Misuse of the CLI ends in one clear message and exit 2, no traceback, nothing half-written (issue 18,
"Tracebacks" and "render writes files for an image that validate rejects")."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from builder.cli import main
from tests.conftest import REPO

IMAGES = REPO / "images"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_render_into_an_unwritable_path(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "--catalog", str(IMAGES), "render", "cpu-infer", "--out", str(blocker / "out"))
    assert code == 2 and f"'{blocker}' is not a folder" in _one_error(err)
    code, _, err = run(capsys, "--catalog", str(IMAGES), "render", "cpu-infer", "--out", "/proc/1/no-such/out")
    assert code == 2 and "/proc/1/no-such" in _one_error(err)


def test_docs_into_an_unwritable_path(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "--catalog", str(IMAGES), "docs", "--output", str(blocker / "docs" / "images.md"))
    assert code == 2 and str(blocker) in _one_error(err)


def test_state_dir_that_is_a_file(capsys, tmp_path):
    state = tmp_path / "state"
    state.write_text("x")
    for args in (["list"], ["render", "cpu-infer", "--out", str(tmp_path / "o"), "--feed", "stand-in"]):
        code, _, err = run(capsys, "--catalog", str(IMAGES), "--state-dir", str(state), *args)
        assert code == 2 and "--state-dir" in _one_error(err) and "not a folder" in err
    assert not (tmp_path / "o").exists()


def _full_disk(monkeypatch, name: str) -> None:
    """Writing ``name`` fills the disk: part of the text lands, then ENOSPC (as a full filesystem does)."""
    real = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name.startswith(name) or self.name.startswith(f".{name}"):
            real(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)


@pytest.mark.parametrize("victim", ["ansible-vars.yml", "ndh100-train.pkrvars"])
def test_full_disk_during_render_leaves_the_folder_as_it_was(capsys, tmp_path, monkeypatch, victim):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ansible-vars.yml").write_text("old\n")
    _full_disk(monkeypatch, victim)
    code, _, err = run(
        capsys, "--catalog", str(IMAGES), "render", "ndh100-train", "--target", "azure", "--out", str(out)
    )
    assert code == 2 and "No space left on device" in _one_error(err)
    assert sorted(p.name for p in out.iterdir()) == ["ansible-vars.yml"]
    assert (out / "ansible-vars.yml").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left behind


def test_full_disk_during_docs_keeps_the_old_file(capsys, tmp_path, monkeypatch):
    target = tmp_path / "images.md"
    target.write_text("old\n")
    _full_disk(monkeypatch, "images.md")
    code, _, err = run(capsys, "--catalog", str(IMAGES), "docs", "--output", str(target))
    assert code == 2 and "No space left on device" in _one_error(err)
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["images.md"]


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_progress_interval_must_be_a_finite_number(capsys, monkeypatch, value):
    monkeypatch.setenv("BUILDER_PROGRESS_INTERVAL", value)
    code, _, err = run(capsys, "--catalog", str(IMAGES), "list")
    assert code == 2 and "BUILDER_PROGRESS_INTERVAL" in _one_error(err)


def test_changed_since_is_never_a_git_option(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    target = tmp_path / "F"
    code, _, err = run(capsys, "--catalog", str(IMAGES), "matrix", "--changed-since", f"--output={target}")
    assert code == 2 and "--changed-since" in _one_error(err)
    assert not list(tmp_path.iterdir()), "git wrote a file named by --changed-since"


def test_validate_all_with_names_is_refused(capsys):
    code, out, err = run(capsys, "--catalog", str(IMAGES), "validate", "--all", "nope")
    assert code == 2 and "--all" in _one_error(err) and "ok:" not in out


def test_validate_json_reports_an_unknown_image_as_json(capsys):
    code, out, err = run(capsys, "--catalog", str(IMAGES), "validate", "nope", "--json")
    document = json.loads(out)
    assert code == 2 and document["ok"] is False and "unknown image 'nope'" in document["problems"][0]["message"]
    assert not err.strip()


@pytest.fixture
def rejected_catalog(catalog_copy):
    """A catalog ``validate`` rejects: a resource group Azure's naming rules refuse."""
    base = catalog_copy / "base-dsvm.yaml"
    base.write_text(base.read_text().replace("resource_group: rg-ai-images", "resource_group: rg/../x"))
    return catalog_copy


def test_commands_apply_the_rules_validate_applies(capsys, tmp_path, rejected_catalog):
    code, _, err = run(capsys, "--catalog", str(rejected_catalog), "validate", "cpu-infer")
    assert code == 2 and "resource_group" in err
    for args in (
        ["render", "cpu-infer", "--out", str(tmp_path / "out")],
        ["render", "cpu-infer", "--target", "azure", "--out", str(tmp_path / "out")],
        ["reference", "cpu-infer", "--format", "cli"],
    ):
        code, out, err = run(capsys, "--catalog", str(rejected_catalog), *args)
        assert code == 2 and "resource_group" in err and not out, args
    assert not (tmp_path / "out").exists()


def test_ctrl_c_in_a_command_is_130_in_click_standalone_mode_too(monkeypatch):
    """``CliRunner`` (click's standalone mode) gets the same exit codes as the console script."""
    from click.testing import CliRunner

    from builder import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("builder.docs_gen.render_images_md", interrupted)
    result = CliRunner().invoke(cli.app, ["--catalog", str(IMAGES), "docs", "--check"])
    assert result.exit_code == 130 and "interrupted" in result.output
    result = CliRunner().invoke(cli.app, ["--catalog", str(IMAGES), "validate", "--all", "x"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
