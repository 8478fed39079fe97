"""The inputs digest covers what changes an image and nothing else (issue 17, "Reproducible builds").

Covered: the resolved catalog entry (components, pins, base, build settings, target sizes, gallery, tests), the
facts of its sizes, and every shared input file (``builder.paths.SHARED_INPUTS``). Not covered: documentation
(``description``), how the entry is spelled (``extends`` chains, key order, comments), file order, times, modes,
absolute paths and caches. ``builder matrix --changed-since`` rebuilds exactly the images whose digest changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from builder.catalog.loader import load_catalog
from builder.packer.chain import inputs_digest, shared_inputs_digest
from builder.paths import SHARED_INPUTS
from tests.conftest import REPO, git

IMAGE = "ndh100-train"
INFER = ["nca100-infer", "nch100-infer", "nct4-infer"]  # the images below nvidia-infer


def _copy_inputs(dest: Path) -> Path:
    """The catalog and every shared input of the checkout, copied under ``dest`` (another absolute path)."""
    shutil.copytree(REPO / "images", dest / "images", symlinks=True)
    for prefix in SHARED_INPUTS:
        source = REPO / prefix
        if source.is_dir():
            shutil.copytree(source, dest / prefix, symlinks=True, dirs_exist_ok=True)
        elif source.is_file():
            (dest / prefix).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / prefix)
    return dest


@pytest.fixture
def tree(tmp_path) -> Path:
    return _copy_inputs(tmp_path / "repo")


def _digests(repo: Path) -> dict[str, str]:
    catalog = load_catalog(repo / "images")
    return {i.name: inputs_digest(catalog, i.name, repo) for i in catalog.buildable()}


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(old) == count, (path, old)
    path.write_text(text.replace(old, new))


# ------------------------------------------------------------------ the shared files


def test_a_copy_at_another_path_gives_the_same_digest(tree):
    assert shared_inputs_digest(tree) == shared_inputs_digest(REPO)
    assert _digests(tree) == _digests(REPO)


def test_caches_times_and_modes_do_not_change_the_digest(tree):
    before = shared_inputs_digest(tree)
    defaults = tree / "ansible/roles/common/defaults/main.yml"
    os.utime(defaults, (0, 0))
    defaults.chmod(0o600)
    for junk in ("ansible/library/__pycache__/builder_files.cpython-311.pyc", "ansible/library/builder_files.pyc",
                 "builder/stack/__pycache__/model.cpython-311.pyc", "ansible/roles/common/tasks/main.yml~",
                 "ansible/image.retry", "ansible/roles/common/.main.yml.swp", "builder/data/.DS_Store"):
        (tree / junk).parent.mkdir(parents=True, exist_ok=True)
        (tree / junk).write_bytes(b"cache\n")
    assert shared_inputs_digest(tree) == before


@pytest.mark.parametrize("path", [
    "ansible/roles/common/defaults/main.yml",  # a role default
    "ansible/roles/sku_tuning/tasks/main.yml",  # a role's tasks
    "ansible/image.yml",  # the playbook
    "builder/data/standin-manifest.yaml",  # the stand-in feed
    "images/packer/azure.pkr.hcl",  # the Packer template
    "builder/render.py",  # what turns the catalog into Ansible variables
    "builder/packer/render.py",  # ... and into Packer variables
    "builder/standin.py",  # the stand-in feed's generator
])
def test_every_file_that_changes_the_image_changes_every_digest(tree, path):
    before = _digests(tree)
    with open(tree / path, "a") as handle:
        handle.write("\n# edited\n")
    after = _digests(tree)
    assert all(after[name] != before[name] for name in before), path


def test_a_recorded_feed_file_changes_every_digest(tree):
    [feed, *_] = sorted((tree / "builder/data/feeds").rglob("*.yaml"))
    before = _digests(tree)
    with open(feed, "a") as handle:
        handle.write("\n# edited\n")
    assert all(d != before[n] for n, d in _digests(tree).items())


def test_a_new_role_file_changes_the_digest(tree):
    before = shared_inputs_digest(tree)
    (tree / "ansible/roles/common/files").mkdir(exist_ok=True)
    (tree / "ansible/roles/common/files/new.conf").write_text("x\n")
    assert shared_inputs_digest(tree) != before


def test_moving_content_between_path_and_file_changes_the_digest(tmp_path):
    """Paths and contents are framed: ``a`` holding ``b...`` is not ``ab`` holding ``...``."""
    from builder.hashing import files_digest

    (tmp_path / "x" / "d").mkdir(parents=True)
    (tmp_path / "y" / "d").mkdir(parents=True)
    (tmp_path / "x" / "d" / "a").write_text("bc")
    (tmp_path / "y" / "d" / "ab").write_text("c")
    assert files_digest(tmp_path / "x", ("d/",)) != files_digest(tmp_path / "y", ("d/",))


# ------------------------------------------------------------------ the catalog entry


def test_description_only_edits_keep_every_digest(tree):
    before = _digests(tree)
    for path in (tree / "images").glob("*.yaml"):
        text, count = re.subn(r"^description: (.*)$", r"description: Reworded, \1", path.read_text(), flags=re.M)
        path.write_text("# a comment added\n" + text)
        assert count <= 1
    assert _digests(tree) == before


def test_an_extends_chain_spelled_differently_keeps_the_digest(tree):
    """An abstract image that only passes nvidia-infer on: the resolved images are the same, so is the digest."""
    before = _digests(tree)
    (tree / "images" / "nvidia-infer-alias.yaml").write_text(
        "name: nvidia-infer-alias\nabstract: true\nextends: nvidia-infer\n")
    for name in INFER:
        _edit(tree / "images" / f"{name}.yaml", "extends: nvidia-infer\n", "extends: nvidia-infer-alias\n")
    assert _digests(tree) == before


def test_key_order_in_the_catalog_file_keeps_the_digest(tree):
    path = tree / "images" / f"{IMAGE}.yaml"
    before = _digests(tree)
    lines = path.read_text().splitlines(keepends=True)
    top = [i for i, line in enumerate(lines) if re.match(r"^[a-z_]+:", line)]
    blocks = [lines[a:b] for a, b in zip(top, [*top[1:], len(lines)], strict=True)]
    path.write_text("".join(lines[:top[0]]) + "".join(line for block in reversed(blocks) for line in block))
    assert load_catalog(tree / "images").model(IMAGE) == load_catalog(REPO / "images").model(IMAGE)
    assert _digests(tree) == before


def test_a_pin_changes_the_images_that_carry_it(tree):
    before = _digests(tree)
    _edit(tree / "images" / "nvidia-base.yaml", "version: 4.5.2-4.8.1", "version: 4.5.2-4.9.0")
    after = _digests(tree)
    nvidia = {n for n in before if load_catalog(tree / "images").model(n).kind.value == "gpu-nvidia"}
    assert nvidia and {n for n in before if after[n] != before[n]} == nvidia


def test_target_size_facts_change_only_the_images_on_that_size(tree):
    before = _digests(tree)
    path = tree / "images" / "skus.yaml"
    text = path.read_text()
    start = text.index("  Standard_ND96isr_H100_v5:\n")
    block_end = text.index("local_nvme_disks: 8", start)
    path.write_text(text[:block_end] + "local_nvme_disks: 4" + text[block_end + len("local_nvme_disks: 8"):])
    after = _digests(tree)
    changed = {n for n in before if after[n] != before[n]}
    catalog = load_catalog(tree / "images")
    on_size = {n for n in before if "Standard_ND96isr_H100_v5" in catalog.model(n).target_skus}
    assert IMAGE in changed and changed == on_size


def test_base_and_build_settings_change_the_digest(tree):
    before = _digests(tree)
    path = tree / "images" / f"{IMAGE}.yaml"
    path.write_text(path.read_text() + "build:\n  os_disk_gb: 512\n")
    assert _digests(tree)[IMAGE] != before[IMAGE]


# ------------------------------------------------------------------ builder matrix --changed-since


def _commit(repo: Path, message: str) -> str:
    git("add", "-A", ".", cwd=repo)
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


@pytest.fixture
def repo(tree):
    git("init", "-q", "-b", "main", cwd=tree)
    (tree / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    _commit(tree, "inputs")
    return tree


def _matrix(run_cli, repo: Path, ref: str) -> list[str]:
    result = run_cli("matrix", "--changed-since", ref, cwd=repo)
    assert result.code == 0, result.stderr
    return sorted(row["image"] for row in json.loads(result.stdout)["include"])


def test_matrix_skips_a_description_only_edit(run_cli, repo):
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    _edit(repo / "images" / "nvidia-infer.yaml", "NC sizes.", "NC sizes (reworded).")
    _edit(repo / "images" / f"{IMAGE}.yaml", "description: ", "description: Reworded. ")
    _commit(repo, "docs")
    assert _matrix(run_cli, repo, base) == []


def test_matrix_rebuilds_a_pin_change_and_sees_uncommitted_edits(run_cli, repo):
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    _edit(repo / "images" / "nvidia-infer.yaml", "NC sizes.", "NC sizes (reworded).")
    _commit(repo, "docs")
    path = repo / "images" / "nct4-infer.yaml"
    path.write_text(path.read_text() + "build:\n  os_disk_gb: 512\n")  # not committed
    assert _matrix(run_cli, repo, base) == ["nct4-infer"]
    (repo / "ansible" / "roles" / "common" / "defaults" / "main.yml").write_text("# emptied\n")
    assert _matrix(run_cli, repo, base) == sorted(
        i.name for i in load_catalog(repo / "images").buildable())


def test_matrix_ignores_untracked_caches(run_cli, repo):
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    (repo / "ansible" / "library" / "__pycache__").mkdir(exist_ok=True)
    (repo / "ansible" / "library" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (repo / "ansible" / "image.retry").write_text("host\n")
    assert _matrix(run_cli, repo, base) == []
