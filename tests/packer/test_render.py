"""Catalog values -> var file: marketplace plans, gallery and layered bases, VNet, spot, bad input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from builder.catalog.loader import load_catalog
from builder.errors import InputError
from builder.packer.render import packer_variables, var_file_name, write_packer_files


def _edit(catalog_dir, name: str, extra: str):
    path = catalog_dir / f"{name}.yaml"
    path.write_text(path.read_text() + extra)
    return load_catalog(catalog_dir)


def test_marketplace_plan_becomes_plan_info(catalog_copy, tmp_path):
    catalog = _edit(catalog_copy, "ndh100-train", "base:\n  marketplace:\n    plan: {name: p1, product: prod, "
                    "publisher: pub}\n")
    values = packer_variables(catalog, "ndh100-train", tmp_path, commit="c")
    assert values["plan_info"] == {"name": "p1", "product": "prod", "publisher": "pub"}
    m = catalog.model("ndh100-train").base.marketplace
    assert values["marketplace"] == {"publisher": m.publisher, "offer": m.offer, "sku": m.sku, "version": m.version}


def test_no_plan_no_plan_info(catalog_copy, tmp_path):
    values = packer_variables(load_catalog(catalog_copy), "nct4-infer", tmp_path, commit="c")
    assert "plan_info" not in values and "base_gallery_image" not in values


def test_layered_base_is_the_base_image_gallery_version(catalog_copy, tmp_path):
    catalog = load_catalog(catalog_copy)
    below = catalog.model("gpu-base").gallery
    values = packer_variables(catalog, "ndh100-train-layered", tmp_path, commit="c",
                              base_versions={"gpu-base": "2026.1101.3"})
    assert "marketplace" not in values
    assert values["base_gallery_image"] == {"subscription": "", "resource_group": below.resource_group,
                                            "gallery_name": below.gallery, "image_name": below.definition,
                                            "image_version": "2026.1101.3"}
    assert values["azure_tags"]["builder.base"] == "image:gpu-base"
    latest = packer_variables(catalog, "ndh100-train-layered", tmp_path, commit="c")
    assert latest["base_gallery_image"]["image_version"] == ""  # the template maps "" to latest


def test_gallery_image_id_base_is_split(catalog_copy, tmp_path):
    gid = ("/subscriptions/0000/resourceGroups/rg-x/providers/Microsoft.Compute/galleries/g_x/images/def/"
           "versions/1.2.3")
    catalog = _edit(catalog_copy, "nct4-infer", f"base:\n  marketplace: null\n  gallery_image_id: {gid}\n")
    values = packer_variables(catalog, "nct4-infer", tmp_path, commit="c")
    assert values["base_gallery_image"] == {"subscription": "0000", "resource_group": "rg-x", "gallery_name": "g_x",
                                            "image_name": "def", "image_version": "1.2.3"}


def test_bad_gallery_image_id_is_located_input_error(catalog_copy, tmp_path):
    catalog = _edit(catalog_copy, "nct4-infer", "base:\n  marketplace: null\n  gallery_image_id: "
                    "/subscriptions/0/galleries/nope\n")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"nct4-infer\.yaml:\d+: \[nct4-infer\] base\.gallery_image_id: expected"):
        write_packer_files(catalog, "nct4-infer", out)
    assert not out.exists()


def test_build_vm_settings_vnet_spot_and_trusted_launch(catalog_copy, tmp_path):
    (catalog_copy / "x-infer.yaml").write_text(
        "name: x-infer\nextends: nct4-infer\nbuild:\n  spot: true\n  os_disk_gb: 256\n  timeout_minutes: 90\n"
        "  virtual_network: {resource_group: rg-net, name: vnet-build, subnet: packer}\n"
        "gallery:\n  definition: x-infer\n  features: {security_type: TrustedLaunch}\n")
    catalog = load_catalog(catalog_copy)
    values = packer_variables(catalog, "x-infer", tmp_path, commit="c")
    assert values["spot"] is True and values["os_disk_size_gb"] == 256 and values["timeout"] == "90m"
    assert values["virtual_network"] == {"resource_group": "rg-net", "name": "vnet-build", "subnet": "packer"}
    assert values["security_type"] == "TrustedLaunch"
    plain = packer_variables(catalog, "nct4-infer", tmp_path, commit="c")
    assert "virtual_network" not in plain and "security_type" not in plain and plain["spot"] is False


def test_version_end_of_life_and_staging_region(tmp_path, catalog_copy):
    catalog = load_catalog(catalog_copy)
    values = packer_variables(catalog, "nct4-infer", tmp_path, commit="c", image_version="2026.1129.4",
                              today=dt.date(2026, 11, 29))
    g = catalog.model("nct4-infer").gallery
    assert values["image_version"] == "2026.1129.4" and values["managed_image_name"] == "nct4-infer-2026.1129.4"
    eol = dt.date(2026, 11, 29) + dt.timedelta(days=g.end_of_life_days)
    assert values["gallery"]["end_of_life_date"] == f"{eol.isoformat()}T00:00:00Z"
    assert [r["name"] for r in values["gallery"]["target_regions"]] == [catalog.model("nct4-infer").build.region]
    assert "2026.1129.4" in values["verify_command"] and values["verify_command"].endswith(" static")


def test_hardware_suite_when_build_vm_is_a_target_sku(catalog_copy, tmp_path):
    catalog = _edit(catalog_copy, "nct4-infer", "build:\n  vm_size: Standard_NC4as_T4_v3\n")
    assert catalog.model("nct4-infer").build.vm_size in catalog.model("nct4-infer").target_skus
    assert packer_variables(catalog, "nct4-infer", tmp_path, commit="c")["verify_command"].endswith(" all")


@pytest.mark.parametrize("options,field", [({"image_version": "1.2"}, "version"),
                                           ({"output": "vhd"}, "--output")])
def test_bad_options_write_nothing(catalog_copy, tmp_path, options, field):
    out = tmp_path / "out"
    with pytest.raises(InputError, match=field):
        write_packer_files(load_catalog(catalog_copy), "nct4-infer", out, **options)
    assert not out.exists()


def test_abstract_image_is_refused(catalog_copy, tmp_path):
    with pytest.raises(InputError, match="abstract"):
        write_packer_files(load_catalog(catalog_copy), "nvidia-base", tmp_path / "out")


def test_builder_render_target_azure_writes_everything(run_cli, tmp_path):
    out = tmp_path / "rendered"
    result = run_cli("render", "ndh100-train-layered", "--target", "azure", "--out", str(out))
    assert result.code == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert {"ansible-vars.yml", "azure.pkr.hcl", "variables.pkr.hcl", var_file_name("ndh100-train-layered"),
            "verify-bundle"} <= names
    values = json.loads((out / var_file_name("ndh100-train-layered")).read_text())
    assert values["ansible_vars_file"] == str((out / "ansible-vars.yml").resolve())


def test_builder_render_unknown_image_exit_2(run_cli, tmp_path):
    result = run_cli("render", "ndh100-trian", "--target", "azure", "--out", str(tmp_path / "o"))
    assert result.code == 2 and "did you mean 'ndh100-train'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
