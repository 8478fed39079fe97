"""Layered builds: the chain of catalog images, inputs digests and which links need rebuilding."""

from __future__ import annotations

import json
import shutil

from builder.catalog.loader import load_catalog
from builder.matrix import SHARED_INPUTS
from builder.packer.chain import chain, chain_status, gallery_lookup, inputs_digest, lookup_from_env
from builder.stack.tags import INPUTS_DIGEST
from tests.conftest import REPO

TOP, BASE = "ndh100-train-layered", "gpu-base"


def _append(catalog_dir, name, text):
    path = catalog_dir / f"{name}.yaml"
    path.write_text(path.read_text() + text)
    return load_catalog(catalog_dir)


def test_chain_is_bottom_first(catalog_copy):
    catalog = load_catalog(catalog_copy)
    assert chain(catalog, TOP) == [BASE, TOP]
    assert chain(catalog, "ndh100-train") == ["ndh100-train"]


def test_top_change_rebuilds_only_the_top(catalog_copy):
    before = load_catalog(catalog_copy)
    digests = {n: inputs_digest(before, n) for n in (BASE, TOP)}
    after = _append(catalog_copy, TOP, "build:\n  os_disk_gb: 512\n")
    assert inputs_digest(after, BASE) == digests[BASE]
    assert inputs_digest(after, TOP) != digests[TOP]


def test_base_change_rebuilds_the_chain(catalog_copy):
    before = load_catalog(catalog_copy)
    digests = {n: inputs_digest(before, n) for n in (BASE, TOP)}
    after = _append(catalog_copy, BASE, "build:\n  os_disk_gb: 512\n")
    assert inputs_digest(after, BASE) != digests[BASE]
    assert inputs_digest(after, TOP) != digests[TOP]


def test_description_does_not_change_the_digest(catalog_copy):
    before = inputs_digest(load_catalog(catalog_copy), TOP)
    path = catalog_copy / f"{TOP}.yaml"
    path.write_text(path.read_text().replace("description: ", "description: Reworded. "))
    assert inputs_digest(load_catalog(catalog_copy), TOP) == before


def test_shared_inputs_change_every_digest(catalog_copy, tmp_path):
    catalog = load_catalog(catalog_copy)
    digests = []
    for variant in ("a", "b"):
        repo = tmp_path / variant
        for prefix in SHARED_INPUTS:
            source = REPO / prefix
            if source.is_dir():
                shutil.copytree(source, repo / prefix, ignore=shutil.ignore_patterns("__pycache__"))
            elif source.exists():
                (repo / prefix).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, repo / prefix)
        (repo / "ansible").mkdir(exist_ok=True)
        (repo / "ansible" / "extra.yml").write_text(f"variant: {variant}\n")
        digests.append(inputs_digest(catalog, "ndh100-train", repo))
    assert digests[0] != digests[1]


SRC = "/subscriptions/s/resourceGroups/rg-build/providers/Microsoft.Compute/images/{}"


def _publish(catalog, emulator, name, version, digest, **extra_tags):
    from builder.azure import Source, publish_version

    publish_version(catalog, name, source=Source(managed_image_id=SRC.format(f"{name}-{version}")), version=version,
                    tags={INPUTS_DIGEST: digest, **extra_tags}, settings=emulator.settings)


def test_status_unknown_without_gallery(catalog_copy):
    catalog = load_catalog(catalog_copy)
    assert lookup_from_env(catalog, {}) is None
    links = chain_status(catalog, TOP, None)
    assert [(link.image, link.status) for link in links] == [(BASE, "unknown"), (TOP, "unknown")]
    assert links[1].base == f"image {BASE}"


def test_status_from_gallery_digest_tags(arm_emulator):
    catalog = load_catalog(REPO / "images")
    lookup = gallery_lookup(catalog, arm_emulator.settings)
    assert lookup(BASE) is None  # no gallery yet: never published
    _publish(catalog, arm_emulator, BASE, "2026.1101.0", "old")
    _publish(catalog, arm_emulator, BASE, "2026.1102.1", inputs_digest(catalog, BASE))
    _publish(catalog, arm_emulator, TOP, "2026.1102.0", "stale")
    links = chain_status(catalog, TOP, lookup)
    assert [(link.image, link.status, link.published_version) for link in links] == [
        (BASE, "up-to-date", "2026.1102.1"), (TOP, "rebuild", "2026.1102.0")]
    _publish(catalog, arm_emulator, BASE, "2026.1103.0", "newer", **{"builder.yanked": "bad driver"})
    assert lookup(BASE)[0] == "2026.1102.1"  # a yanked version is not the latest published one
    fresh = chain_status(catalog, "ndh100-train", lookup)
    assert fresh[0].status == "rebuild" and fresh[0].published_version is None


def test_builder_plan_shows_chain_and_status(run_cli, arm_emulator):
    no_gallery = {"AZURE_SUBSCRIPTION_ID": ""}
    result = run_cli("plan", TOP, "--target", "azure", "--json", env=no_gallery)
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [link["image"] for link in plan["chain"]] == [BASE, TOP]
    assert {link["status"] for link in plan["chain"]} == {"unknown"}
    assert "no gallery configured" in run_cli("plan", TOP, "--target", "azure", env=no_gallery).stdout
    catalog = load_catalog(REPO / "images")
    _publish(catalog, arm_emulator, BASE, "2026.1102.1", inputs_digest(catalog, BASE))
    text = run_cli("plan", TOP, "--target", "azure", env=arm_emulator.env())
    assert text.code == 0, text.stderr
    assert "build chain" in text.stdout and "up-to-date" in text.stdout and "rebuild" in text.stdout
    statuses = {link["image"]: link["status"]
                for link in json.loads(run_cli("plan", TOP, "--json", env=arm_emulator.env()).stdout)["chain"]}
    assert statuses == {BASE: "up-to-date", TOP: "rebuild"}
