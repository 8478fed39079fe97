"""One test (at least) per stack validation rule, on edited copies of the shipped catalog."""

from __future__ import annotations

import datetime as dt

import pytest

from builder.catalog import reference_data
from builder.catalog.rules import RULES, check_version_name
from tests.catalog.helpers import edit, errors_for, problems


def test_shipped_catalog_has_no_problems():
    """No errors; the only warnings name pins no recorded fact confirms yet (docs/recorded-feeds.md), and
    ndh200-train's dcgm-exporter, paired with DCGM 4.5.2 while its base carries DCGM 4.6.0 (no 4.6.0 tag)."""
    from pathlib import Path

    found = problems(Path("images"))
    assert [p for p in found if p.severity == "error"] == []
    pairing = [p for p in found if p.field == "components.dcgm_exporter.version"]
    assert [p.image for p in pairing] == ["ndh200-train"]
    assert all(p.message.startswith("no recorded fact confirms") for p in found if p not in pairing), \
        [p.message for p in found]


def test_every_rule_is_documented_in_readme():
    from pathlib import Path

    readme = Path("README.md").read_text()
    for rule_id, _, _ in RULES:
        assert f"`{rule_id}`" in readme, f"rule {rule_id} missing from the README rules table"


# ---- cuda-driver


def test_cuda_needs_minimum_driver(catalog_copy):
    edit(catalog_copy, "nvidia-base.yaml", {"components.nvidia_driver.version": "580.65.05"})
    edit(catalog_copy, "nvidia-train.yaml", {"components.fabric_manager.version": "580.65.05"})
    # (the base also carries a newer driver: base-downgrade names that separately)
    [problem] = [p for p in errors_for(catalog_copy, "ndh100-train", "components.nvidia_driver.version")
                 if "needs driver" in p.message]
    assert "needs driver >= 580.65.06" in problem.message and "minor_version_compat" in problem.message
    assert str(problem.file).endswith("nvidia-base.yaml")


def test_minor_version_compat_is_opt_in(catalog_copy):
    # CUDA 12.9 needs 575.51.03 in full; with minor-version compatibility any driver >= 525.60.13 runs it
    edit(catalog_copy, "nct4-infer.yaml", {"components.cuda": {"version": "12.9.1", "minor_version_compat": True},
                                           "components.nvidia_driver": {"branch": "535", "version": "535.274.02"}})
    assert errors_for(catalog_copy, "nct4-infer", "components.nvidia_driver.version") == []
    edit(catalog_copy, "nct4-infer.yaml", {"components.cuda.minor_version_compat": False})
    [problem] = errors_for(catalog_copy, "nct4-infer", "components.nvidia_driver.version")
    assert "CUDA 12.9.1 needs driver >= 575.51.03" in problem.message
    edit(catalog_copy, "nct4-infer.yaml", {"components.cuda.minor_version_compat": True,
                                           "components.nvidia_driver": {"branch": "470", "version": "470.256.02"}})
    [problem] = errors_for(catalog_copy, "nct4-infer", "components.nvidia_driver.version")
    assert "below 525.60.13, the floor for CUDA 12.x minor-version compatibility" in problem.message


def test_unknown_cuda_release(catalog_copy):
    edit(catalog_copy, "nct4-infer.yaml", {"components.cuda": {"version": "14.1.0"}})
    [problem] = errors_for(catalog_copy, "nct4-infer", "components.cuda.version")
    assert "not in the compatibility table" in problem.message


# ---- driver-branch


def test_end_of_life_branch_is_an_error(catalog_copy):
    edit(catalog_copy, "nct4-infer.yaml", {"components.nvidia_driver": {"branch": "535", "version": "535.274.02"},
                                           "components.cuda": {"version": "12.2.2"},
                                           "components.cudnn": {"version": "9.13.0.50", "cuda": "12"},
                                           "components.nccl": {"version": "2.21.5-1+cuda12.2"}})
    [problem] = errors_for(catalog_copy, "nct4-infer", "components.nvidia_driver.branch")
    assert "reached end of life on 2026-06-30" in problem.message


def test_branch_near_end_of_life_warns(catalog_copy, monkeypatch):
    monkeypatch.setattr(reference_data, "today", lambda: dt.date(2028, 7, 1))
    found = [p for p in problems(catalog_copy, "nct4-infer") if p.field == "components.nvidia_driver.branch"]
    assert [(p.severity, "reaches end of life on 2028-08-31" in p.message) for p in found] == [("warning", True)]


def test_version_off_branch(catalog_copy):
    edit(catalog_copy, "nct4-infer.yaml", {"components.nvidia_driver.branch": "570"})
    assert any("not on branch R570" in p.message
               for p in errors_for(catalog_copy, "nct4-infer", "components.nvidia_driver"))


