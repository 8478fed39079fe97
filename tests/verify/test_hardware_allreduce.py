"""The all-reduce as AzNHC runs it: one message size, retried up to ``repeats`` times, the first pass wins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.verify.suites.hardware.test_collectives import _allreduce

SAMPLE = Path(__file__).resolve().parent / "samples" / "nccl-all-reduce-h100x8.txt"


@dataclass
class Result:
    rc: int
    stdout: str


class Host:
    """Answers ``test -f`` with ``topology`` and each all_reduce_perf call with the next output."""

    def __init__(self, outputs: list[str], topology: bool = True) -> None:
        self.outputs, self.topology, self.commands = outputs, topology, []

    def run(self, command: str) -> Result:
        self.commands.append(command)
        if command.startswith("test -f"):
            return Result(0 if self.topology else 1, "")
        return Result(0, self.outputs.pop(0))


def output(busbw: str) -> str:
    lines = [line.replace("minBytes 8589934592", "minBytes 17179869184") for line in SAMPLE.read_text().splitlines(True)
             if not line.lstrip().startswith("8589934592")]
    return "".join(lines).replace("458.143", busbw)


SPEC = {"min_busbw_gbps": 460.0, "repeats": 3, "message_size": "16G", "topology_file": "ndv5-topo.xml"}


def test_retries_until_the_first_pass():
    host = Host([output("401.2"), output("462.5"), output("470.0")])
    run = _allreduce(host, "nvidia", [0] * 8, SPEC, {}, 460.0, "/opt/microsoft")
    assert run.attempts == [401.2, 462.5] and run.shape == [] and run.error is None
    assert run.command.startswith("NCCL_TOPO_FILE=/opt/microsoft/ndv5-topo.xml ")
    assert run.command.endswith("all_reduce_perf -b 16G -e 16G -f 2 -g 8 -c 1")


def test_every_try_slow_is_reported_with_all_attempts():
    host = Host([output("401.2"), output("402.5"), output("399.0")], topology=False)
    run = _allreduce(host, "nvidia", [0] * 8, SPEC, {"NCCL_P2P_DISABLE": "1"}, 460.0,
                     "/opt/microsoft")
    assert run.attempts == [401.2, 402.5, 399.0] and "ndv5-topo.xml missing" in run.note
    assert run.command.startswith("NCCL_P2P_DISABLE=1 PATH=") and "NCCL_TOPO_FILE" not in run.command


def test_a_run_of_other_sizes_is_not_judged_as_the_requested_one():
    host = Host([SAMPLE.read_text()] * 3)
    run = _allreduce(host, "nvidia", [0] * 8, SPEC, {}, 460.0, "/opt/microsoft")
    assert len(run.attempts) == 3  # a refused run never counts as a pass
    assert run.shape == [f"message sizes {[2**33, 2**34]}, asked for {2**34}"]
