"""The stand-in feed of a local build: named at a stable path inside the tree, served from this build's own
feed folder through the converge's bind mount (nothing shared on the host between concurrent builds)."""

from __future__ import annotations

from pathlib import Path

import yaml

from builder.converge import _feed_paths
from builder.local.feed import FEED_PATH


def _vars(tmp_path: Path, base: str, downloads: dict[str, str]) -> Path:
    path = tmp_path / "ansible-vars.yml"
    path.write_text(yaml.safe_dump({"builder_image": "x", "package_feed_base": base,
                                    "builder_downloads": {k: {"url": v} for k, v in downloads.items()}}))
    return path


def test_feed_paths_map_the_stable_path_to_this_builds_folder(tmp_path):
    mine, other = tmp_path / "mine/root", tmp_path / "other/root"
    for root in (mine, other):
        (root / "github.com/pyxis").mkdir(parents=True)
    inside = FEED_PATH / "ndh100-train"
    vars_file = _vars(tmp_path, f"file://{inside}", {"pyxis": f"file://{inside}/github.com/pyxis/v1.tar.gz"})
    pairs = _feed_paths(vars_file, {inside: mine})
    assert pairs == [(inside, mine), (inside / "github.com/pyxis", mine / "github.com/pyxis")]
    assert _feed_paths(vars_file, {inside: other})[0] == (inside, other)
    assert _feed_paths(vars_file, {inside: tmp_path / "missing"}) == []  # nothing to mount: nothing bound


def test_unmapped_file_feeds_mount_their_own_path(tmp_path):
    feed = tmp_path / "feed"
    (feed / "tarballs").mkdir(parents=True)
    vars_file = _vars(tmp_path, f"file://{feed}", {"a": f"file://{feed}/tarballs/a.tgz", "b": "https://x/b.tgz"})
    assert _feed_paths(vars_file) == [(feed, feed), (feed / "tarballs", feed / "tarballs")]


def test_stable_standin_names_the_stable_path_and_touches_nothing_on_the_host(ansible_catalog, standin_feed,
                                                                              builder_cache):
    from builder.local.feed import stable_standin

    before = FEED_PATH.exists() and sorted(p.name for p in FEED_PATH.iterdir())
    feed, sources = stable_standin(ansible_catalog, "ndh100-train", builder_cache)
    inside = FEED_PATH / "ndh100-train"
    assert feed.url == f"file://{inside}" and sources == {inside: standin_feed.root.resolve()}
    assert all(d["url"].startswith(f"file://{inside}/") for d in feed.downloads.values())
    assert (FEED_PATH.exists() and sorted(p.name for p in FEED_PATH.iterdir())) == before
