"""Every command's --help ends with Examples: of commands that parse, and no summary is cut (issue 16)."""

from __future__ import annotations

import inspect
import re
import shlex
import warnings

import click
import pytest

from builder.cli import app, main
from tests.conftest import REPO
from tests.unit.cli_tree import walk

IMAGES = REPO / "images"
# Examples run for real here (read-only, offline); the others are parsed.
RUN = {"list", "show", "validate", "plan", "reference", "builds"}


ALL = [("", app), *walk()]


def help_of(capsys, path: str) -> str:
    code = main([*path.split(), "--help"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def sentence(help_text: str) -> str:
    """The first sentence of a help text's first paragraph, whitespace normalised."""
    paragraph = " ".join(inspect.cleandoc(help_text).split("\n\n")[0].split())
    match = re.search(r"\.\s", paragraph + " ")
    return paragraph[:match.start() + 1] if match else paragraph


def examples(out: str) -> list[str]:
    lines = out.rstrip("\n").splitlines()
    assert "  Examples:" in lines, out
    after = lines[lines.index("  Examples:") + 1:]
    assert after and all(line.startswith("    builder ") for line in after), after  # the section ends the help
    return [line.strip() for line in after]


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=lambda p: p or "builder")
def test_help_ends_with_examples_and_nothing_is_cut(capsys, monkeypatch, path):
    for columns in ("80", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        out = help_of(capsys, path)
        assert "…" not in out
        assert examples(out)


@pytest.mark.parametrize("group_path", ["", "cache"])
def test_listing_has_every_summary_whole(capsys, monkeypatch, group_path):
    """`builder --help` (and a subgroup's) lists each command's first help sentence whole, at any width."""
    group = dict(ALL)[group_path]
    for columns in ("60", "80", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        out = help_of(capsys, group_path)
        listing = " ".join(out.split("Commands:")[1].split("Examples:")[0].split())
        for name, command in group.commands.items():
            summary = sentence(command.help or "")
            assert summary and f"{name} {summary}" in listing, (name, summary)
        assert "..." not in listing.replace("/...,", "")  # one summary has a literal "/..." of its own


def _parse(args: list[str]) -> click.Context:
    """Parse a command line as `builder` would, without running it (options' own checks included)."""
    ctx = app.make_context("builder", list(args))
    command: click.Command = app
    while isinstance(command, click.Group):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*ctx.protected_args, *ctx.args]
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


def _example_args(example: str) -> list[str]:
    words = shlex.split(example)
    for cut in ("|", ">"):
        if cut in words:
            words = words[:words.index(cut)]
    assert words[0] == "builder"
    return words[1:]


def test_every_example_parses_and_names_catalog_images(capsys, tmp_path, monkeypatch):
    from builder.catalog.loader import load_catalog

    names = set(load_catalog(IMAGES).images)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rootfs").mkdir()  # converge's examples: an existing tree and vars file
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "ansible-vars.yml").write_text("{}\n")
    (tmp_path / "my-images").mkdir()
    seen = 0
    for path, _ in ALL:
        for example in examples(help_of(capsys, path)):
            args = _example_args(example)
            ctx = _parse(args)
            assert ctx.command_path.startswith(f"builder {path}".strip()), (path, example)  # its own command
            for key in ("image", "images"):
                value = ctx.params.get(key)
                for image in ([value] if isinstance(value, str) else value or []):
                    assert image in names, (example, image)
            if ctx.params.get("only"):  # matrix --images
                assert set(ctx.params["only"].split(",")) <= names
            seen += 1
    assert seen >= 2 * len(ALL) - 10


def test_read_only_examples_run(capsys, tmp_path):
    for path, _ in ALL:
        if path not in RUN:
            continue
        for example in examples(help_of(capsys, path)):
            args = _example_args(example)
            code = main(["--catalog", str(IMAGES), "--state-dir", str(tmp_path), *args])
            out, err = capsys.readouterr()
            assert code == 0 and (out or path == "builds"), (example, err)  # no builds in a new state folder


def test_group_summary_is_its_first_sentence():
    assert sentence("Check it.  Then more. Even more.") == "Check it."
    assert sentence("Validate (driver/CUDA/...,  SKUs).\n\nMore") == "Validate (driver/CUDA/..., SKUs)."


def test_examples_cover_every_command():
    from builder.examples import EXAMPLES

    assert set(EXAMPLES) == {p for p, _ in ALL}  # none for a command that is gone
