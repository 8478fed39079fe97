"""NCCL (RCCL on AMD) all-reduce: runs without errors, and reaches the SKU's bus-bandwidth minimum."""

from __future__ import annotations

import pytest

from builder.verify.parsers import nccl_tests

# Where the image puts the tests; appended to PATH so a PATH entry that comes first takes precedence.
TEST_DIRS = {"nvidia": "/opt/nccl-tests/build", "amd": "/opt/rccl-tests/build"}
# AzNHC measures the minimum at 8-16 GiB messages (skus.yaml says so); smaller runs only prove correctness.
THRESHOLD_SIZES = "-b 8G -e 16G -f 2"
SMOKE_SIZES = "-b 8 -e 128M -f 2"


class Run:
    def __init__(self, command: str, output: str, rc: int) -> None:
        self.command, self.output, self.rc = command, output, rc
        try:
            self.result: nccl_tests.NcclResult | None = nccl_tests.parse(output)
            self.error = None if rc == 0 else f"exit {rc}"
        except ValueError as exc:
            self.result, self.error = None, f"{exc} (exit {rc}): {output.strip()[-200:]}"


@pytest.fixture(scope="module")
def allreduce(host, gpu_report, vendor, sku) -> Run | None:
    """One run shared by both checks (None when there are no GPUs: the ``gpus`` fixture reports that)."""
    gpus = gpu_report.gpus
    if vendor is None or not gpus:
        return None
    binary = f'PATH="$PATH:{TEST_DIRS[vendor]}" all_reduce_perf'
    sizes = THRESHOLD_SIZES if sku.facts.get("allreduce_busbw_gbps") and len(gpus) > 1 else SMOKE_SIZES
    command = f"{binary} {sizes} -g {len(gpus)} -c 1"
    result = host.run(f"{command} 2>&1")
    return Run(command, result.stdout, result.rc)


def test_allreduce_correct(gpus, allreduce, check):
    if allreduce.result is None:
        check.that(False, "all_reduce_perf completes", allreduce.error)
    r = allreduce.result
    found = f"{sum(row.wrong for row in r.rows)} wrong, {r.out_of_bounds} out of bounds" + (
        f", {allreduce.error}" if allreduce.error else "")
    check.equal("0 wrong, 0 out of bounds", found)


def test_allreduce_busbw(gpus, allreduce, sku, check):
    minimum = sku.facts.get("allreduce_busbw_gbps")
    if not minimum or len(gpus) < 2:
        pytest.skip(f"no bus-bandwidth minimum for {sku.describe()}")
    if allreduce.result is None:
        check.that(False, f">= {minimum} GB/s", allreduce.error)
    peak = allreduce.result.peak_busbw
    check.that(peak is not None and peak >= minimum, f">= {minimum} GB/s at {allreduce.result.max_size} B",
               f"{peak} GB/s")
