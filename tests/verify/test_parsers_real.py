"""Parsers and verdict rules on real tool outputs in tests/verify/samples (each file's first line names its public
source; none is read from outside the repository, so CI runs them all). Verdicts are the ones Azure's health
checks reach on them."""

from __future__ import annotations

import json
import math
from datetime import datetime
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
    system,
    topology,
)
from builder.verify.parsers.errors import ParseError
from builder.verify.sku import BENIGN_THROTTLE_REASONS, FATAL_XIDS, RETIRED_PAGES_FULL
from builder.verify.suites.hardware import rules

SAMPLES = Path(__file__).resolve().parent / "samples"


def real(name: str) -> str:
    """A sample (tests/verify/samples; each names its public source on its first line) without its ``#@`` lines."""
    text = (SAMPLES / name).read_text()
    assert text.startswith("#@ SOURCE: "), f"{name} does not name its source"
    return "".join(line for line in text.splitlines(True) if not line.startswith("#@ "))


# ---------------------------------------------------------------- nccl-tests


def test_nccl_old_layout_error_column_is_not_a_wrong_count():
    result = nccl_tests.parse(real("nccl-all-reduce-old-error-column-issue176.txt"))
    assert result.error_column == "error" and len(result.rows) == 6
    assert result.wrong == 0 and {r.oop_wrong for r in result.rows} == {None}
    assert result.rows[-1].busbw == pytest.approx(2.22) and rules.correctness_problems(result) == []


def test_nccl_current_layout():
    result = nccl_tests.parse(real("nccl-all-reduce-issue252.txt"))
    assert [r.size_bytes for r in result.rows] == [2**29, 2**30, 2**31, 2**32, 2**33]
    assert result.avg_busbw == pytest.approx(95.3009) and result.out_of_bounds == 0 and result.wrong == 0
    assert rules.bus_bandwidth(result) == pytest.approx(95.3009)  # what AzNHC compares, not the last row
    assert rules.run_shape_problems(result, ranks=8, size=2**33) == [
        f"message sizes {[2**29, 2**30, 2**31, 2**32, 2**33]}, asked for {2**33}"]


def test_nccl_wrong_count_printed_with_g():
    text = real("nccl-all-reduce-issue252.txt").replace("94.80      0", "94.80  1.04858e+06")
    result = nccl_tests.parse(text)
    assert result.rows[-1].ip_wrong == 1048580 and rules.correctness_problems(result) == ["1048580 wrong"]


def test_nccl_in_place_not_validated():
    result = nccl_tests.parse(real("nccl-all-reduce-5090-na-issue287.txt"))
    row = result.rows[0]
    assert (row.oop_wrong, row.ip_wrong, result.avg_busbw) == (0, None, 0)
    assert (result.ranks, result.nodes, result.n_gpus, result.min_bytes) == (1, 1, 1, 33554432)
    assert result.devices == ["NVIDIA GeForce RTX 5090"]


def test_nccl_failed_line_and_two_nodes():
    text = real("nccl-all-reduce-5090-na-issue287.txt").replace("0 OK", "3 FAILED").replace(
        "#\n#   ", "#  Rank  1 Group  0 Pid 1 on   GENOA-02 device  0 [0x01] NVIDIA GeForce RTX 5090\n#\n#   ", 1)
    result = nccl_tests.parse(text)
    assert rules.correctness_problems(result) == ["3 out of bounds"]
    assert rules.run_shape_problems(result, ranks=1, size=33554432) == ["2 ranks, asked for 1", "2 nodes, asked for 1"]


def test_nccl_unreadable_row_is_a_parse_error():
    with pytest.raises(ParseError, match="all_reduce_perf"):
        nccl_tests.parse(real("nccl-all-reduce-issue252.txt").replace("93.46      0", "93.46  lots"))


# ---------------------------------------------------------------- dcgmi diag -j


def test_dcgm4_json_entity_results():
    tests = dcgmi.parse_diag(real("dcgmi-diag-j-dcgm4-issue215.json"))
    assert [(t.name, t.result, t.passed) for t in tests] == [("diagnostic", "Pass", True)]


