"""Tampered inputs fail clearly: a tarball with a wrong checksum, a repository signed with another key and
an unreachable feed each stop the converge with a message naming the task, exit 1, no traceback."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.render import write_render
from builder.rootfs import copy_tree, remove_tree
from builder.standin import ensure_key, repositories, sign_repo

pytestmark = [pytest.mark.slow, pytest.mark.root]
OTHER_KEY = "someone else <other@builder.invalid>"


@pytest.fixture
def scratch_root(converged_rootfs, tmp_path):
    """A copy of the converged cpu-infer tree (common role done) as if no tarball had been fetched yet."""
    root = tmp_path / "rootfs"
    copy_tree(converged_rootfs("cpu-infer"), root)
    shutil.rmtree(root / "var/cache/builder", ignore_errors=True)
    for record in root.glob("opt/*/.builder-sha256"):
        record.unlink()
    yield root
    remove_tree(root)


def feed_copy(feed, dest: Path):
    shutil.copytree(feed.root, dest, symlinks=True)
    old, new = feed.url, f"file://{dest}"
    downloads = {k: {**v, "url": v["url"].replace(old, new)} for k, v in feed.downloads.items()}
    return dataclasses.replace(feed, root=dest, url=new, keyring=dest / "keyring.asc", downloads=downloads)


def converge_cli(run_cli, root: Path, vars_file: Path):
    return run_cli("converge", "--rootfs", str(root), "--vars", str(vars_file), "--tags", "base,gpu,fabric,image")


def test_tarball_with_wrong_checksum(run_cli, ansible_catalog, standin_feed, scratch_root, tmp_path):
    feed = feed_copy(standin_feed, tmp_path / "feed")
    tarball = next(Path(v["url"].removeprefix("file://")) for v in feed.downloads.values()
                   if v["component"] == "node_exporter")
    tarball.write_bytes(tarball.read_bytes() + b"tampered")
    vars_file = write_render(ansible_catalog, "cpu-infer", "local", tmp_path / "r", feed, os_override="debian12")[0]
    result = converge_cli(run_cli, scratch_root, vars_file)
    assert result.code == 1, result.stdout + result.stderr
    assert "Download and verify the tarball of node_exporter" in result.stderr
    assert "checksum" in result.stderr.lower() and "Traceback" not in result.stderr


def test_repository_signed_with_another_key(run_cli, ansible_catalog, standin_feed, scratch_root, tmp_path):
    feed = feed_copy(standin_feed, tmp_path / "feed")
    gnupg = tmp_path / "g"
    ensure_key(gnupg)
    subprocess.run(["gpg", "--homedir", str(gnupg), "--batch", "--passphrase", "", "--quick-gen-key", OTHER_KEY,
                    "ed25519", "sign", "never"], check=True, capture_output=True)
    for repo, suite in repositories(feed.root):
        sign_repo(repo, suite, gnupg, key=OTHER_KEY)
    vars_file = write_render(ansible_catalog, "nca100-infer", "local", tmp_path / "r", feed,
                             os_override="debian12")[0]
    result = converge_cli(run_cli, scratch_root, vars_file)
    assert result.code == 1, result.stdout + result.stderr
    assert "Refresh the package index for feed cuda" in result.stderr
    assert any(w in result.stderr for w in ("NO_PUBKEY", "not signed", "signature")), result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_feed(run_cli, ansible_catalog, scratch_root, tmp_path):
    vars_file = write_render(ansible_catalog, "nca100-infer", "local", tmp_path / "r", "http://127.0.0.1:9/mirror",
                             os_override="debian12")[0]
    result = converge_cli(run_cli, scratch_root, vars_file)
    assert result.code == 1, result.stdout + result.stderr
    assert "Download the signing key of feed cuda" in result.stderr
    assert "127.0.0.1:9" in result.stderr or "refused" in result.stderr.lower()
    assert "Traceback" not in result.stderr
