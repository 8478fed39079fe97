"""Layer snapshots: save, restore, longest valid prefix, stale entries, prune (CLI too)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from builder.local.cache import LayerCache


def _tree(path: Path, text: str) -> Path:
    (path / "etc").mkdir(parents=True)
    (path / "etc/layer").write_text(text)
    os.symlink("etc/layer", path / "link")
    return path


def test_save_restore_and_longest_prefix(tmp_path):
    cache = LayerCache(tmp_path / "cache")
    keys = [("base", "k1"), ("gpu", "k2"), ("fabric", "k3"), ("image", "k4")]
    assert cache.longest_prefix(keys) == 0
    cache.save("k1", _tree(tmp_path / "t1", "base"), {"image": "img", "layer": "base"})
    cache.save("k2", _tree(tmp_path / "t2", "gpu"), {"image": "img", "layer": "gpu"})
    cache.save("k4", _tree(tmp_path / "t4", "image"), {"image": "img", "layer": "image"})
    assert cache.longest_prefix(keys) == 2  # k3 missing: k4 is not reachable
    dest = tmp_path / "work" / "rootfs"
    cache.restore("k2", dest)
    assert (dest / "etc/layer").read_text() == "gpu"
    assert os.readlink(dest / "link") == "etc/layer"
    entry = cache.get("k2")
    assert entry.meta["layer"] == "gpu" and entry.meta["size"] > 0
    assert not list((tmp_path / "cache/layers").glob(".*"))  # no partial left behind


def test_half_written_snapshot_is_not_valid(tmp_path):
    cache = LayerCache(tmp_path / "cache")
    partial = tmp_path / "cache/layers/.k1.partial.999999999"
    _tree(partial / "rootfs", "half")
    (tmp_path / "cache/layers/k2/rootfs").mkdir(parents=True)  # no meta.json: incomplete
    assert cache.get("k1") is None and cache.get("k2") is None
    assert cache.partials() == [partial]
    count, _ = cache.prune([])
    assert count == 1 and not partial.exists()


def test_stale_keeps_the_newest_per_image_and_layer(tmp_path):
    cache = LayerCache(tmp_path / "cache")
    cache.save("old", _tree(tmp_path / "a", "1"), {"image": "img", "layer": "image"})
    time.sleep(0.01)
    cache.save("new", _tree(tmp_path / "b", "2"), {"image": "img", "layer": "image"})
    cache.save("other", _tree(tmp_path / "c", "3"), {"image": "img", "layer": "gpu"})
    assert [e.key for e in cache.stale()] == ["old"]
    cache.prune(cache.stale())
    assert sorted(e.key for e in cache.entries()) == ["new", "other"]


def test_cache_cli_ls_and_prune(run_cli, tmp_path):
    cache = LayerCache(tmp_path / "cache")
    cache.save("old", _tree(tmp_path / "a", "1"), {"image": "img", "layer": "image"})
    time.sleep(0.01)
    cache.save("new", _tree(tmp_path / "b", "2"), {"image": "img", "layer": "image"})
    listed = run_cli("cache", "ls", "--cache-dir", str(tmp_path / "cache"), "--json")
    assert listed.code == 0, listed.stderr
    assert [e["key"] for e in json.loads(listed.stdout)] == ["old", "new"]
    table = run_cli("cache", "ls", "--cache-dir", str(tmp_path / "cache"))
    assert "old" in table.stdout and "image" in table.stdout
    dry = run_cli("cache", "prune", "--cache-dir", str(tmp_path / "cache"), "--dry-run")
    assert dry.code == 0 and "would remove img/image old" in dry.stdout
    assert cache.get("old") is not None
    pruned = run_cli("cache", "prune", "--cache-dir", str(tmp_path / "cache"), "--json")
    assert [e["key"] for e in json.loads(pruned.stdout)["removed"]] == ["old"]
    assert cache.get("old") is None and cache.get("new") is not None
    everything = run_cli("cache", "prune", "--all", "--cache-dir", str(tmp_path / "cache"))
    assert everything.code == 0 and cache.entries() == []