def test_dcgm4_json_failing_entity_fails_the_test():
    data = json.loads(real("dcgmi-diag-j-dcgm4-issue215.json"))
    result = data["DCGM Diagnostic"]["test_categories"][0]["tests"][0]["results"][5]
    result.update(status="Fail", warnings=[{"warning": "GPU 5 stressed", "error_id": 1, "error_category": 1,
                                            "error_severity": 1}])
    tests = dcgmi.parse_diag(json.dumps(data))
    assert [(t.result, t.detail) for t in tests] == [("Fail", "GPU 5: GPU 5 stressed")]


def test_dcgm3_json_after_text_with_null_entries():
    data = json.loads(real("dcgmi-diag-j-dcgm3-gcm.json"))
    tests_list = data["DCGM GPU Diagnostic"]["test_categories"][0]["tests"]
    tests_list.insert(0, None)
    tests_list[1]["results"].append(None)
    data["DCGM GPU Diagnostic"]["test_categories"].append(None)
    tests = dcgmi.parse_diag("text dcgmi printed before the document\n" + json.dumps(data))
    assert len(tests) == 9
    assert [(t.name, t.result) for t in tests if not t.passed] == [("Persistence Mode", "Fail"),
                                                                   ("Environment Variables", "Warn")]


def test_dcgm_json_without_results_is_a_parse_error():
    with pytest.raises(ParseError, match="dcgmi diag"):
        dcgmi.parse_diag('{"DCGM Diagnostic": {"test_categories": [null], "runtime_error": "host engine"}}')


# ---------------------------------------------------------------- nvidia-smi -q, nvlink


@pytest.mark.parametrize("name, reasons", [
    ("nvidia-smi-q-h100x8-535.161.08-hwslowdown.txt", ["HW Slowdown, HW Power Brake Slowdown"] * 8),
    ("nvidia-smi-q-h100x8-535.183.01.txt", ["HW Power Brake Slowdown, SW Thermal Slowdown"])])
