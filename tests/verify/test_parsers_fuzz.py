"""Malformed tool output never escapes a parser (or the verdict rules on what it returns) as anything but the
suite's own ParseError: a seeded mutation loop over the real samples (hypothesis is not in the project's venv)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.verify.parsers import (
    dcgmi,
    infiniband,
    kernel_log,
    nccl_tests,
    nvbandwidth,
    nvidia_smi,
    nvsmi_query,
    perftest,
    rocm_smi,
    system,
    topology,
)
from builder.verify.parsers.errors import ParseError
from builder.verify.suites.hardware import rules

SAMPLES = Path(__file__).resolve().parent / "samples"
ROUNDS = 250
JUNK = ["", "N/A", "nan", "-nan", "inf", "1e+999", "-1", "1.04858e+06", "0x8", "²", "٣", "\x00", "{", "}", "[",
        "null", ":", "|", "#", "FAILED", "Active", "GPU 00000000:19:00.0", "Running x.", "SUM x 1", "\t", "é"]


def _nccl(text: str) -> None:
    result = nccl_tests.parse(text)
    rules.correctness_problems(result), rules.run_shape_problems(result, 8, 2**34), rules.bus_bandwidth(result)


def _smi_q(text: str) -> None:
    gpus = nvsmi_query.parse(text)
    rules.ecc_problems(gpus, 20000000, 10000, 62), rules.throttle_warnings(gpus, ["Idle"])


def _ibstat(text: str) -> None:
    rules.ib_port_problems(infiniband.parse_ibstat(text), {"mlx5_ib0:1": 400})


def _nvbw(text: str) -> None:
    rules.copy_bandwidth_problems(nvbandwidth.parse(text), 48, 335)


def _kernel(text: str) -> None:
    kernel_log.fatal_xids(kernel_log.parse_xids(text), {119}), rules.link_flap_problems(kernel_log.link_flaps(text), 5)


def _perftest(text: str) -> None:
    [row.average_gbps for row in perftest.parse(text)]


def _system(text: str) -> None:
    for parse in (system.parse_free, system.parse_ip_link, system.parse_nproc, system.nvme_namespaces):
        with contextlib.suppress(ParseError):
            parse(text)


def _topology_file(text: str) -> None:
    expected = topology.parse_topology_file(text)
    rules.topology_problems(expected, expected[:3])


PARSERS: dict[str, tuple[Callable[[str], object], list[str]]] = {
    "nccl-tests": (_nccl, ["nccl-all-reduce-issue252.txt", "nccl-all-reduce-old-error-column-issue176.txt",
                           "nccl-all-reduce-5090-na-issue287.txt", "nccl-all-reduce-h100x8.txt"]),
    "dcgmi": (lambda t: [x.passed for x in dcgmi.parse_diag(t)],
              ["dcgmi-diag-j-dcgm4-issue215.json", "dcgmi-diag-j-dcgm3-gcm.json", "dcgmi-diag-r1-dcgm4.txt"]),
    "nvidia-smi -q": (_smi_q, ["nvidia-smi-q-page-retirement-aznhc-bad.txt", "nvidia-smi-q-h100x8-535.183.01.txt"]),
    "nvidia-smi csv": (nvidia_smi.parse_query_gpu, ["nvidia-smi-query-h100x8-header-persistence-off.csv"]),
    "nvlink": (nvidia_smi.parse_nvlink_status, ["nvlink-status-a100-aznhc-good-gpu7.txt"]),
    "ibstat": (_ibstat, ["ibstat-h100-ndr400-ib-3eth-down.txt", "ibstat-ndv5.txt"]),
    "rocm-smi": (rocm_smi.parse_productname, ["rocm-smi-productname-mi300x.json", "rocm-smi-productname-mi300x.txt"]),
    "nvbandwidth": (_nvbw, ["nvbandwidth-rtx4090x8-issue15.txt", "nvbandwidth-a6000x6-d2d-issue50.txt"]),
    "kernel log": (_kernel, ["dmesg-xid119-gpud.log", "syslog-ib6-6flap-aznhc.txt"]),
    "ib_write_bw": (_perftest, ["ib_write_bw-issue273.txt"]),
    "host tools": (_system, ["free-k-build-vm.txt", "ip-o-link-build-vm.txt"]),
    "lstopo": (topology.parse_lstopo, ["lstopo-irregular-groups-hwloc.txt", "lstopo-power8-4gpu-hwloc.txt"]),
    "topology file": (_topology_file, ["topology-ndv5-layout.xml"]),
}


def _sample(name: str) -> str:
    """The sample without its ``#@`` source lines (an XML document cannot start with one)."""
    return "".join(line for line in (SAMPLES / name).read_text().splitlines(True) if not line.startswith("#@ "))


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits: cut, drop/duplicate/swap lines, replace tokens, insert junk, prefix text."""
    for _ in range(rng.randint(1, 3)):
        lines = text.splitlines(True) or [""]
        kind = rng.randrange(7)
        if kind == 0:
            text = text[:rng.randrange(len(text) + 1)]
        elif kind == 1:
            del lines[rng.randrange(len(lines))]
            text = "".join(lines)
        elif kind == 2:
            i = rng.randrange(len(lines))
            text = "".join(lines[:i] + [lines[i]] * rng.randint(2, 4) + lines[i + 1:])
        elif kind == 3:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
        elif kind == 4:  # mostly a token of a line with numbers: where the parsers convert
            numeric = [n for n, line in enumerate(lines) if any(ch.isdigit() for ch in line)]
            i = rng.choice(numeric) if numeric and rng.random() < 0.8 else rng.randrange(len(lines))
            tokens = lines[i].split(" ")
            tokens[rng.randrange(len(tokens))] = rng.choice(JUNK)
            lines[i] = " ".join(tokens)
            text = "".join(lines)
        elif kind == 5:
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(JUNK) + text[at:]
        else:
            text = rng.choice(["WARNING: something\n", "Error: Unable to connect\n", "\n\n", "}\n"]) + text
    return text


@pytest.mark.parametrize("tool", list(PARSERS))
def test_malformed_output_gives_a_parse_error(tool):
    parse, names = PARSERS[tool]
    texts = [t for t in map(_sample, names) if t is not None]
    if not texts:
        pytest.skip("samples not here")
    rng = random.Random(f"builder-verify-{tool}")  # seeded: a failure reproduces
    for text in texts:
        for round_ in range(ROUNDS if len(text) < 20000 else ROUNDS // 6):  # nvidia-smi -q: 1,600 lines
            bad = mutate(text, rng)
            try:
                parse(bad)
            except ParseError:
                pass
            except Exception as exc:
                pytest.fail(f"{tool}: {type(exc).__name__}: {exc} on mutation {round_} of a sample:\n{bad[:2000]}")


@pytest.mark.parametrize("tool", [t for t in PARSERS if t not in ("nvidia-smi -q", "host tools")])
def test_every_number_replaced_by_junk(tool):
    """Each token of eight numeric lines replaced by each junk value: where the parsers convert numbers."""
    parse, names = PARSERS[tool]
    text = _sample(names[0])
    lines = text.splitlines(True)
    numeric = [n for n, line in enumerate(lines) if any(ch.isdigit() for ch in line) and len(line) < 400]
    for n in random.Random(tool).sample(numeric, min(8, len(numeric))):
        tokens = lines[n].split(" ")
        for t in range(len(tokens)):
            if not tokens[t].strip():
                continue
            for junk in JUNK:
                bad = "".join([*lines[:n], " ".join([*tokens[:t], junk, *tokens[t + 1:]]), *lines[n + 1:]])
                try:
                    parse(bad)
                except ParseError:
                    pass
                except Exception as exc:
                    pytest.fail(f"{tool}: {type(exc).__name__}: {exc} with {junk!r} for token {t} of line {n}")
