"""The hardware suite end to end over ``--connection local``, with the GPU/fabric tools replaced by scripts
that print the real-format samples. This proves the suite's wiring and expectation logic (which checks pass,
which fail and why); it is not evidence about hardware. Checks this host really cannot satisfy (no Fabric
Manager service, no nvidia_peermem, no nvcc, no docker) fail in every run and are compared away."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent / "samples"
H100 = "Standard_ND96isr_H100_v5"
PASSING = {"gpu.count", "gpu.model", "gpu.driver_version", "gpu.persistence_mode", "gpu.ecc", "gpu.nvlink",
           "fabric.ib_ports", "collectives.allreduce_correct", "collectives.allreduce_busbw", "dcgm.diag_r1"}


def tools(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A PATH whose nvidia-smi, ibstat, all_reduce_perf and dcgmi print samples (``overrides``: tool -> text)."""
    outputs = {
        "query": (SAMPLES / "nvidia-smi-query-h100x8.csv").read_text(),
        "nvlink": (SAMPLES / "nvlink-status-h100x8.txt").read_text(),
        "ibstat": (SAMPLES / "ibstat-ndv5.txt").read_text(),
        "all_reduce_perf": (SAMPLES / "nccl-all-reduce-h100x8.txt").read_text(),
        "dcgmi": (SAMPLES / "dcgmi-diag-r1-dcgm4.txt").read_text(),
        **overrides,
    }
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in outputs.items():
        (tmp_path / f"{name}.out").write_text(text)
    scripts = {
        "nvidia-smi": f'if [ "$1" = nvlink ]; then cat {tmp_path}/nvlink.out; else cat {tmp_path}/query.out; fi',
        "ibstat": f"cat {tmp_path}/ibstat.out",
        "all_reduce_perf": f"cat {tmp_path}/all_reduce_perf.out",
        "dcgmi": f"cat {tmp_path}/dcgmi.out",
        "curl": "exit 7",  # no instance metadata service here
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def run(catalog, env: dict, sku: str = "auto") -> dict[str, dict]:
    from builder.verify import run_suite

    result = run_suite(catalog, "ndh100-train", connection="local", host=None, suite="hardware", skus=sku, env=env)
    return {c.name: asdict(c) for c in result.checks}


def failed(checks: dict[str, dict]) -> set[str]:
    return {name for name, c in checks.items() if c["outcome"] in ("failed", "error")}


@pytest.fixture(scope="module")
def baseline(shipped_catalog, tmp_path_factory):
    return run(shipped_catalog, tools(tmp_path_factory.mktemp("base")), H100)


def test_h100_samples_meet_the_h100_sku(baseline):
    assert {n for n, c in baseline.items() if c["outcome"] == "passed"} >= PASSING
    busbw = baseline["collectives.allreduce_busbw"]
    assert busbw["found"] == "461.58 GB/s" and busbw["expected"].startswith(">= 460")


def test_auto_derives_the_sku_from_nvidia_smi(run_cli, tmp_path, baseline):
    result = run_cli("verify", "ndh100-train", "--connection", "local", "--suite", "hardware", "--json", "-",
                     env=tools(tmp_path))
    assert result.code == 1, result.stderr  # the checks this host cannot satisfy
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert failed(checks) == failed(baseline)
    assert checks["gpu.count"]["expected"] == "8"


VARIANTS = {
    "persistence": ({"query": (SAMPLES / "nvidia-smi-query-h100x8-header-persistence-off.csv").read_text()},
                    H100, {"gpu.persistence_mode"}),
    "driver": ({"query": (SAMPLES / "nvidia-smi-query-h100x8.csv").read_text().replace("580.126.16", "580.95.05")},
               H100, {"gpu.driver_version"}),
    "seven-gpus": ({"query": "".join((SAMPLES / "nvidia-smi-query-h100x8.csv").read_text().splitlines(True)[:7])},
                   H100, {"gpu.count"}),
    "ib-port-down": ({"ibstat": (SAMPLES / "ibstat-one-port-down.txt").read_text()}, H100, {"fabric.ib_ports"}),
    "nvlink-inactive": ({"nvlink": (SAMPLES / "nvlink-status-inactive.txt").read_text()}, H100, {"gpu.nvlink"}),
    "slow-allreduce": ({"all_reduce_perf": (SAMPLES / "nccl-all-reduce-h100x8.txt").read_text()
                        .replace("461.09", "401.09").replace("461.58", "401.58")}, H100,
                       {"collectives.allreduce_busbw"}),
    "dcgm-fail": ({"dcgmi": (SAMPLES / "dcgmi-diag-r1-persistence-fail.txt").read_text()}, H100, {"dcgm.diag_r1"}),
    "h200-sku": ({}, "Standard_ND96isr_H200_v5", {"gpu.model"}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_fault_fails_exactly_its_check(variant, shipped_catalog, tmp_path, baseline):
    overrides, sku, expected = VARIANTS[variant]
    checks = run(shipped_catalog, tools(tmp_path, **overrides), sku)
    assert failed(checks) - failed(baseline) == expected
    for name in expected:
        assert checks[name]["expected"] and checks[name]["found"] != checks[name]["expected"]


def test_single_gpu_host_gets_relaxed_expectations(shipped_catalog, tmp_path):
    env = tools(tmp_path, query=(SAMPLES / "nvidia-smi-query-h200x1.csv").read_text(), nvlink="", ibstat="")
    checks = run(shipped_catalog, env)
    assert checks["gpu.count"]["outcome"] == "passed" and checks["gpu.model"]["found"] == "NVIDIA H200"
    assert checks["collectives.allreduce_busbw"]["outcome"] == "skipped"
    assert "relaxed" in checks["collectives.allreduce_busbw"]["message"]
    assert checks["fabric.ib_ports"]["outcome"] == "skipped"


def test_no_gpu_here_fails_clearly(run_cli):
    result = run_cli("verify", "ndh100-train", "--connection", "local", "--suite", "hardware", "--select", "gpu",
                     env={"PATH": "/usr/bin:/bin"})
    assert result.code == 1
    assert "FAIL gpu.count" in result.stdout and "nvidia-smi" in result.stdout
