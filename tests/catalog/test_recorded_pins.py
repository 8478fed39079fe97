"""``builder validate`` checks pins offline against the recorded facts of the vendors' repositories
(builder/data/feeds) and what the base carries (builder/data/bases), naming the source."""

from __future__ import annotations

from builder.stack import bases, records
from tests.catalog.helpers import edit, errors_for, problems
from tests.conftest import REPO


def test_every_record_and_profile_entry_cites_a_known_source():
    assert len(records.all_records()) > 50
    assert {(p.offer, p.sku) for p in bases.profiles()} == {("ubuntu-hpc", "2204"), ("ubuntu-hpc", "2404"),
                                                            ("ubuntu-hpc", "2204-rocm"), ("ubuntu-2204", "2204-gen2")}


def test_a_pin_the_repository_does_not_carry_is_refused_with_the_source(catalog_copy):
    """libnccl2 2.30.4 exists in the CUDA repository only as +cuda13.2 and +cuda12.9 (cuda feed record S8)."""
    edit(catalog_copy, "nvidia-base.yaml", {"components.nccl": {"version": "2.30.4-1+cuda13.0"}})
    problem, dev = errors_for(catalog_copy, "nca100-infer", "components.nccl.version")
    assert "libnccl2 2.30.4" in problem.message and "libnccl-dev 2.30.4" in dev.message
    assert "2.30.4-1+cuda13.2" in problem.message and "2.30.4-1+cuda12.9" in problem.message
    assert "NVIDIA/nccl#2281" in problem.message  # the record's source


def test_a_pin_the_base_carries_is_accepted(catalog_copy):
    """ubuntu-hpc 2204 carries libnccl2 2.30.4-1+cuda13.0, built from source and held (azhpc install_nccl.sh)."""
    edit(catalog_copy, "nvidia-train.yaml", {"components.nccl": {"version": "2.30.4-1+cuda13.0"}})
    assert errors_for(catalog_copy, "ndh100-train", "components.nccl") == []


def test_doca_ofed_is_pinned_at_the_meta_package_version_the_repository_carries():
    """doca-ofed 3.2.1 is 3.2.1-044000 in the DOCA repository (doca feed record S2), not 3.2.1-1."""
    from builder.catalog.loader import load_catalog
    from builder.stack import resolve

    stack = resolve(load_catalog(REPO / "images"), "ndh100-train")
    assert [p.version for p in stack.packages["doca_ofed"]] == ["3.2.1-044000"]


def test_the_shipped_catalog_has_no_pin_the_records_contradict():
    found = [p for p in problems(REPO / "images") if p.severity == "error" and "carries" in p.message]
    assert found == []


def test_a_pin_below_what_the_base_carries_is_refused(catalog_copy):
    """#8: ubuntu-hpc 24.04 carries driver 580.173.02 and DCGM 1:4.6.0-1 (builder/data/bases); pins below them force
    downgrades (and remove the -proprietary DCGM packages)."""
    edit(catalog_copy, "ndh200-train.yaml", {"components.nvidia_driver": {"version": "580.126.16"},
                                            "components.fabric_manager": {"version": "580.126.16"},
                                            "components.dcgm": {"version": "1:4.5.2-1"}})
    found = errors_for(catalog_copy, "ndh200-train", "components")
    messages = " ".join(p.message for p in found)
    assert "downgrade" in messages and "580.173.02" in messages and "1:4.6.0-1" in messages


def test_the_shipped_24_04_image_converges_to_what_its_base_carries():
    from builder.catalog.loader import load_catalog

    model = load_catalog(REPO / "images").model("ndh200-train")
    assert model.components.nvidia_driver.version == "580.173.02"
    assert model.components.dcgm.version == "1:4.6.0-1"


def test_versions_without_a_catalog_revision_come_from_the_records_or_stay_globs():
    """No revision is made up. ROCm's and the 22.04 driver's exact strings come from the records (with
    their source); what no record gives stays an apt version glob of the pinned release."""
    from builder.catalog.loader import load_catalog
    from builder.stack import resolve

    catalog = load_catalog(REPO / "images")
    amd = {p.name: p for group in resolve(catalog, "ndmi300x-train").packages.values() for p in group}
    assert amd["rocm"].version == "6.4.4.60404-129~22.04" and "unverified" in amd["rocm"].source
    assert amd["rccl"].version == "2.22.3.60404-129~22.04"
    assert amd["amdgpu-dkms"].version == "1:6.12.12.60404-2202139.22.04"
    nvidia = {p.name: p for group in resolve(catalog, "ndh100-train").packages.values() for p in group}
    assert nvidia["nvidia-open"].version == "580.126.16-1ubuntu1"
    pinning = nvidia["nvidia-driver-pinning-580.126.16"]
    assert pinning.version == "580.126.16-*"
    assert pinning.source.startswith("catalog components.nvidia_driver: no recorded")
    assert pinning.matches("580.126.16-1") and pinning.matches("580.126.16-0ubuntu1")
    assert not pinning.matches("580.126.160-1") and not pinning.matches("580.173.02-1")
    every = [p for image in catalog.buildable() for group in resolve(catalog, image.name).packages.values()
             for p in group]
    assert not [p for p in every if p.exact and p.version.endswith("-1") and p.feed in ("amdgpu", "rocm")]
