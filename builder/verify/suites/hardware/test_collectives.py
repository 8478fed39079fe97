"""NCCL (RCCL on AMD) all-reduce as Azure's health checks run it: one message size, the size's topology file,
the Avg bus bandwidth against the SKU's minimum, retried as often as AzNHC retries; the run must be the one
asked for (ranks, nodes, sizes). NCCL over InfiniBand only (loopback) where AzNHC checks it."""

from __future__ import annotations

import shlex

import pytest

from builder.verify.parsers import nccl_tests
from builder.verify.parsers.errors import ParseError
from builder.verify.sku import size_bytes
from builder.verify.suites.hardware import rules
from builder.verify.suites.hardware.helpers import needs

# Where the image puts the tests; appended to PATH so a PATH entry that comes first takes precedence.
# Azure's MI300X image copies the rccl-tests binaries straight into /opt/rccl-tests (Azure/azhpc-images
# components/install_rccl.sh:64-107@67a1b094eeed; builder/data/bases/ubuntu-hpc-2204-rocm.yaml S88).
TEST_DIRS = {"nvidia": "/opt/nccl-tests/build", "amd": "/opt/rccl-tests/build:/opt/rccl-tests"}
SMOKE_SIZES = "-b 8 -e 128M -f 2"
DEFAULT_SIZE = "16G"  # the size every AzNHC conf but ND96asr_v4 / NC96ads_A100_v4 (8G) uses


class Run:
    """One or more attempts of all_reduce_perf; ``result`` is the last attempt's parse, ``error`` why not."""

    def __init__(self, command: str, ranks: int, size: int | None) -> None:
        self.command, self.ranks, self.size = command, ranks, size
        self.result: nccl_tests.NcclResult | None = None
        self.error: str | None = None
        self.attempts: list[float | None] = []
        self.note = ""

    def record(self, output: str, rc: int) -> None:
        try:
            self.result, self.error = nccl_tests.parse(output), (None if rc == 0 else f"exit {rc}")
        except ParseError as exc:
            self.result, self.error = None, f"{exc} (exit {rc}): {output.strip()[-200:]}"
        self.attempts.append(rules.bus_bandwidth(self.result) if self.result else None)

    @property
    def shape(self) -> list[str]:
        if self.result is None or self.size is None:
            return []
        return rules.run_shape_problems(self.result, self.ranks, self.size)


def _allreduce(host, vendor, gpus, spec: dict | None, env: dict[str, str], minimum: float | None,
               topology_dir: str) -> Run:
    binary = f'PATH="$PATH:{TEST_DIRS[vendor]}" all_reduce_perf'
    if spec is None:
        run = Run(f"{binary} {SMOKE_SIZES} -g {len(gpus)} -c 1", len(gpus), None)
        result = host.run(f"{run.command} 2>&1")
        run.record(result.stdout, result.rc)
        return run
    size = spec["message_size"]
    topology = spec.get("topology_file")
    prefix, note = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()), ""
    if topology:
        path = f"{topology_dir}/{topology}"
        if host.run(f"test -f {shlex.quote(path)}").rc == 0:
            prefix += f" NCCL_TOPO_FILE={path}"
        else:
            note = f"{path} missing: ran without it"
    run = Run(f"{prefix} {binary} -b {size} -e {size} -f 2 -g {len(gpus)} -c 1".strip(), len(gpus),
              size_bytes(size))
    run.note = note
    for _ in range(spec.get("repeats", 1)):  # azure_nccl_allreduce.nhc: REPEATS attempts, the first pass wins
        result = host.run(f"{run.command} 2>&1")
        run.record(result.stdout, result.rc)
        bw = run.attempts[-1]
        if run.result is not None and not run.shape and bw is not None and minimum and bw >= minimum:
            break
    return run


def _spec(sku, key: str) -> dict | None:
    health = sku.facts.get("health") or {}
    if health.get(key):
        return health[key]
    if key == "allreduce" and sku.facts.get("allreduce_busbw_gbps"):
        return {"min_busbw_gbps": sku.facts["allreduce_busbw_gbps"], "repeats": 1, "message_size": DEFAULT_SIZE}
    return None


@pytest.fixture(scope="module")
def allreduce(host, gpu_report, vendor, sku, topology_dir) -> Run | None:
    """One run shared by both checks (None when there are no GPUs: the ``gpus`` fixture reports that)."""
    gpus = gpu_report.gpus
    if vendor is None or not gpus:
        return None
    spec = _spec(sku, "allreduce") if len(gpus) > 1 else None
    return _allreduce(host, vendor, gpus, spec, {}, spec["min_busbw_gbps"] if spec else None, topology_dir)


def _failed(run: Run, expected: str, check) -> None:
    if run.result is None:
        check.that(False, expected, run.error)
    if run.shape:
        check.that(False, expected, f"not the requested run: {'; '.join(run.shape)} ({run.command})")


def test_allreduce_correct(gpus, allreduce, check):
    expected = "0 wrong, 0 out of bounds"
    _failed(allreduce, expected, check)
    problems = rules.correctness_problems(allreduce.result)
    found = ", ".join(problems) if problems else expected
    check.equal(expected, found + (f", {allreduce.error}" if allreduce.error else ""))


def _judge_bandwidth(run: Run, minimum: float, check) -> None:
    expected = f">= {minimum} GB/s avg bus bandwidth at {run.size} B"
    _failed(run, expected, check)
    best = max((a for a in run.attempts if a is not None), default=None)
    tries = f" ({len(run.attempts)} attempts: {run.attempts})" if len(run.attempts) > 1 else ""
    note = f"; {run.note}" if run.note else ""
    check.that(best is not None and best >= minimum and run.error is None, expected,
               f"{best} GB/s{tries}{note}" + (f", {run.error}" if run.error else ""))


def test_allreduce_busbw(gpus, allreduce, sku, check):
    spec = _spec(sku, "allreduce")
    if not spec or len(gpus) < 2:
        pytest.skip(f"no bus-bandwidth minimum for {sku.describe()}")
    _judge_bandwidth(allreduce, spec["min_busbw_gbps"], check)


def test_allreduce_ib_loopback(gpus, vendor, health, defaults, topology_dir, host, check):
    """NCCL over IB only (no SHM, no P2P, GPUDirect RDMA) at AzNHC's minimum
    (azure_nccl_allreduce_ib_loopback.nhc@0e0a1ac26a64)."""
    spec = needs(health, "allreduce_ib_loopback")
    run = _allreduce(host, vendor, gpus, spec, defaults["ib_loopback_env"], spec["min_busbw_gbps"], topology_dir)
    _judge_bandwidth(run, spec["min_busbw_gbps"], check)
