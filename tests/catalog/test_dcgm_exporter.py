"""#23: dcgm-exporter is installed as NVIDIA ships it for hosts (the CUDA repository's
datacenter-gpu-manager-exporter package and its unit), paired with the image's DCGM; the tag archive the catalog
pinned before is Go source with no binary."""

from __future__ import annotations

from tests.catalog.helpers import edit, problems
from tests.conftest import REPO


def test_the_exporter_is_an_apt_package_versioned_by_the_exporter_release():
    from builder.catalog.loader import load_catalog
    from builder.stack import resolve

    stack = resolve(load_catalog(REPO / "images"), "ndh100-train")
    [package] = stack.packages["dcgm_exporter"]
    assert (package.name, package.version, package.feed) == ("datacenter-gpu-manager-exporter", "4.8.1-*", "cuda")
    assert "nvidia-dcgm-exporter.service" in stack.units()
    assert "dcgm_exporter" not in stack.downloads("https://example.invalid")


def test_an_exporter_paired_with_another_dcgm_is_a_warning(catalog_copy):
    edit(catalog_copy, "nvidia-base.yaml", {"components.dcgm_exporter": {"version": "4.4.1-4.6.0"}})
    [found] = [p for p in problems(catalog_copy, "nca100-infer") if p.field == "components.dcgm_exporter.version"]
    assert found.severity == "warning" and "paired with DCGM 4.4.1" in found.message and "DCGM 4.5.2" in found.message


def test_an_exporter_without_dcgm_is_refused(catalog_copy):
    edit(catalog_copy, "nvidia-base.yaml", {"components.dcgm": None})
    found = [p for p in problems(catalog_copy, "nca100-infer") if p.field == "components.dcgm_exporter"]
    assert found and found[0].severity == "error" and "add components.dcgm" in found[0].message
