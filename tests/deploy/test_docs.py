"""``builder docs``: generated from the catalog, deterministic, and ``--check`` catches staleness."""

from __future__ import annotations

import shutil

from builder.catalog.loader import load_catalog
from builder.docs_gen import render_images_md
from tests.conftest import REPO


def test_committed_images_md_is_current(run_cli):
    result = run_cli("docs", "--check")
    assert result.code == 0, result.stderr


def test_every_image_component_version_and_sku_is_documented():
    catalog = load_catalog(REPO / "images")
    text = render_images_md(catalog)
    assert text == render_images_md(load_catalog(REPO / "images"))  # deterministic
    for entry in catalog.buildable():
        model = entry.model
        section = text.split(f"\n## {model.name}\n", 1)[1].split("\n## ", 1)[0]
        for comp, spec in model.components.model_dump(exclude_none=True).items():
            assert f"| {comp} | {spec['version']} |" in section, (model.name, comp)
        for sku in model.target_skus:
            assert f"| {sku} | {catalog.skus[sku].vcpus} |" in section
    for entry in catalog.images.values():
        if entry.abstract:
            assert f"\n## {entry.name}\n" not in text


def test_check_fails_when_stale_and_write_fixes_it(run_cli, catalog_copy):
    docs = catalog_copy.parent / "docs" / "images.md"
    docs.parent.mkdir()
    shutil.copy(REPO / "docs" / "images.md", docs)
    assert run_cli("--catalog", str(catalog_copy), "docs", "--check").code == 0
    nccl = catalog_copy / "nvidia-train.yaml"  # where ndh100-train's NCCL pin is written
    old = load_catalog(catalog_copy).model("ndh100-train").components.nccl.version
    new = old.replace(old.split(".")[1], str(int(old.split(".")[1]) + 1), 1)
    nccl.write_text(nccl.read_text().replace(old, new))
    before = docs.read_text()
    stale = run_cli("--catalog", str(catalog_copy), "docs", "--check")
    assert stale.code == 1 and "stale" in stale.stderr
    assert docs.read_text() == before  # --check writes nothing
    wrote = run_cli("--catalog", str(catalog_copy), "docs")
    assert wrote.code == 0 and new in docs.read_text() and old not in docs.read_text()
    assert run_cli("--catalog", str(catalog_copy), "docs", "--check").code == 0


def test_docs_with_invalid_catalog_is_an_input_error(run_cli, catalog_copy):
    (catalog_copy / "cpu-infer.yaml").write_text("name: cpu-infer\nextends: nowhere\n")
    result = run_cli("--catalog", str(catalog_copy), "docs", "--output", str(catalog_copy / "out.md"))
    assert result.code == 2 and "cpu-infer.yaml:2: " in result.stderr
    assert not (catalog_copy / "out.md").exists()
