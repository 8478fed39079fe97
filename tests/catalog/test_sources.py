"""No invented facts: every download in the catalog carries its sha256 and the source that value was read from;
``builder validate`` refuses one without both (exit 2, file, line, field)."""

from __future__ import annotations

import re

import yaml

from tests.catalog.helpers import edit
from tests.conftest import REPO

PLACEHOLDER = re.compile(r"^(.)\1{63}$")  # one character 64 times (the all-zero placeholder)


def _downloads(node, path=()):
    if isinstance(node, dict):
        if "url" in node and "sha256" in node:
            yield path, node
        for key, value in node.items():
            yield from _downloads(value, (*path, key))


def test_every_shipped_checksum_has_a_source_and_is_no_placeholder():
    found = []
    for file in sorted((REPO / "images").glob("*.yaml")):
        for path, download in _downloads(yaml.safe_load(file.read_text())):
            found.append(path)
            where = f"{file.name}: {'.'.join(path)}"
            assert str(download.get("source", "")).strip(), f"{where} has a sha256 without a source"
            assert not PLACEHOLDER.match(str(download["sha256"])), f"{where} has a placeholder sha256"
            assert "Entered offline" not in file.read_text(), f"{file.name} still says a value was entered offline"
    assert len(found) >= 7


def test_validate_refuses_a_download_without_a_source(run_cli, catalog_copy):
    edit(catalog_copy, "base-dsvm.yaml", {"components.node_exporter.download.source": None})
    result = run_cli("--catalog", str(catalog_copy), "validate", "cpu-infer")
    assert result.code == 2, result.stdout + result.stderr
    text = result.stdout + result.stderr
    assert "base-dsvm.yaml" in text and "source" in text and "Traceback" not in text


def test_validate_refuses_a_download_without_a_checksum(run_cli, catalog_copy):
    edit(catalog_copy, "base-dsvm.yaml", {"components.node_exporter.download.sha256": None})
    result = run_cli("--catalog", str(catalog_copy), "validate", "cpu-infer")
    assert result.code == 2 and "sha256" in result.stdout + result.stderr


def test_validate_refuses_a_placeholder_checksum(run_cli, catalog_copy):
    edit(catalog_copy, "base-dsvm.yaml", {"components.node_exporter.download.sha256": "0" * 64,
                                          "components.node_exporter.download.source": "somewhere"})
    result = run_cli("--catalog", str(catalog_copy), "validate", "cpu-infer")
    assert result.code == 2 and "placeholder" in result.stdout + result.stderr


def test_nc48ads_a100_v4_all_reduce_floor_is_azure_health_checks_value():
    """AzNHC checks NCCL all-reduce >= 193.0 GB/s at 16G on NC48ads_A100_v4 (conf/nc48ads_a100_v4.conf:42
    @0e0a1ac26a64); the size had no floor, so the hardware suite checked nothing there."""
    from builder.catalog.loader import load_catalog

    assert load_catalog(REPO / "images").skus["Standard_NC48ads_A100_v4"].allreduce_busbw_gbps == 193
