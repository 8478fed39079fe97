"""Which SKU's expectations apply on a host."""

from __future__ import annotations

from builder.verify.sku import model_matches, resolve


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