# ---- fabric-manager


def test_fabric_manager_must_equal_driver(catalog_copy):
    edit(catalog_copy, "ndh100-train.yaml", {"components.fabric_manager": {"version": "580.95.05"}})
    found = errors_for(catalog_copy, "ndh100-train", "components.fabric_manager.version")
    assert [p for p in found if "must equal the driver version 580.126.16" in p.message]


def test_fabric_manager_required_on_nvswitch(catalog_copy):
    path = catalog_copy / "ndh100-train.yaml"
    path.write_text(path.read_text() + "components:\n  fabric_manager: null\n")
    assert any("has NVSwitch" in p.message for p in errors_for(catalog_copy, "ndh100-train", "components"))


def test_fabric_manager_refused_without_nvswitch(catalog_copy):
    edit(catalog_copy, "nca100-infer.yaml", {"components.fabric_manager": {"version": "580.126.16"}})
    [problem] = errors_for(catalog_copy, "nca100-infer", "components.fabric_manager")
    assert "only for NVSwitch SKUs" in problem.message


# ---- cuda-libraries


def test_cudnn_must_match_cuda_major(catalog_copy):
    edit(catalog_copy, "nca100-infer.yaml", {"components.cudnn": {"version": "9.13.0.50", "cuda": "12"}})
    [problem] = errors_for(catalog_copy, "nca100-infer", "components.cudnn.cuda")
    assert "use the cuda-13 build" in problem.message


@pytest.mark.parametrize(("nccl", "needle"), [("2.30.4-1+cuda12.9", "built for CUDA 12"),
                                              ("2.30.4-1+cuda13.1", "newer CUDA (13.1)")])
def test_nccl_build_matches_toolkit(catalog_copy, nccl, needle):
    edit(catalog_copy, "nca100-infer.yaml", {"components.nccl": {"version": nccl}})
    found = errors_for(catalog_copy, "nca100-infer", "components.nccl.version")
    assert [p for p in found if needle in p.message], [p.message for p in found]


# ---- hpcx


def test_hpcx_cuda_and_doca_must_match(catalog_copy):
    edit(catalog_copy, "ndh100-train.yaml", {"components.hpcx.cuda": "12", "components.hpcx.doca_ofed": "2.9"})
    fields = {p.field for p in errors_for(catalog_copy, "ndh100-train", "components.hpcx")}
    # the tarball no longer matches what the entry says either (it is the cuda13 / DOCA build)
    assert fields == {"components.hpcx.cuda", "components.hpcx.doca_ofed", "components.hpcx.download.url"}


def test_hpcx_tarball_name_matches_the_entry(catalog_copy):
    """The vendor names each build hpcx-v<ver>-gcc-<doca_ofed|mlnx_ofed>-<os>-cuda<N>-x86_64.tbz; no x86_64 build
    without -cudaNN is recorded (Azure/azhpc-images versions.json; builder/data/bases), so a URL naming another build is
    refused."""
    edit(catalog_copy, "nvidia-train.yaml", {"components.hpcx.download.url": "https://content.mellanox.com/hpc/"
                                             "hpc-x/v2.25.1/hpcx-v2.25.1-gcc-doca_ofed-ubuntu22.04-x86_64.tbz"})
    [problem] = errors_for(catalog_copy, "ndh100-train", "components.hpcx.download.url")
    assert "hpcx-v2.25.1-gcc-doca_ofed-ubuntu22.04-cuda13-x86_64.tbz" in problem.message


def test_hpcx_mlnx_ofed_cuda_build_on_an_amd_image_is_accepted():
    """Azure's MI300X image uses the CUDA 12 / MLNX_OFED build of HPC-X 2.18 (azhpc versions.json hpcx_amd)."""
    from builder.catalog.loader import load_catalog
    from tests.catalog.helpers import problems
    from tests.conftest import REPO

    assert load_catalog(REPO / "images").model("ndmi300x-train").components.hpcx.doca_ofed is None
    assert [p for p in problems(REPO / "images", "ndmi300x-train") if p.severity == "error"] == []


# ---- kind


def test_amd_image_refuses_cuda(catalog_copy):
    edit(catalog_copy, "ndmi300x-train.yaml", {"components.cuda": {"version": "13.0.2"}})
    assert any("does not belong on a gpu-amd image" in p.message
               for p in errors_for(catalog_copy, "ndmi300x-train", "components.cuda"))


def test_cpu_image_refuses_gpu_stack(catalog_copy):
    edit(catalog_copy, "cpu-infer.yaml", {"components.rocm": {"version": "6.4.4"}})
    assert any("does not belong on a cpu image" in p.message
               for p in errors_for(catalog_copy, "cpu-infer", "components.rocm"))


