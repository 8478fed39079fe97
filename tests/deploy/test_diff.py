"""``builder diff``: component changes (manifests or gallery tags) and package changes (CycloneDX SBOMs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.catalog.loader import load_catalog
from builder.local.sbom import make_sbom
from builder.registry import LocalRegistry
from builder.stack import from_image
from tests.conftest import REPO

IMAGE = "ndh100-train"


def _sbom(dest: Path, version: str, packages: dict[str, str]) -> Path:
    """A real CycloneDX SBOM (builder.local.sbom) of a tree whose dpkg database holds ``packages``."""
    tree = dest.parent / f"tree-{version}"
    (tree / "var/lib/dpkg").mkdir(parents=True)
    (tree / "var/lib/dpkg/status").write_text("".join(
        f"Package: {n}\nStatus: install ok installed\nVersion: {v}\nArchitecture: amd64\nMaintainer: t <t@t>\n"
        f"Description: test\n\n" for n, v in packages.items()))
    text, count = make_sbom(tree, IMAGE, version)
    assert count == len(packages)
    dest.write_text(text)
    return dest


def _local_build(state: Path, version: str, components: dict[str, str], packages: dict[str, str] | None) -> None:
    """Record a version the way the local build does: registry entry -> manifest.json and SBOM artifacts."""
    build = state / "builds" / f"{IMAGE}-{version}"
    build.mkdir(parents=True)
    (build / "manifest.json").write_text(json.dumps({"image": IMAGE, "version": version, "components": components}))
    artifacts = {"manifest": str(build / "manifest.json")}
    if packages is not None:
        artifacts["sbom"] = str(_sbom(build / f"{IMAGE}-{version}.cdx.json", version, packages))
    LocalRegistry(state).record(IMAGE, version, {"build_id": build.name, "artifacts": artifacts})


@pytest.fixture
def two_local_versions(tmp_path):
    state = tmp_path / "state"
    comps = from_image(load_catalog(REPO / "images").model(IMAGE)).versions
    newer = {**comps, "cuda": comps["cuda"] + ".1"}
    del newer["pyxis"]
    newer["extra_tool"] = "1.0"
    _local_build(state, "2026.1128.0", comps, {"libnccl2": "2.30.4-1", "curl": "7.88.1-10", "old-lib": "1.0"})
    _local_build(state, "2026.1129.0", newer, {"libnccl2": "2.30.5-1", "curl": "7.88.1-10", "new-lib": "2.0"})
    return comps, newer


def test_local_versions_markdown_and_json(run_cli, two_local_versions):
    comps, newer = two_local_versions
    md = run_cli("diff", IMAGE, "2026.1128.0", "2026.1129.0")
    assert md.code == 0, md.stderr
    assert md.stdout.startswith(f"## {IMAGE} 2026.1129.0")
    assert f"| cuda | {comps['cuda']} | {newer['cuda']} |" in md.stdout
    assert f"| pyxis | {comps['pyxis']} | — |" in md.stdout and "| extra_tool | — | 1.0 |" in md.stdout
    assert "| libnccl2 | 2.30.4-1 | 2.30.5-1 |" in md.stdout and "| old-lib | 1.0 | — |" in md.stdout
    assert "1 changed, 1 added, 1 removed." in md.stdout
    assert "curl" not in md.stdout and "nccl |" not in md.stdout  # unchanged entries are not listed
    data = json.loads(run_cli("diff", IMAGE, "2026.1128.0", "2026.1129.0", "--json").stdout)
    kinds = {c["name"]: c["kind"] for c in data["components"]}
    assert kinds == {"cuda": "changed", "pyxis": "removed", "extra_tool": "added"}
    assert {c["name"]: c["kind"] for c in data["packages"]} == {"libnccl2": "changed", "old-lib": "removed",
                                                                "new-lib": "added"}


def test_previous_picks_the_newest_older_version_and_first_release(run_cli, two_local_versions):
    data = json.loads(run_cli("diff", IMAGE, "previous", "2026.1129.0", "--json").stdout)
    assert data["old"] == "2026.1128.0"
    first = run_cli("diff", IMAGE, "previous", "2026.1128.0")
    assert first.code == 0 and "First release" in first.stdout
    assert "| cuda | — |" in first.stdout


def test_missing_sbom_is_reported_not_guessed(run_cli, tmp_path):
    state = tmp_path / "state"
    _local_build(state, "2026.1128.0", {"cuda": "13.0.1"}, None)
    _local_build(state, "2026.1129.0", {"cuda": "13.0.2"}, {"curl": "1"})
    result = run_cli("diff", IMAGE, "2026.1128.0", "2026.1129.0")
    assert result.code == 0 and "Package changes unavailable (2026.1128.0: no SBOM recorded)" in result.stdout
    assert json.loads(run_cli("diff", IMAGE, "2026.1128.0", "2026.1129.0", "--json").stdout)["packages"] is None


def test_unknown_version_and_bad_input_exit_2(run_cli, two_local_versions):
    missing = run_cli("diff", IMAGE, "2026.1127.0", "2026.1129.0")
    assert missing.code == 2 and "2026.1127.0" in missing.stderr and "Traceback" not in missing.stderr
    bad = run_cli("diff", IMAGE, "v1", "2026.1129.0")
    assert bad.code == 2 and "Traceback" not in bad.stderr
    assert run_cli("diff", "no-such-image", "previous", "2026.1129.0").code == 2


def test_gallery_versions_from_tags_and_sboms_by_digest(run_cli, arm_emulator, catalog_copy, tmp_path):
    from builder.azure import Lifecycle, Source, provenance, publish_version
    from builder.diff import digest

    sboms = tmp_path / "artifacts"
    sboms.mkdir()
    old_sbom = _sbom(sboms / "old.cdx.json", "2026.1128.0", {"libnccl2": "2.30.4-1", "zlib1g": "1:1.2.13"})
    new_sbom = _sbom(sboms / "new.cdx.json", "2026.1129.0", {"libnccl2": "2.30.5-1", "zlib1g": "1:1.2.13"})
    old_catalog = load_catalog(catalog_copy)
    old_cuda = old_catalog.model(IMAGE).components.cuda.version
    src = "/subscriptions/s/resourceGroups/rg-build/providers/Microsoft.Compute/images/{}"
    publish_version(old_catalog, IMAGE, source=Source(managed_image_id=src.format("a")), version="2026.1128.0",
                    tags=provenance("abc", "b1", digest(old_sbom), "passed"), settings=arm_emulator.settings)
    Lifecycle(old_catalog, IMAGE, arm_emulator.settings).promote("2026.1128.0")
    base = catalog_copy / "nvidia-base.yaml"
    base.write_text(base.read_text().replace(f"version: {old_cuda}", "version: 13.0.3"))
    publish_version(load_catalog(catalog_copy), IMAGE, source=Source(managed_image_id=src.format("b")),
                    version="2026.1129.0", tags=provenance("def", "b2", digest(new_sbom), "passed"),
                    settings=arm_emulator.settings)
    env = arm_emulator.env()
    result = run_cli("--catalog", str(catalog_copy), "diff", IMAGE, "previous", "2026.1129.0", "--sbom", str(sboms),
                     "--json", env=env)
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["old"] == "2026.1128.0" and data["new_origin"].startswith("gallery ")
    assert [c for c in data["components"] if c["name"] == "cuda"] == [
        {"name": "cuda", "kind": "changed", "old": old_cuda, "new": "13.0.3"}]
    assert data["packages"] == [{"name": "libnccl2", "kind": "changed", "old": "2.30.4-1", "new": "2.30.5-1"}]
    without = run_cli("--catalog", str(catalog_copy), "diff", IMAGE, "2026.1128.0", "2026.1129.0", env=env)
    assert without.code == 0 and "no SBOM with SHA-256" in without.stdout
