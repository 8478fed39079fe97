"""Small CLI fixes: the converge help lists every playbook tag, publish says when it leaves the git-commit tag out,
and ``outdated --feed stand-in`` finds the stand-in feed where the other commands put it (BUILDER_CACHE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import main
from builder.stack.layers import TAGS
from tests.conftest import REPO


def test_converge_help_lists_every_playbook_tag(capsys):
    assert main(["converge", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())  # undo click's wrapping
    missing = [tag for tag in TAGS if tag not in help_text]
    assert not missing, f"converge --tags help omits {missing}"
    assert ",".join(TAGS) in help_text


def test_publish_warns_when_it_leaves_the_git_commit_tag_out(capsys, monkeypatch, tmp_path):
    from builder.commands.publish import _git_commit

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no checkout above tmp_path either
    assert _git_commit() is None
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--git-commit" in err and "tag" in err, err


def test_publish_inside_a_checkout_is_silent(capsys, monkeypatch):
    from builder.commands.publish import _git_commit

    monkeypatch.chdir(REPO)
    assert _git_commit()
    assert capsys.readouterr().err == ""


class _Stop(Exception):
    pass


def _stand_in_cache_dir(monkeypatch, **kwargs) -> Path:
    """The cache folder ``check_components`` hands the stand-in feed builder (stopped there)."""
    import builder.standin
    from builder.catalog.loader import load_catalog
    from builder.outdated import Report, check_components

    seen: list[Path] = []

    def ensure_feed(catalog, cache_dir, *args, **kw):
        seen.append(Path(cache_dir))
        raise _Stop

    monkeypatch.setattr(builder.standin, "ensure_feed", ensure_feed)
    catalog = load_catalog(REPO / "images")
    with pytest.raises(_Stop):
        check_components(catalog, catalog.model("cpu-infer"), "stand-in", Report(), fetch=lambda url: {}, **kwargs)
    return seen[0]


def test_outdated_stand_in_feed_honours_builder_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BUILDER_CACHE", str(tmp_path / "cache"))
    assert _stand_in_cache_dir(monkeypatch) == tmp_path / "cache"


def test_outdated_stand_in_feed_takes_the_cache_option_first(monkeypatch, tmp_path):
    monkeypatch.setenv("BUILDER_CACHE", str(tmp_path / "env"))
    assert _stand_in_cache_dir(monkeypatch, cache_dir=tmp_path / "option") == tmp_path / "option"


def test_outdated_stand_in_feed_defaults_to_the_default_cache(monkeypatch):
    from builder.paths import DEFAULT_CACHE

    monkeypatch.delenv("BUILDER_CACHE", raising=False)
    assert _stand_in_cache_dir(monkeypatch) == DEFAULT_CACHE


def test_outdated_command_takes_cache_dir_like_build(monkeypatch, tmp_path, capsys):
    """``builder outdated --feed stand-in --cache-dir DIR`` (or BUILDER_CACHE) reads the feed where build put it."""
    import builder.outdated

    seen: list[Path | None] = []

    def check_components(catalog, image, feed, report, fetch=None, cache=None, cache_dir=None):
        seen.append(cache_dir)

    monkeypatch.setattr(builder.outdated, "check_components", check_components)
    args = ["--catalog", str(REPO / "images"), "outdated", "cpu-infer", "--feed", "stand-in", "--no-bases"]
    assert main([*args, "--cache-dir", str(tmp_path / "opt")]) == 0
    monkeypatch.setenv("BUILDER_CACHE", str(tmp_path / "env"))
    assert main(args) == 0
    assert seen == [tmp_path / "opt", tmp_path / "env"]


def test_patch_checks_the_stand_in_feed_in_its_own_cache_dir(monkeypatch, tmp_path):
    import builder.outdated
    from builder.catalog.loader import load_catalog
    from builder.commands.patch import find_outdated

    seen: list[Path | None] = []
    monkeypatch.setattr(builder.outdated, "check_components",
                        lambda *a, cache_dir=None, **k: seen.append(cache_dir))
    monkeypatch.setattr(builder.outdated, "check_bases", lambda *a, **k: None)
    find_outdated(load_catalog(REPO / "images"), ["cpu-infer"], "stand-in", None, cache_dir=tmp_path)
    assert seen == [tmp_path]
