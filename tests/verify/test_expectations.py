"""Expectations come from the catalog, skus.yaml, builder/stack/packages.py and the role defaults, nothing else."""

from __future__ import annotations

import pytest
import yaml

from builder.catalog.loader import load_catalog
from builder.errors import InputError
from builder.paths import ROLES_DIR
from builder.stack.packages import packages_for
from builder.stack.records import exact_versions
from builder.stack.settings import _defaults
from builder.verify.expectations import build_expectations


def test_packages_follow_packages_py(shipped_catalog):
    exp = build_expectations(shipped_catalog, "ndh100-train")
    comps = shipped_catalog.model("ndh100-train").components.model_dump(mode="json", exclude_none=True)
    os_name = shipped_catalog.model("ndh100-train").os.value
    table = [(p.name, p.version) for group in exact_versions(packages_for(comps), os_name).values() for p in group]
    assert [(p["name"], p["version"]) for p in exp["packages"]] == table
    assert exp["nvswitch"] and exp["infiniband"]
    assert exp["cuda"]["home"].endswith(exp["cuda"]["release"])


def test_pin_change_in_catalog_moves_expectation(catalog_copy):
    path = catalog_copy / "nvidia-base.yaml"
    data = yaml.safe_load(path.read_text())
    data["components"]["container_toolkit"]["version"] = "1.17.9-1"
    path.write_text(yaml.safe_dump(data))
    exp = build_expectations(load_catalog(catalog_copy), "ndh100-train")
    versions = {p["name"]: p["version"] for p in exp["packages"]}
    assert versions["nvidia-container-toolkit"] == "1.17.9-1"


def test_fabric_manager_only_for_nvswitch_sizes(shipped_catalog):
    for name in ("ndh100-train", "nca100-infer", "ndmi300x-train", "cpu-infer"):
        exp = build_expectations(shipped_catalog, name)
        skus = [shipped_catalog.skus[s] for s in shipped_catalog.model(name).target_skus]
        has_fm = "fabric_manager" in exp["components"]
        assert has_fm == (any(s.nvswitch for s in skus) and
                          shipped_catalog.model(name).components.fabric_manager is not None)
        assert any(p["component"] == "fabric_manager" for p in exp["packages"]) == has_fm


def test_cpu_image_has_no_vendor_packages(shipped_catalog):
    exp = build_expectations(shipped_catalog, "cpu-infer")
    assert exp["kind"] == "cpu" and exp["packages"] == [] and exp["apt_feeds"] == {}
    assert "cuda" not in exp


def test_feeds_keep_the_render_layout(shipped_catalog):
    from builder.stack.feeds import FEEDS

    exp = build_expectations(shipped_catalog, "ndmi300x-train")
    assert set(exp["apt_feeds"]) <= set(FEEDS)
    for feed, marker in exp["apt_feeds"].items():
        assert marker and marker in FEEDS[feed].repo


def test_limits_and_sysctl_from_role_defaults(shipped_catalog):
    defaults = _defaults(ROLES_DIR, "common")
    exp = build_expectations(shipped_catalog, "ndh100-train")
    assert exp["limits"]["nofile"] == defaults["common_nofile"]
    assert exp["sysctl"] == {k: str(v) for k, v in defaults["common_sysctl"].items()}


def test_unknown_sku_is_input_error(shipped_catalog):
    with pytest.raises(InputError, match="did you mean 'Standard_ND96isr_H100_v5'"):
        build_expectations(shipped_catalog, "ndh100-train", sku="Standard_ND96isr_H100_v6")


def test_abstract_image_is_input_error(shipped_catalog):
    with pytest.raises(InputError, match="abstract"):
        build_expectations(shipped_catalog, "nvidia-base")


def test_role_settings_come_from_the_bundle_file_where_no_roles_are_beside_the_package(shipped_catalog, tmp_path):
    """On the Azure build VM the package is installed without ansible/: the bundle's role-settings.json is read;
    without it and without the roles the expectations fail clearly instead of skipping the checks."""
    from builder.stack import settings

    recorded = settings.write(tmp_path / settings.FILE_NAME)
    loaded = settings.load(recorded)
    exp = build_expectations(shipped_catalog, "ndmi300x-train", settings=loaded)
    assert exp["limits"] == settings.from_roles()["limits"] and exp["limits"]
    assert exp["rocm_sysctl"] and exp["rocm_device_mode"] == settings.from_roles()["rocm_device_mode"]
    with pytest.raises(InputError, match="role defaults not found"):
        settings.from_roles(tmp_path / "no-roles")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="missing limits"):
        settings.load(tmp_path / "bad.json")


def test_azure_health_checks_reach_the_suite(shipped_catalog):
    exp = build_expectations(shipped_catalog, "ndh100-train")
    h100 = exp["skus"]["Standard_ND96isr_H100_v5"]["health"]
    assert h100["source"].startswith("Azure/azurehpc-health-checks conf/nd96isr_h100_v5.conf@")
    assert h100["allreduce"] == {"min_busbw_gbps": 460.0, "repeats": 1, "message_size": "16G",
                                 "topology_file": "ndv5-topo.xml"}
    assert exp["skus"]["Standard_ND96asr_v4"]["health"]["allreduce"]["message_size"] == "8G"
    assert exp["skus"]["Standard_NC4as_T4_v3"]["health"] is None  # AzNHC has no conf for it
    assert 79 in exp["health_defaults"]["fatal_xids"] and exp["health_defaults"]["xid_window_hours"] == 2


def test_health_check_change_in_skus_yaml_moves_expectation(catalog_copy):
    path = catalog_copy / "skus.yaml"
    data = yaml.safe_load(path.read_text())
    data["health_checks"]["Standard_ND96isr_H100_v5"]["allreduce"]["min_busbw_gbps"] = 470
    path.write_text(yaml.safe_dump(data))
    exp = build_expectations(load_catalog(catalog_copy), "ndh100-train")
    assert exp["skus"]["Standard_ND96isr_H100_v5"]["health"]["allreduce"]["min_busbw_gbps"] == 470
