"""Layer snapshots: whole-tree and overlay-diff entries, chains, longest valid prefix, legacy and broken entries,
stale entries, pruning with dependents (CLI too), and (as root) overlay mounts, diffs applied by copying and
snapshots in use by a mounted overlay."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from builder.local.cache import DIFF, LEGACY, TREE, LayerCache
from builder.rootfs import mounts_under
from tests.conftest import is_root

needs_root = pytest.mark.skipif(not is_root(), reason="needs root (overlay mounts, whiteouts, trusted xattrs)")


def _tree(path: Path, text: str) -> Path:
    (path / "etc").mkdir(parents=True)
    (path / "etc/layer").write_text(text)
    os.symlink("etc/layer", path / "link")
    return path


def _diff(path: Path, name: str, text: str) -> Path:
    """An upper directory as a layer leaves it (no whiteouts: those need root)."""
    (path / "etc").mkdir(parents=True)
    (path / "etc" / name).write_text(text)
    return path


def _chain(tmp_path: Path) -> tuple[LayerCache, Path, list[tuple[str, str]]]:
    """base rootfs + diffs k1 (on the base) <- k2 <- k3."""
    cache = LayerCache(tmp_path / "cache")
    base = _tree(tmp_path / "base", "base")
    parent = None
    for n in (1, 2, 3):
        parent = cache.save_diff(f"k{n}", _diff(tmp_path / f"u{n}", f"l{n}", str(n)),
                                 {"image": "img", "layer": f"layer{n}"}, parent, base)
    return cache, base, [("layer1", "k1"), ("layer2", "k2"), ("layer3", "k3"), ("layer4", "k4")]


def test_save_materialize_and_longest_prefix(tmp_path):
    cache = LayerCache(tmp_path / "cache")
    keys = [("base", "k1"), ("gpu", "k2"), ("fabric", "k3"), ("image", "k4")]
    assert cache.longest_prefix(keys) == 0
    cache.save("k1", _tree(tmp_path / "t1", "base"), {"image": "img", "layer": "base"})
    cache.save("k2", _tree(tmp_path / "t2", "gpu"), {"image": "img", "layer": "gpu"})
    cache.save("k4", _tree(tmp_path / "t4", "image"), {"image": "img", "layer": "image"})
    assert cache.longest_prefix(keys) == 2  # k3 missing: k4 is not reachable
    dest = tmp_path / "work" / "rootfs"
    cache.materialize(cache.chain(keys), tmp_path / "no-base", dest)  # a whole-tree snapshot needs no base
    assert (dest / "etc/layer").read_text() == "gpu"
    assert os.readlink(dest / "link") == "etc/layer"
    entry = cache.get("k2")
    assert entry.meta["layer"] == "gpu" and entry.meta["size"] > 0 and entry.format == TREE
    assert not list((tmp_path / "cache/layers").glob(".*"))  # no partial left behind


def test_diff_snapshots_form_a_chain_down_to_the_base(tmp_path):
    cache, base, keys = _chain(tmp_path)
    assert not (tmp_path / "u2").exists()  # saving a diff moves the upper directory: no copy
    chain = cache.chain(keys)
    assert [e.key for e in chain] == ["k1", "k2", "k3"] and cache.longest_prefix(keys) == 3
    assert all(e.format == DIFF for e in chain)
    assert chain[1].meta["parent"] == "k1" and chain[1].meta["parent_id"] == chain[0].meta["id"]
    assert chain[0].meta["parent"] is None and chain[0].meta["base_rootfs"] == str(base)
    assert cache.lowers(chain, base) == [chain[2].data, chain[1].data, chain[0].data, base]
    assert cache.lowers(chain[:1], base) == [chain[0].data, base]
    dest = tmp_path / "tree"
    cache.materialize(chain, base, dest)
    assert sorted(p.name for p in (dest / "etc").iterdir()) == ["l1", "l2", "l3", "layer"]


def test_a_tree_snapshot_ends_the_chain(tmp_path):
    cache, base, keys = _chain(tmp_path)
    cache.save("k4", _tree(tmp_path / "t4", "whole"), {"image": "img", "layer": "layer4", "parent": "k3"})
    chain = cache.chain(keys)
    assert len(chain) == 4 and chain[3].format == TREE
    assert cache.lowers(chain, base) == [chain[3].data]  # a whole tree needs nothing below it
    top = cache.save_diff("k5", _diff(tmp_path / "u5", "l5", "5"), {"image": "img", "layer": "layer5"}, chain[3],
                          base)
    assert cache.lowers([*chain, top], base) == [top.data, chain[3].data]


def test_replacing_or_losing_a_parent_breaks_its_children(tmp_path):
    cache, base, keys = _chain(tmp_path)
    cache.save_diff("k1", _diff(tmp_path / "again", "l1", "new"), {"image": "img", "layer": "layer1"}, None, base)
    assert cache.longest_prefix(keys) == 1  # k2 was made on the old k1 (its parent_id no longer matches)
    assert [e.key for e in cache.broken()] == ["k2", "k3"]
    assert {"k2", "k3"} <= {e.key for e in cache.stale()}
    os.rename(base, tmp_path / "base-gone")
    assert cache.longest_prefix(keys) == 0  # the base the first diff stands on is gone


def test_legacy_snapshots_are_listed_never_used_and_stale(tmp_path):
    cache = LayerCache(tmp_path / "cache")
    old = tmp_path / "cache/layers/old1"
    _tree(old / "rootfs", "whole")
    (old / "meta.json").write_text(json.dumps({"image": "img", "layer": "base", "key": "old1", "created": 1,
                                               "last_used": time.time(), "size": 10}))
    assert cache.get("old1") is None and cache.longest_prefix([("base", "old1")]) == 0
    [entry] = cache.entries()
    assert entry.format == LEGACY and [e.key for e in cache.stale()] == ["old1"]
    cache.prune(cache.stale())
    assert not old.exists()


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


def test_pruning_a_parent_prunes_the_diffs_on_it(tmp_path):
    cache, _, keys = _chain(tmp_path)
    assert [e.key for e in cache.dependents([cache.get("k2")])] == ["k3"]
    count, _ = cache.prune([cache.get("k2")])
    assert count == 2 and [e.key for e in cache.entries()] == ["k1"]
    assert cache.longest_prefix(keys) == 1


def test_cache_cli_ls_and_prune(run_cli, tmp_path):
    cache = LayerCache(tmp_path / "cache")
    cache.save("old", _tree(tmp_path / "a", "1"), {"image": "img", "layer": "image"})
    time.sleep(0.01)
    cache.save("new", _tree(tmp_path / "b", "2"), {"image": "img", "layer": "image"})
    listed = run_cli("cache", "ls", "--cache-dir", str(tmp_path / "cache"), "--json")
    assert listed.code == 0, listed.stderr
    assert [(e["key"], e["format"]) for e in json.loads(listed.stdout)] == [("old", TREE), ("new", TREE)]
    table = run_cli("cache", "ls", "--cache-dir", str(tmp_path / "cache"))
    assert "old" in table.stdout and "image" in table.stdout and "tree" in table.stdout
    dry = run_cli("cache", "prune", "--cache-dir", str(tmp_path / "cache"), "--dry-run")
    assert dry.code == 0 and "would remove img/image old" in dry.stdout
    assert cache.get("old") is not None
    pruned = run_cli("cache", "prune", "--cache-dir", str(tmp_path / "cache"), "--json")
    assert [e["key"] for e in json.loads(pruned.stdout)["removed"]] == ["old"]
    assert cache.get("old") is None and cache.get("new") is not None
    everything = run_cli("cache", "prune", "--all", "--cache-dir", str(tmp_path / "cache"))
    assert everything.code == 0 and cache.entries() == []


def test_cache_cli_prune_names_the_diffs_that_go_with_a_parent(run_cli, tmp_path):
    _chain(tmp_path)
    dry = run_cli("cache", "prune", "--older-than", "0", "--cache-dir", str(tmp_path / "cache"), "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "would remove img/layer1 k1" in dry.stdout and "img/layer3 k3" in dry.stdout
    pruned = run_cli("cache", "prune", "--image", "img", "--all", "--cache-dir", str(tmp_path / "cache"), "--json")
    assert sorted(e["key"] for e in json.loads(pruned.stdout)["removed"]) == ["k1", "k2", "k3"]
    listed = run_cli("cache", "ls", "--cache-dir", str(tmp_path / "cache"))
    assert "no layer snapshots" in listed.stdout


# -- as root: real overlays -------------------------------------------------------------------------------

def _mount(lowers: list[Path], upper: Path, work: Path, target: Path) -> None:
    from builder.local.overlay import mount

    mount(lowers, upper, work, target)


def _listing(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its type, mode, owner, link target or content, and user xattrs (not link
    counts: an overlay shows a lower file's own, even where the merged view has fewer names for it)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            if path.is_symlink():
                what = ("link", os.readlink(path))
            elif path.is_file():
                what = ("file", path.read_bytes())
            else:
                what = ("dir" if path.is_dir() else "other",)
            attrs = tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False))
                                 for n in os.listxattr(path, follow_symlinks=False) if n.startswith("user.")))
            found[str(path.relative_to(root))] = (*what, st.st_mode, st.st_uid, st.st_gid, attrs)
    return found


@needs_root
def test_a_diff_applied_by_copying_matches_the_overlay(tmp_path):
    """Every kind of change a layer makes: new, changed and deleted files, a deleted folder, a folder deleted and
    made again (opaque), a folder replaced by a file and back, mode, owner, xattr and hard link changes."""
    from builder.local.overlay import apply_diff, is_whiteout

    lower = tmp_path / "lower"
    for folder in ("keep", "gone", "again", "becomes_file", "etc"):
        (lower / folder).mkdir(parents=True)
    (lower / "keep/a").write_text("a")
    (lower / "gone/x").write_text("x")
    (lower / "again/old").write_text("old")
    (lower / "becomes_file/y").write_text("y")
    (lower / "etc/conf").write_text("v1")
    (lower / "was_file").write_text("f")
    (lower / "mode").write_text("m")
    os.link(lower / "keep/a", lower / "keep/a-link")
    merged = tmp_path / "merged"
    _mount([lower], tmp_path / "upper", tmp_path / "work", merged)
    try:
        (merged / "keep/new").write_text("new")
        (merged / "etc/conf").write_text("v2")
        (merged / "keep/a").unlink()
        subprocess.run(["rm", "-rf", str(merged / "gone")], check=True)
        subprocess.run(["rm", "-rf", str(merged / "again")], check=True)
        (merged / "again").mkdir()
        (merged / "again/new").write_text("new")
        subprocess.run(["rm", "-rf", str(merged / "becomes_file")], check=True)
        (merged / "becomes_file").write_text("now a file")
        (merged / "was_file").unlink()
        (merged / "was_file").mkdir()
        (merged / "was_file/inner").write_text("i")
        os.chmod(merged / "mode", 0o4750)
        os.chown(merged / "mode", 1000, 1000)
        os.setxattr(merged / "mode", "user.builder", b"1")
        os.symlink("keep/new", merged / "link")
        os.link(merged / "keep/new", merged / "keep/new-link")
        expected = _listing(merged)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    upper = tmp_path / "upper"
    assert is_whiteout(os.lstat(upper / "gone")) and os.getxattr(upper / "again", "trusted.overlay.opaque") == b"y"
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(lower), str(copy)], check=True)
    apply_diff(upper, copy)
    assert _listing(copy) == expected
    assert os.stat(copy / "keep/new").st_ino == os.stat(copy / "keep/new-link").st_ino  # the new hard link
    assert not any("trusted.overlay" in n for p in copy.rglob("*") for n in os.listxattr(p, follow_symlinks=False))


@needs_root
def test_snapshots_a_mounted_overlay_uses_are_never_pruned_or_replaced(tmp_path):
    cache, base, keys = _chain(tmp_path)
    chain = cache.chain(keys)
    merged = tmp_path / "merged"
    _mount(cache.lowers(chain[:2], base), tmp_path / "upper", tmp_path / "work", merged)
    try:
        assert cache.in_use(chain[1]) == [str(merged)] and cache.in_use(chain[2]) == []
        remove, kept = cache.plan_prune([chain[0]])
        assert [e.key for e in remove] == ["k3"] and [e.key for e in kept] == ["k1", "k2"]
        cache.prune([chain[0]])
        assert cache.get("k1") is not None and cache.get("k3") is None
        again = cache.save_diff("k2", _diff(tmp_path / "u2b", "l2", "other"), {}, chain[0], base)
        assert again.meta["id"] == chain[1].meta["id"]  # kept: another build has it mounted
        assert (merged / "etc/l2").read_text() == "2"
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert mounts_under(tmp_path) == []
