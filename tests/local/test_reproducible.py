"""Reproducible builds (issue 17): the same inputs (catalog, roles, recorded stand-in feed) give the same inputs
digests and the same SBOM package list.

The slow test builds ndh100-train a second time, every layer converged again (``--no-cache``), against the
session's ``full_build`` (tests/fixtures/local.py) and compares the two manifests and SBOMs. The cheap tests check
the comparable package list itself on SBOMs of hand-written dpkg databases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.local.sbom import compare_package_lists, make_sbom, package_list, package_list_digest
from tests.conftest import REPO
from tests.fixtures.local import FULL_BUILD_IMAGE, local_build, needs_local_tools


def _tree(root: Path, packages: list[tuple[str, str]]) -> Path:
    """A root filesystem holding only a dpkg database with ``packages`` in that order."""
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("".join(
        f"Package: {n}\nStatus: install ok installed\nVersion: {v}\nArchitecture: amd64\nSource: {n}-src\n"
        f"Maintainer: t <t@t>\nDescription: test\n\n" for n, v in packages))
    return root


PACKAGES = [("libnccl2", "2.30.4-1+cuda13.0"), ("curl", "7.88.1-10+deb12u12"), ("zlib1g", "1:1.2.13.dfsg-1")]
DOWNLOADS = {"node_exporter": {"sha256": "ab" * 32, "version": "1.9.1", "filename": "node_exporter.tar.gz"}}


def test_package_list_ignores_serial_time_version_order_and_download_checksums(tmp_path):
    a, _ = make_sbom(_tree(tmp_path / "a", PACKAGES), "img", "2026.1201.0", DOWNLOADS)
    other = {"node_exporter": {**DOWNLOADS["node_exporter"], "sha256": "cd" * 32}}
    b, _ = make_sbom(_tree(tmp_path / "b", list(reversed(PACKAGES))), "img", "2026.1201.1", other)
    doc_a, doc_b = json.loads(a), json.loads(b)
    assert doc_a["serialNumber"] != doc_b["serialNumber"]  # the documents differ; their package lists do not
    assert doc_a["metadata"]["component"]["version"] != doc_b["metadata"]["component"]["version"]
    assert package_list(a) == package_list(b)
    assert package_list_digest(a) == package_list_digest(doc_b)
    assert compare_package_lists(a, b) == {"same": True, "only_a": [], "only_b": []}
    listed = package_list(a)
    assert [(e["kind"], e["name"]) for e in listed] == [
        ("download", "node_exporter"), ("dpkg", "curl"), ("dpkg", "libnccl2"), ("dpkg", "zlib1g")]
    assert listed[2]["purl"].startswith("pkg:deb/debian/libnccl2@2.30.4-1%2Bcuda13.0?arch=amd64")


def test_another_package_version_changes_the_package_list(tmp_path):
    a, _ = make_sbom(_tree(tmp_path / "a", PACKAGES), "img", "1.0.0")
    newer = [(n, "2.30.5-1+cuda13.0" if n == "libnccl2" else v) for n, v in PACKAGES]
    b, _ = make_sbom(_tree(tmp_path / "b", newer), "img", "1.0.0")
    assert package_list_digest(a) != package_list_digest(b)
    diff = compare_package_lists(a, b)
    assert not diff["same"]
    assert [(e["name"], e["version"]) for e in diff["only_a"]] == [("libnccl2", "2.30.4-1+cuda13.0")]
    assert [(e["name"], e["version"]) for e in diff["only_b"]] == [("libnccl2", "2.30.5-1+cuda13.0")]


def test_package_list_reads_a_file(tmp_path):
    text, _ = make_sbom(_tree(tmp_path / "a", PACKAGES), "img", "1.0.0")
    (tmp_path / "x.cdx.json").write_text(text)
    assert package_list(tmp_path / "x.cdx.json") == package_list(text)


@pytest.mark.slow
@needs_local_tools()
def test_a_second_build_from_the_same_inputs_gives_the_same_digests_and_package_list(full_build, builder_cache,
                                                                                      tmp_path):
    """The second build converges every layer again (``--no-cache``: apt resolves against the same recorded
    stand-in feed, from the same cached base) and skips only the boot test and the publish, which come after the
    SBOM and change nothing in it."""
    from builder.catalog.loader import load_catalog
    from builder.packer.chain import inputs_digest

    first = full_build["record"]
    proc = local_build(builder_cache, tmp_path / "state", "--no-cache", "--no-boot-test", "--no-publish")
    assert proc.returncode == 0, proc.stderr[-4000:]
    second = json.loads(proc.stdout)
    statuses = {p["name"]: p["status"] for p in second["phases"]}
    assert [statuses[f"layer:{n}"] for n in ("base", "gpu", "fabric", "image")] == ["done"] * 4  # none cached
    m1, m2 = (json.loads(Path(r["artifacts"]["manifest"]).read_text()) for r in (first, second))
    assert m1["build_id"] != m2["build_id"]
    assert m1["inputs_digest"] == m2["inputs_digest"]
    assert m1["catalog_inputs_digest"] == m2["catalog_inputs_digest"] == inputs_digest(
        load_catalog(REPO / "images"), FULL_BUILD_IMAGE)
    assert [(layer["name"], layer["key"]) for layer in m1["layers"]] == [
        (layer["name"], layer["key"]) for layer in m2["layers"]]
    assert m1["base"]["key"] == m2["base"]["key"] and m1["components"] == m2["components"]
    sbom1, sbom2 = (Path(r["artifacts"]["sbom"]) for r in (first, second))
    assert compare_package_lists(sbom1, sbom2) == {"same": True, "only_a": [], "only_b": []}
    assert m1["sbom_package_list_sha256"] == m2["sbom_package_list_sha256"] == package_list_digest(sbom2)
    assert m1["sbom_packages"] == m2["sbom_packages"] > 100
    assert json.loads(sbom1.read_text())["serialNumber"] != json.loads(sbom2.read_text())["serialNumber"]
