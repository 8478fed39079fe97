"""builder.render: variables derived from the catalog, feeds and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from builder.catalog.loader import load_catalog
from builder.errors import InputError
from builder.render import VARS_FILE, ansible_vars, write_render
from builder.stack.feeds import FEEDS, mirror_url
from builder.stack.packages import packages_for
from builder.stack.records import exact_versions

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "images")


def test_packages_and_components_come_from_the_catalog(catalog):
    data = ansible_vars(catalog, "ndh100-train", commit="x")
    model = catalog.model("ndh100-train")
    comps = model.components.model_dump(mode="json", exclude_none=True)
    assert data["builder_components"] == comps
    expected = {k: [p.as_dict() for p in v] for k, v in exact_versions(packages_for(comps), model.os.value).items()}
    assert data["builder_packages"] == expected
    driver = {p["name"]: p for p in data["builder_packages"]["nvidia_driver"]}
    # The revision comes from the records for Ubuntu 22.04, never made up; the pinning package's is disputed.
    assert driver["nvidia-open"]["version"] == "580.126.16-1ubuntu1"
    assert "infra-controller#294" in driver["nvidia-open"]["source"]
    assert driver["nvidia-driver-pinning-580.126.16"]["version"] == "580.126.16-*"
    assert data["builder_os"] == model.os.value
    assert data["builder_has_nvswitch"] is True and data["builder_has_infiniband"] is True
    assert data["builder_gpu_vendor"] == "nvidia"


def test_sku_facts_follow_skus_yaml(catalog):
    infer = ansible_vars(catalog, "nca100-infer", commit="x")
    assert set(infer["builder_skus"]) == set(catalog.model("nca100-infer").target_skus)
    assert infer["builder_has_nvswitch"] is False and infer["builder_has_infiniband"] is False
    amd = ansible_vars(catalog, "ndmi300x-train", commit="x")
    assert amd["builder_gpu_vendor"] == "amd" and amd["builder_has_infiniband"] is True
    cpu = ansible_vars(catalog, "cpu-infer", commit="x")
    assert cpu["builder_gpu_vendor"] == "none" and cpu["builder_feeds"] == {}


def test_upstream_feeds_are_vendor_urls_and_mirror_keeps_the_layout(catalog):
    up = ansible_vars(catalog, "ndh100-train", commit="x")
    cuda = up["builder_feeds"]["cuda"]
    assert cuda["url"].startswith("https://developer.download.nvidia.com/") and "/ubuntu2204/" in cuda["url"]
    mirror = ansible_vars(catalog, "ndh100-train", feed="http://mirror.local/base/", commit="x")
    for name, feed in mirror["builder_feeds"].items():
        if feed["kind"] == "apt":
            assert feed["url"] == mirror_url(up["builder_feeds"][name]["url"], "http://mirror.local/base")
            assert feed["url"].startswith("http://mirror.local/base/") and feed["key_url"].startswith("http://mirror.")
    hpcx = catalog.model("ndh100-train").components.hpcx
    assert mirror["builder_downloads"]["hpcx"]["sha256"] == hpcx.download.sha256
    assert mirror["builder_downloads"]["hpcx"]["url"].endswith(hpcx.download.url.split("://", 1)[1])


def test_os_override_changes_repository_paths(catalog):
    data = ansible_vars(catalog, "ndmi300x-train", os_override="debian12", commit="x")
    assert data["builder_os"] == "debian12" and data["builder_catalog_os"] == "ubuntu2204"
    assert "/debian12/" not in data["builder_feeds"]["rocm"]["url"]
    assert data["builder_feeds"]["rocm"]["suite"] == "jammy"
    assert set(data["builder_feeds"]) == {"amdgpu", "rocm", "doca"}
    assert FEEDS["rocm"].pin_origin == "repo.radeon.com"


def test_layers_are_listed(catalog):
    data = ansible_vars(catalog, "cpu-infer", commit="x")
    assert data["builder_layers"]["base"] == ["common"] and data["builder_final_roles"] == ["generalize"]


@pytest.mark.parametrize("bad, field", [({"target": "gcp"}, "--target"), ({"feed": "ftp://x"}, "--feed"),
                                        ({"os_override": "centos7"}, "os")])
def test_bad_input_is_an_input_error(catalog, bad, field):
    with pytest.raises(InputError) as info:
        ansible_vars(catalog, "cpu-infer", commit="x", **bad)
    assert info.value.problems[0].field == field


def test_write_render_writes_yaml_atomically(catalog, tmp_path):
    written = write_render(catalog, "nca100-infer", "local", tmp_path, commit="abc")
    assert written == [tmp_path / VARS_FILE]
    data = yaml.safe_load(written[0].read_text())
    assert data["builder_image"] == "nca100-infer" and data["builder_git_commit"] == "abc"
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_render_json_and_errors(run_cli, tmp_path):
    result = run_cli("render", "cpu-infer", "--out", str(tmp_path / "out"), "--json")
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["vars"]["builder_image"] == "cpu-infer"
    assert Path(payload["files"][0]).exists()
    bad = run_cli("render", "cpu-infer", "--out", str(tmp_path / "bad"), "--feed", "gopher://x")
    assert bad.code == 2 and "--feed" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad" / VARS_FILE).exists()
    unknown = run_cli("render", "ndh100-trian", "--out", str(tmp_path / "u"))
    assert unknown.code == 2 and "did you mean 'ndh100-train'" in unknown.stderr


def test_enroot_debs_are_verified_by_checksum(tmp_path):
    """#24: Enroot's .debs are release assets, not a signed apt repository: each needs a sha256 like any download.
    The stand-in feed records its own; NVIDIA publishes none, so an upstream render names each .deb's checksum as
    missing (the role then refuses to install it unverified) instead of fetching it unchecked."""
    from builder.catalog.loader import load_catalog
    from builder.standin import ensure_feed
    from tests.conftest import REPO

    catalog = load_catalog(REPO / "images")
    feed = ensure_feed(catalog, tmp_path.parent / "standin-cache")
    standin = ansible_vars(catalog, "ndh100-train", feed=feed, commit="c")["builder_feeds"]["enroot"]
    for name, url in standin["debs"].items():
        entry = standin["checksums"][name]
        assert len(entry["sha256"]) == 64 and entry["source"], name
        from builder.hashing import sha256_file

        assert sha256_file(Path(url.removeprefix("file://"))) == entry["sha256"]
    upstream = ansible_vars(catalog, "ndh100-train", commit="c")["builder_feeds"]["enroot"]
    assert upstream["checksums"] == {name: {"sha256": None, "source": None} for name in upstream["debs"]}
