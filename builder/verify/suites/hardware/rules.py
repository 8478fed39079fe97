"""Verdicts on parsed tool output, as Azure's health checks (AzNHC) reach them; pure functions, unit-tested.

Each function returns the problems found (empty: healthy). The AzNHC script each rule follows is named on it
(Azure/azurehpc-health-checks customTests/*.nhc @0e0a1ac26a64).
"""

from __future__ import annotations

import math
from typing import Any

from builder.verify.parsers.infiniband import Port
from builder.verify.parsers.nccl_tests import NcclResult
from builder.verify.parsers.nvbandwidth import Matrix
from builder.verify.parsers.nvsmi_query import GpuHealth
from builder.verify.parsers.topology import PciDevice

H2D, D2H, P2P = "host_to_device_memcpy_ce", "device_to_host_memcpy_ce", "device_to_device_memcpy_read_ce"


def ecc_problems(gpus: list[GpuHealth], dram_max: int, sram_correctable_max: int, retired_full: int) -> list[str]:
    """azure_gpu_ecc.nhc check_ecc: remap pending or failed, SRAM correctable above / uncorrectable above 0,
    DRAM counts above the threshold; check_SDBE_ecc: retired pages >= ``retired_full`` with a pending blacklist
    (AzNHC runs that one on V100 only; here wherever the GPU reports numeric retired-page counts)."""
    problems = []
    for gpu in gpus:
        where = f"GPU {gpu.bus_id}"
        if gpu.get("Remapped Rows", "Pending") == "Yes":
            problems.append(f"{where}: row remap pending")
        if gpu.get("Remapped Rows", "Remapping Failure Occurred") == "Yes":
            problems.append(f"{where}: row remapping failed")
        for scope in ("Volatile", "Aggregate"):
            sram_c = gpu.ecc(scope, "SRAM", "Correctable")
            sram_u = gpu.ecc(scope, "SRAM", "Uncorrectable")
            dram = [gpu.ecc(scope, "DRAM", kind) for kind in ("Correctable", "Uncorrectable")]
            if sram_c is not None and sram_c > sram_correctable_max:
                problems.append(f"{where}: {sram_c} {scope.lower()} SRAM correctable (max {sram_correctable_max})")
            if sram_u:
                problems.append(f"{where}: {sram_u} {scope.lower()} SRAM uncorrectable")
            if any(n is not None and n > dram_max for n in dram):
                problems.append(f"{where}: {scope.lower()} DRAM errors {dram} (max {dram_max})")
        single, double = gpu.count("Retired Pages", "Single Bit ECC"), gpu.count("Retired Pages", "Double Bit ECC")
        pending = gpu.get("Retired Pages", "Pending Page Blacklist")
        if single is not None and double is not None and single + double >= retired_full and pending == "Yes":
            problems.append(f"{where}: retirement table full ({single + double} pages, blacklist pending)")
    return problems


def throttle_warnings(gpus: list[GpuHealth], benign: list[str]) -> list[str]:
    """azure_gpu_clock_throttling.nhc: any active reason but idle / SW power cap is a warning."""
    return [f"GPU {g.bus_id}: {', '.join(r for r in g.throttle_reasons() if r not in benign)}" for g in gpus
            if any(r not in benign for r in g.throttle_reasons())]


def link_flap_problems(counts: dict[str, int], threshold: int) -> list[str]:
    """azure_ib_link_flapping.nhc: a device with ``threshold`` or more lost-carrier events fails."""
    return [f"{dev}: {n} lost carrier" for dev, n in sorted(counts.items()) if n >= threshold]


def ib_port_problems(ports: list[Port], expected: dict[str, int]) -> list[str]:
    """azure check_hw_ib (NHC): each named ``CA:port`` is present, Active and at its rate (Gb/s)."""
    by_name = {f"{p.ca}:{p.port}": p for p in ports}
    problems = []
    for name, rate in expected.items():
        port = by_name.get(name)
        if port is None:
            problems.append(f"{name} missing")
        elif not port.active or port.rate_gbps != rate:
            problems.append(f"{name} {port.state} {port.rate_gbps} Gb/s")
    return problems


def copy_bandwidth_problems(tests: dict[str, Matrix], h2d_d2h: float, p2p: float | None) -> list[str]:
    """azure_gpu_bandwidth.nhc evaluate_nvBW_result: every host<->device cell >= ``h2d_d2h`` GB/s, every
    peer cell >= ``p2p`` GB/s (N/A cells skipped); a requested test that printed no matrix is a problem too."""
    problems = []
    wanted = {H2D: h2d_d2h, D2H: h2d_d2h, **({P2P: p2p} if p2p else {})}
    for test, minimum in wanted.items():
        matrix = tests.get(test)
        if matrix is None:
            problems.append(f"{test}: no result")
            continue
        problems += [f"{test} {r}->{c}: {v} GB/s < {minimum}" for r, c, v in matrix.cells() if v < minimum]
    return problems


def run_shape_problems(result: NcclResult, ranks: int, size: int) -> list[str]:
    """The run is the one asked for: ``ranks`` ranks on one node, every size ``size`` bytes."""
    problems = []
    if result.ranks and result.ranks != ranks:
        problems.append(f"{result.ranks} ranks, asked for {ranks}")
    if result.nodes > 1:
        problems.append(f"{result.nodes} nodes, asked for 1")
    if result.n_gpus is not None and not result.ranks and result.n_gpus != ranks:
        problems.append(f"{result.n_gpus} GPUs, asked for {ranks}")
    sizes = sorted({row.size_bytes for row in result.rows})
    if sizes != [size]:
        problems.append(f"message sizes {sizes}, asked for {size}")
    return problems


def bus_bandwidth(result: NcclResult) -> float | None:
    """The ``Avg bus bandwidth`` line (what AzNHC compares: azure_nccl_allreduce.nhc field 5), else the row's."""
    if result.avg_busbw is not None and not math.isnan(result.avg_busbw):
        return result.avg_busbw
    peak = result.peak_busbw
    return None if peak is None or math.isnan(peak) else peak


def correctness_problems(result: NcclResult) -> list[str]:
    """Wrong elements, out-of-bounds values or a FAILED line (azure_nccl_allreduce.nhc fails on FAILED)."""
    problems = []
    if result.wrong:
        problems.append(f"{result.wrong} wrong")
    if result.out_of_bounds:
        problems.append(f"{result.out_of_bounds} out of bounds")
    problems += [f"'{line}'" for line in result.failed_lines if "Out of bounds" not in line]
    return problems


def topology_problems(expected: list[PciDevice], found: list[PciDevice]) -> list[str]:
    """Each device of the topology file that lstopo does not show on the same NUMA node
    (azure_hw_topology_check.nhc check_hw_topology: "Expected to find PCI Bus B on NUMANode N")."""
    where = {device.busid: device.numa for device in found}
    problems = []
    for device in expected:
        if device.busid not in where:
            problems.append(f"PCI {device.busid} (NUMA node {device.numa}): not present")
        elif where[device.busid] != device.numa:
            problems.append(f"PCI {device.busid}: on NUMA node {where[device.busid]}, expected {device.numa}")
    return problems


def summary(values: Any) -> str:
    return ", ".join(values) if values else "none"