def test_gpu_image_cannot_target_cpu_sku(catalog_copy):
    edit(catalog_copy, "nca100-infer.yaml", {"target_skus": ["Standard_F32s_v2"]})
    assert any("has no GPU" in p.message for p in errors_for(catalog_copy, "nca100-infer", "target_skus[0]"))


# ---- fabric-stack, purpose


def test_inference_images_avoid_infiniband(catalog_copy):
    edit(catalog_copy, "nca100-infer.yaml", {"target_skus": ["Standard_ND96asr_v4"]})
    messages = [p.message for p in errors_for(catalog_copy, "nca100-infer", "target_skus[0]")]
    assert any("must not target InfiniBand SKUs" in m for m in messages)


def test_infiniband_stack_needs_infiniband_sku(catalog_copy):
    edit(catalog_copy, "nca100-infer.yaml", {"components.doca_ofed": {"version": "3.2.1"}})
    found = errors_for(catalog_copy, "nca100-infer", "components.doca_ofed")
    assert [p for p in found if "needs an InfiniBand target SKU" in p.message]


def test_cpu_purpose_picks_vm_family(catalog_copy):
    edit(catalog_copy, "cpu-train.yaml", {"target_skus": ["Standard_F32s_v2"]})
    [problem] = errors_for(catalog_copy, "cpu-train", "target_skus[0]")
    assert "target memory-optimized sizes" in problem.message


# ---- open-modules


def test_hopper_needs_open_modules(catalog_copy):
    edit(catalog_copy, "nch100-infer.yaml", {"components.nvidia_driver.flavor": "proprietary"})
    [problem] = errors_for(catalog_copy, "nch100-infer", "components.nvidia_driver.flavor")
    assert "needs the open kernel modules" in problem.message
    edit(catalog_copy, "nct4-infer.yaml", {"components.nvidia_driver.flavor": "proprietary"})
    assert errors_for(catalog_copy, "nct4-infer", "components.nvidia_driver.flavor") == []


# ---- sku-known


def test_unknown_sku_suggests(catalog_copy):
    edit(catalog_copy, "nct4-infer.yaml", {"target_skus": ["Standard_NC4as_T4_v2"], "build.vm_size": "Standard_X"})
    found = errors_for(catalog_copy, "nct4-infer", "")
    assert any("unknown SKU 'Standard_NC4as_T4_v2'; did you mean 'Standard_NC4as_T4_v3'" in p.message for p in found)
    assert any(p.field == "build.vm_size" for p in found)


# ---- gallery


def test_gallery_rules(catalog_copy):
    edit(catalog_copy, "cpu-infer.yaml", {
        "gallery.gallery": "ai-images",
        "gallery.definition": "-bad",
        "gallery.target_regions": [{"name": "eastus2", "replicas": 0}, {"name": "East US 2"},
                                   {"name": "westus9"}],
    })
    by_field = {p.field: p.message for p in errors_for(catalog_copy, "cpu-infer", "gallery")}
    assert "gallery name 'ai-images' is invalid" in by_field["gallery.gallery"]
    assert "definition name '-bad' is invalid" in by_field["gallery.definition"]
    assert "replica count must be >= 1" in by_field["gallery.target_regions[0].replicas"]
    assert "listed twice" in by_field["gallery.target_regions[1].name"]
    assert "unknown region 'westus9'" in by_field["gallery.target_regions[2].name"]


@pytest.mark.parametrize(("version", "ok"), [("2026.1129.0", True), ("0.0.0", True), ("2147483647.1.1", True),
                                             ("2147483648.1.1", False), ("1.2", False), ("v1.2.3", False),
                                             ("1.2.3.4", False), ("1.-2.3", False)])
def test_gallery_version_names(version, ok):
    assert (check_version_name(version) is None) is ok


# ---- base


def test_layered_base_must_exist_and_be_buildable(catalog_copy):
    edit(catalog_copy, "cpu-infer.yaml", {"base": {"image": "cpu-trian"}})
    path = catalog_copy / "cpu-infer.yaml"
    path.write_text(path.read_text().replace("base:\n", "base:\n  marketplace: null\n"))
    path = catalog_copy / "cpu-infer.yaml"
    [problem] = errors_for(catalog_copy, "cpu-infer", "base.image")
    assert "did you mean 'cpu-train'" in problem.message
    path.write_text(path.read_text().replace("cpu-trian", "base-dsvm"))
    [problem] = errors_for(catalog_copy, "cpu-infer", "base.image")
    assert "is abstract" in problem.message
