"""Which SKU's expectations apply on a host."""

from __future__ import annotations

import pytest

from builder.errors import InputError
from builder.verify.sku import health_checks, model_matches, resolve, size_bytes


def skus(catalog) -> dict:
    return {name: facts.model_dump(mode="json") for name, facts in catalog.skus.items()}


def test_explicit_choice_wins(shipped_catalog):
    r = resolve("Standard_ND96isr_H200_v5", skus(shipped_catalog), [], "Standard_ND96isr_H100_v5",
                ["NVIDIA H100 80GB HBM3"] * 8, "nvidia")
    assert (r.name, r.source) == ("Standard_ND96isr_H200_v5", "--skus")


def test_instance_metadata_case_insensitive(shipped_catalog):
    r = resolve("auto", skus(shipped_catalog), [], "standard_nd96isr_h100_v5", [], "nvidia")
    assert (r.name, r.source) == ("Standard_ND96isr_H100_v5", "instance metadata")
    assert r.facts["allreduce_busbw_gbps"] == shipped_catalog.skus["Standard_ND96isr_H100_v5"].allreduce_busbw_gbps


def test_derived_from_gpus_prefers_targets(shipped_catalog):
    table = skus(shipped_catalog)
    model = table["Standard_NC24ads_A100_v4"]["gpu_model"]
    r = resolve("auto", table, ["Standard_NC24ads_A100_v4"], None, [model], "nvidia")
    assert (r.name, r.source, r.relaxed) == ("Standard_NC24ads_A100_v4", "nvidia-smi", False)


def test_unknown_host_is_relaxed_and_says_so(shipped_catalog):
    r = resolve("auto", skus(shipped_catalog), [], None, ["NVIDIA H200 NVL"], "nvidia")
    assert r.relaxed and r.source == "relaxed"
    assert r.facts["gpu_count"] == 1 and r.facts["allreduce_busbw_gbps"] is None and not r.facts["nvswitch"]
    assert "no size in skus.yaml has 1x NVIDIA H200 NVL" in r.describe()


def test_one_h200_is_not_an_nd_h200(shipped_catalog):
    r = resolve("auto", skus(shipped_catalog), ["Standard_ND96isr_H200_v5"], None, ["NVIDIA H200"], "nvidia")
    assert r.relaxed and r.facts["gpu_model"] == "NVIDIA H200"


def test_amd_names_match_catalog_model(shipped_catalog):
    r = resolve("auto", skus(shipped_catalog), [], None, ["AMD Instinct MI300X OAM"] * 8, "amd")
    assert (r.name, r.source) == ("Standard_ND96isr_MI300X_v5", "rocm-smi")
    assert model_matches("AMD Instinct MI300X OAM", "AMD Instinct MI300X")
    assert not model_matches("NVIDIA H100 NVL", "NVIDIA H100")


def test_mi300x_virtual_functions_are_the_mi300x_size(shipped_catalog):
    # Azure's ND MI300X v5 guests report SR-IOV VFs (ROCm/rccl#1728: "AMD Instinct MI300X VF" on a -azure kernel)
    r = resolve("auto", skus(shipped_catalog), [], None, ["AMD Instinct MI300X VF"] * 8, "amd")
    assert (r.name, r.source) == ("Standard_ND96isr_MI300X_v5", "rocm-smi")
    assert not model_matches("AMD Instinct MI300X VF2", "AMD Instinct MI300X")
    assert not model_matches("AMD Instinct MI300A", "AMD Instinct MI300X")


def test_azure_health_checks_agree_with_the_size_facts(shipped_catalog):
    """Where both name a fact, skus.yaml and the AzNHC conf of the size say the same."""
    table = health_checks(shipped_catalog.sku_doc.data, shipped_catalog.skus)
    assert {"Standard_ND96is_H100_v5", "Standard_ND96isrf_H200_v5", "Standard_NC48ads_A100_v4"} <= set(table)
    for name, checks in table.items():
        facts = shipped_catalog.skus[name]
        assert checks["gpu_count"] == facts.gpu_count, name
        assert checks["cpu"]["threads"] == facts.vcpus, name
        if checks.get("allreduce"):
            assert checks["allreduce"]["min_busbw_gbps"] == facts.allreduce_busbw_gbps, name
        if checks.get("nvme_count") is not None:
            assert checks["nvme_count"] == facts.local_nvme_disks, name
        ib = {port: rate for port, rate in checks["ib_ports"].items() if port.startswith("mlx5_ib")}
        assert bool(ib) == bool(facts.infiniband), name
        if ib:
            assert (len(ib), set(ib.values())) == (facts.infiniband.ports, {facts.infiniband.rate_gbps}), name
        if facts.nvswitch:
            assert checks["nvlink"], name


def test_health_checks_are_validated(shipped_catalog):
    doc = {"health_checks": {"Standard_ND96isr_H100_v5": {"source": "Azure/azurehpc-health-checks conf/x.conf@abc1234",
                                                          "gpu_count": 8, "xid_codes": [79]}}}
    with pytest.raises(InputError, match="xid_codes"):
        health_checks(doc, shipped_catalog.skus)
    with pytest.raises(InputError, match="not in skus"):
        health_checks({"health_checks": {"Standard_ND96isr_H900_v9": {}}}, shipped_catalog.skus)
    with pytest.raises(InputError, match="source"):
        health_checks({"health_checks": {"Standard_ND96isr_H100_v5": {"source": "a blog"}}}, shipped_catalog.skus)


@pytest.mark.parametrize("text, value", [("16G", 16 * 2**30), ("8G", 2**33), ("1915071MB", 1915071 * 2**20),
                                         ("0kB", 0), ("1909409116kB", 1909409116 * 1024), ("8388608", 8388608)])
def test_sizes_as_nhc_and_nccl_tests_write_them(text, value):
    assert size_bytes(text) == value


def test_unreadable_size():
    with pytest.raises(ValueError):
        size_bytes("16 gigs")


@pytest.mark.parametrize("size", ["\uff11\uff16G", "\u0661\u0666G"])  # full-width, Arabic-Indic 16
def test_sizes_are_ascii(size):
    """Full-width and Arabic-Indic digits are digits to Python's \\d, not to NHC or nccl-tests (issue 18)."""
    with pytest.raises(ValueError, match="not a size"):
        size_bytes(size)


def test_manifest_version_pattern_is_ascii_and_whole():
    import re

    from builder.verify.manifest import VERSION_PATTERN

    assert re.fullmatch(VERSION_PATTERN, "2026.1201.0")
    for bad in ("\uff12026.1201.0", "2026.1201.0\n", "2026.1201.0-x"):
        assert not re.fullmatch(VERSION_PATTERN, bad)