def test_nvidia_smi_q_throttle_reasons(name, reasons):
    gpus = nvsmi_query.parse(real(name))
    assert len(gpus) == 8 and {g.name for g in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert {g.get("Persistence Mode") for g in gpus} == {"Enabled"}
    assert [w.split(": ", 1)[1] for w in rules.throttle_warnings(gpus, list(BENIGN_THROTTLE_REASONS))] == reasons
    assert rules.ecc_problems(gpus, 20000000, 10000, RETIRED_PAGES_FULL) == []
    assert {g.ecc("Aggregate", "SRAM", "Uncorrectable") for g in gpus} == {0}


def test_nvidia_smi_q_ecc_thresholds_and_remap():
    text = real("nvidia-smi-q-h100x8-535.183.01.txt")
    text = text.replace("DRAM Correctable              : 0", "DRAM Correctable              : 20000001", 1)
    text = text.replace("Remapping Failure Occurred        : No", "Remapping Failure Occurred        : Yes", 1)
    problems = rules.ecc_problems(nvsmi_query.parse(text), 20000000, 10000, RETIRED_PAGES_FULL)
    first = nvsmi_query.parse(text)[0].bus_id
    assert problems == [f"GPU {first}: row remapping failed",
                        f"GPU {first}: volatile DRAM errors [20000001, 0] (max 20000000)"]


def test_retired_pages_as_aznhc_judges_them():
    bad = nvsmi_query.parse(real("nvidia-smi-q-page-retirement-aznhc-bad.txt"))
    problems = rules.ecc_problems(bad, 20000000, 10000, RETIRED_PAGES_FULL)
    # check_SDBE_ecc: single + double >= 62 and pending Yes (GPU 4: 6 pages pending is below the table size)
    assert [p.split(":")[0] for p in problems] == ["GPU 00000002", "GPU 00000006", "GPU 00000008"]
    good = nvsmi_query.parse(real("nvidia-smi-q-page-retirement-aznhc-good.txt"))
    assert rules.ecc_problems(good, 20000000, 10000, RETIRED_PAGES_FULL) == []


def test_nvlink_samples():
    assert nvidia_smi.parse_nvlink_status(real("nvlink-status-a10-empty.txt")) == {}
    inactive = nvidia_smi.parse_nvlink_status(real("nvlink-status-a100-aznhc-bad-all-inactive.txt"))
    assert inactive == {6: []}  # "all links are inactive": the GPU has no link, a failure on NVLink sizes
    good = nvidia_smi.parse_nvlink_status(real("nvlink-status-a100-aznhc-good-gpu7.txt"))
    assert [len(v) for v in good.values()] == [12] and all(link.active for link in good[7])
    full = nvidia_smi.parse_nvlink_status(real("nvlink-status-a100-sxm4-80gb-8gpu-allactive.txt"))
    assert sorted(full) == list(range(8)) and {link.speed_gbps for v in full.values() for link in v} == {25.0}


# ---------------------------------------------------------------- ibstat


@pytest.mark.parametrize("name, ib_active_400, other", [
    ("ibstat-h100-ndr400-8ib-all-active.txt", 8, 1),
    ("ibstat-h100-ndr400-12hca-roce-all-active.txt", 0, 12),
    ("ibstat-h100-ndr400-ib-3eth-down.txt", 8, 4),
    ("ibstat-h100-ndr400-roce-2down.txt", 0, 12)])
def test_ibstat_samples(name, ib_active_400, other):
    ports = infiniband.parse_ibstat(real(name))
    ib = [p for p in ports if p.link_layer == "InfiniBand" and p.active and p.rate_gbps == 400]
    assert len(ib) == ib_active_400 and len(ports) - len(ib) == other


def test_ibstat_azure_nd_a100_v4_named_ports():
    ports = infiniband.parse_ibstat(real("ibstat-azure-ndv4-a100-hdr200-ibpanic.txt"))
    names = {f"mlx5_ib{i}:1": 200 for i in range(8)}  # conf/nd96asr_v4.conf:25-32: Azure names them mlx5_ib*
    assert all(p.rate_gbps == 200 and p.active for p in ports if p.link_layer == "InfiniBand")
    assert rules.ib_port_problems(ports, names) == [f"{n} missing" for n in names]  # this host names them mlx5_*
    assert rules.ib_port_problems(ports, {f"{p.ca}:{p.port}": 200 for p in ports
                                          if p.link_layer == "InfiniBand"}) == []


# ---------------------------------------------------------------- kernel log, syslog


def test_xid_119_in_dmesg():
    events = kernel_log.parse_xids(real("dmesg-xid119-gpud.log"))
    assert len(events) == 5 and {(e.code, e.pci) for e in events} == {(119, "PCI:0000:9b:00")}
    assert (events[0].time, events[-1].time) == (datetime(2025, 2, 23, 16, 24, 18), datetime(2025, 2, 23, 16, 30, 13))
    assert kernel_log.fatal_xids(events, set(FATAL_XIDS)) == events
    assert kernel_log.fatal_xids(events, set(FATAL_XIDS), since=datetime(2025, 2, 23, 16, 30)) == events[-1:]
    assert kernel_log.fatal_xids(events, {79}) == []


def test_link_flapping_syslogs():
    flaps = kernel_log.link_flaps(real("syslog-ib6-6flap-aznhc.txt"))
    assert flaps == {"ib6": 6} and rules.link_flap_problems(flaps, 5) == ["ib6: 6 lost carrier"]
    assert rules.link_flap_problems(flaps, 7) == []
    assert kernel_log.link_flaps(real("syslog-0flap-aznhc.txt")) == {}
    assert kernel_log.parse_xids(real("syslog-0flap-aznhc.txt")) == []


# ---------------------------------------------------------------- nvbandwidth, ib_write_bw, host tools


def test_nvbandwidth_host_device_below_the_h100_minimum():
    tests = nvbandwidth.parse(real("nvbandwidth-rtx4090x8-issue15.txt"))
    assert set(tests) == {rules.H2D, rules.D2H} and tests[rules.H2D].total == pytest.approx(205.04)
    assert min(v for *_, v in tests[rules.H2D].cells()) == pytest.approx(23.90)
    problems = rules.copy_bandwidth_problems(tests, 48, 335)
    assert len(problems) == 17 and problems[-1] == f"{rules.P2P}: no result"
    assert rules.copy_bandwidth_problems(tests, 23.0, None) == []


def test_nvbandwidth_peer_matrix():
    matrix = nvbandwidth.parse(real("nvbandwidth-a6000x6-d2d-issue50.txt"))[rules.P2P]
    cells = matrix.cells()
    assert len(cells) == 30 and all(r != c for r, c, _ in cells)
    assert min(v for *_, v in cells) == pytest.approx(21.80) and math.isnan(matrix.rows[0][0])


def test_ib_write_bw_table():
    rows = perftest.parse(real("ib_write_bw-issue273.txt"))
    assert [(r.size_bytes, r.iterations, r.average_gbps) for r in rows] == [(8, 224958464, 0.48)]
    with pytest.raises(ParseError, match="ib_write_bw"):
        perftest.parse("Couldn't connect to localhost:18510\n")


def test_host_tools_of_the_build_vm():
    assert system.parse_free(real("free-k-build-vm.txt")) == system.Memory(24683584, 0)
    assert system.nvme_namespaces(real("lsblk-build-vm.txt")) == []
    assert system.nvme_namespaces("nvme0n1\nnvme1n1\nnvme1n2\nsda\n") == ["nvme0n1", "nvme1n1"]
    assert system.parse_ip_link(real("ip-o-link-build-vm.txt")) == {"lo": "UNKNOWN", "ifb0": "DOWN", "ifb1": "DOWN"}
    with pytest.raises(ParseError):
        system.parse_nproc("nproc: command not found")


# ---------------------------------------------------------------- topology (lstopo, topology file)


def _by_numa(devices) -> dict[str, int | None]:
    return {d.busid: d.numa for d in devices}


def test_lstopo_gpus_on_two_numa_nodes_with_domains():
    devices = topology.parse_lstopo(real("lstopo-power8-4gpu-hwloc.txt"))
    assert _by_numa(devices) == {"0002:01:00.0": 0, "0003:01:00.0": 0, "000a:01:00.0": 1, "000b:01:00.0": 1}
    assert {d.kind for d in devices} == {"3D"}


def test_lstopo_without_domains_and_with_gpu_and_hca_on_node_1():
    by_numa = _by_numa(topology.parse_lstopo(real("lstopo-2numa-gpu-ib-hwloc.txt")))
    assert by_numa["0000:84:00.0"] == 1 and by_numa["0000:04:00.0"] == 1  # domain 0000 is not printed
    assert by_numa["0000:03:00.0"] == 0
    assert _by_numa(topology.parse_lstopo(real("lstopo-build-vm.txt"))) == {"0000:00:02.0": 0, "0000:00:03.0": 0}


def test_lstopo_device_of_a_package_without_memory_has_no_numa_node():
    """AzNHC takes the last NUMANode line printed; the tree gives a memory-less package's devices none."""
    by_numa = _by_numa(topology.parse_lstopo(real("lstopo-irregular-groups-hwloc.txt")))
    assert by_numa["0000:01:00.0"] == 0 and by_numa["0001:02:00.0"] == 1
    assert by_numa["0002:01:00.0"] is None and by_numa["0003:01:00.0"] is None  # "Group0 L#1 + Package L#3"


def test_topology_file_endpoints_by_numa_node():
    expected = topology.parse_topology_file(real("topology-ndv5-layout.xml"))
    assert len(expected) == 16 and "ffff:ff:01.0" not in _by_numa(expected)  # bridges are not endpoints
    assert _by_numa(expected)["0008:00:00.0"] == 0 and _by_numa(expected)["0108:00:00.0"] == 1
    with pytest.raises(ParseError, match="topology file"):
        topology.parse_topology_file("<system><cpu numaid='x'><pci busid='0001:00:00.0'/></cpu></system>")


def test_topology_verdict_names_the_misplaced_and_the_missing_device():
    expected = topology.parse_topology_file(real("topology-ndv5-layout.xml"))
    found = [topology.PciDevice(d.busid, d.numa) for d in expected if d.busid != "0105:00:00.0"]
    assert rules.topology_problems(expected, found) == ["PCI 0105:00:00.0 (NUMA node 1): not present"]
    found = [topology.PciDevice(d.busid, 1 - d.numa if d.busid == "0001:00:00.0" else d.numa) for d in expected]
    assert rules.topology_problems(expected, found) == ["PCI 0001:00:00.0: on NUMA node 1, expected 0"]
    # a real lstopo of another machine has none of Azure's devices
    other = topology.parse_lstopo(real("lstopo-power8-4gpu-hwloc.txt"))
    assert len(rules.topology_problems(expected, other)) == 16
