"""Parsers on real-format output samples (tests/verify/samples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.verify.parsers import dcgmi, infiniband, nccl_tests, nvidia_smi, rocm_smi

SAMPLES = Path(__file__).resolve().parent / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_query_gpu_noheader():
    gpus = nvidia_smi.parse_query_gpu(sample("nvidia-smi-query-h100x8.csv"))
    assert [g.index for g in gpus] == list(range(8))
    assert {g.name for g in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert {g.driver_version for g in gpus} == {"580.126.16"}
    assert all(g.persistence_mode == "Enabled" and g.ecc_mode == "Enabled" for g in gpus)
    assert gpus[0].memory_mib == 81559 and gpus[7].bus_id == "00000008:00:00.0"


def test_query_gpu_header_and_units():
    gpus = nvidia_smi.parse_query_gpu(sample("nvidia-smi-query-h100x8-header-persistence-off.csv"))
    assert len(gpus) == 8
    assert [g.index for g in gpus if g.persistence_mode != "Enabled"] == [3]
    assert gpus[0].memory_mib == 81559


def test_query_gpu_rejects_wrong_columns():
    with pytest.raises(ValueError, match="columns"):
        nvidia_smi.parse_query_gpu("0, NVIDIA H200, 580.126.16\n")


def test_query_gpu_empty_is_no_gpus():
    assert nvidia_smi.parse_query_gpu("") == []


def test_nvlink_status_all_active():
    links = nvidia_smi.parse_nvlink_status(sample("nvlink-status-h100x8.txt"))
    assert sorted(links) == list(range(8))
    assert all(len(items) == 18 and all(link.active for link in items) for items in links.values())
    assert links[0][0].speed_gbps == pytest.approx(26.562)


def test_nvlink_status_inactive_links():
    links = nvidia_smi.parse_nvlink_status(sample("nvlink-status-inactive.txt"))
    assert [link.link for link in links[0] if not link.active] == [4, 5]


def test_nccl_tests_threshold_run():
    result = nccl_tests.parse(sample("nccl-all-reduce-h100x8.txt"))
    assert result.n_gpus == 8 and len(result.devices) == 8
    assert [row.size_bytes for row in result.rows] == [8589934592, 17179869184]
    assert result.peak_busbw == pytest.approx(461.58)
    assert result.avg_busbw == pytest.approx(458.143)
    assert result.out_of_bounds == 0 and all(row.wrong == 0 for row in result.rows)


def test_nccl_tests_sweep_peak_is_largest_message():
    result = nccl_tests.parse(sample("nccl-all-reduce-nccl212-sweep.txt"))
    assert result.max_size == 134217728
    assert result.peak_busbw == pytest.approx(21.90)
    assert result.avg_busbw == pytest.approx(7.82514)
    assert result.devices == ["NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe"]


def test_nccl_tests_wrong_results_counted():
    text = sample("nccl-all-reduce-h100x8.txt").replace("461.58      0", "461.58      3")
    assert nccl_tests.parse(text).rows[-1].wrong == 3


def test_nccl_tests_without_rows_is_an_error():
    with pytest.raises(ValueError):
        nccl_tests.parse("# nThread 1 nGpus 8\nNCCL failure common.cu:1008 'unhandled system error'\n")


def test_ibstat_ndv5():
    ports = infiniband.parse_ibstat(sample("ibstat-ndv5.txt"))
    ib = [p for p in ports if p.link_layer == "InfiniBand"]
    assert len(ports) == 9 and len(ib) == 8
    assert all(p.active and p.rate_gbps == 400 and p.physical_state == "LinkUp" for p in ib)
    assert next(p for p in ports if p.link_layer == "Ethernet").ca == "mlx5_an0"


def test_ibstat_port_down():
    ports = infiniband.parse_ibstat(sample("ibstat-one-port-down.txt"))
    down = [p for p in ports if not p.active]
    assert [(p.ca, p.state, p.rate_gbps) for p in down] == [("mlx5_ib5", "Down", 10)]


def test_ibv_devinfo():
    ports = infiniband.parse_ibv_devinfo(sample("ibv_devinfo-two-hcas.txt"))
    assert [(p.ca, p.port, p.state, p.active) for p in ports] == [
        ("mlx5_ib0", 1, "PORT_ACTIVE", True), ("mlx5_ib1", 1, "PORT_DOWN", False)]
    assert {p.link_layer for p in ports} == {"InfiniBand"}


@pytest.mark.parametrize("name", ["dcgmi-diag-r1-dcgm3.txt", "dcgmi-diag-r1-dcgm4.txt"])
def test_dcgmi_diag_pass(name):
    tests = dcgmi.parse_diag(sample(name))
    assert tests and all(t.passed for t in tests)


def test_dcgmi_diag_dcgm4_metadata_is_not_a_test():
    text = sample("dcgmi-diag-r1-dcgm4.txt")
    assert [t.name for t in dcgmi.parse_diag(text)] == ["software"]
    assert dcgmi.version(text) == "4.5.2"


def test_dcgmi_diag_failure_with_warning():
    tests = dcgmi.parse_diag(sample("dcgmi-diag-r1-persistence-fail.txt"))
    failed = [t for t in tests if not t.passed]
    assert [t.name for t in failed] == ["Persistence Mode"]
    assert "Persistence mode for GPU 3 is disabled" in failed[0].detail


def test_dcgmi_diag_per_gpu_failure_fails_the_test():
    text = sample("dcgmi-diag-r1-dcgm4.txt").replace("GPU5: Pass", "GPU5: Fail")
    assert [t.result for t in dcgmi.parse_diag(text)] == ["Fail"]


def test_dcgmi_diag_json():
    data = '{"DCGM GPU Diagnostic": {"test_categories": [{"category": "Deployment", "tests": [' \
           '{"name": "software", "results": [{"gpu_id": 0, "status": "Pass"}, {"gpu_id": 1, "status": "Fail", ' \
           '"warnings": "bad"}]}]}]}}'
    assert [(t.name, t.result) for t in dcgmi.parse_diag(data)] == [("software", "Fail")]


def test_dcgmi_diag_error_output():
    with pytest.raises(ValueError):
        dcgmi.parse_diag("Error: Unable to connect to host engine. Host engine connection invalid/disconnected.\n")


@pytest.mark.parametrize("name", ["rocm-smi-productname-mi300x.json", "rocm-smi-productname-mi300x.txt"])
def test_rocm_smi_productname(name):
    gpus = rocm_smi.parse_productname(sample(name))
    assert [g.card for g in gpus] == list(range(8))
    assert {g.series for g in gpus} == {"AMD Instinct MI300X OAM"}
    assert {g.model for g in gpus} == {"0x74a1"}


def test_rocm_smi_no_gpus():
    with pytest.raises(ValueError):
        rocm_smi.parse_productname("WARNING: No AMD GPUs specified\n")
