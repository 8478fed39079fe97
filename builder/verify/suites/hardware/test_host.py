"""vCPUs, memory, swap and NVMe disks as images/skus.yaml and Azure's health checks expect them
(NHC check_hw_cpuinfo / check_hw_physmem / check_hw_swap, azure_nvme_count.nhc@0e0a1ac26a64)."""

from __future__ import annotations

import pytest

from builder.verify.parsers import system
from builder.verify.parsers.errors import ParseError
from builder.verify.sku import size_bytes
from builder.verify.suites.hardware.helpers import needs


def _within(found_kib: int, spec: dict) -> bool:
    low, high = size_bytes(spec["min"]) // 1024, size_bytes(spec["max"]) // 1024
    slack = max(low, high) * spec["tolerance_pct"] / 100
    return low - slack <= found_kib <= high + slack


@pytest.fixture(scope="module")
def memory(host) -> system.Memory | str:
    result = host.run("free -k 2>&1")
    try:
        return system.parse_free(result.stdout)
    except ParseError as exc:
        return f"{exc} (exit {result.rc})"


def test_vcpus(sku, host, check):
    if sku.relaxed:
        pytest.skip("relaxed expectations: no size to compare with")
    result = host.run("nproc --all 2>&1")
    try:
        found: int | str = system.parse_nproc(result.stdout)
    except ParseError as exc:
        found = str(exc)
    check.equal(sku.facts["vcpus"], found)


def _check_size(health, memory, check, key: str, field: str) -> None:
    """``free -k``'s ``field`` (KiB) within the health checks' ``key`` range and tolerance."""
    spec = needs(health, key)
    expected = f"{spec['min']}..{spec['max']} +-{spec['tolerance_pct']}%"
    if isinstance(memory, str):
        check.that(False, expected, memory)
    found = getattr(memory, field)
    check.that(_within(found, spec), expected, f"{found}kB")


def test_memory(health, memory, check):
    _check_size(health, memory, check, "physmem", "total_kib")


def test_swap(health, memory, check):
    _check_size(health, memory, check, "swap", "swap_kib")


def test_nvme_count(health, host, check):
    expected = needs(health, "nvme_count")
    result = host.run("lsblk -dno NAME 2>&1")
    found = len(system.nvme_namespaces(result.stdout)) if result.rc == 0 else f"lsblk failed: {result.stdout[:200]}"
    check.equal(expected, found)
