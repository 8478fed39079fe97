"""Layer cache keys: what invalidates which layer."""

from __future__ import annotations

import re
from pathlib import Path

from builder.catalog.loader import load_catalog
from builder.local.keys import feed_neutral, inputs_digest, layer_keys, per_build_layers
from builder.render import ansible_vars

MIRROR = "http://mirror.example/"


def _vars(catalog_dir: Path, image: str = "ndh100-train", **options) -> dict:
    options.setdefault("commit", "c0ffee")
    return ansible_vars(load_catalog(catalog_dir), image, "local", options.pop("feed", MIRROR), **options)


def _roles(tmp_path: Path) -> Path:
    ansible = tmp_path / "ansible"
    for role in ("common", "cuda", "infiniband", "monitoring", "generalize"):
        (ansible / "roles" / role / "tasks").mkdir(parents=True)
        (ansible / "roles" / role / "tasks" / "main.yml").write_text(f"- name: {role}\n")
    (ansible / "image.yml").write_text("- hosts: all\n")
    return ansible


def _pin(catalog_dir: Path, file: str, pattern: str, replacement: str) -> None:
    path = catalog_dir / file
    text, count = re.subn(pattern, replacement, path.read_text(), count=1, flags=re.M)
    assert count == 1, f"{pattern} not in {file}"
    path.write_text(text)


def _changed(before: list, after: list) -> list[str]:
    return [name for (name, a), (_, b) in zip(before, after, strict=True) if a != b]


def test_top_layer_pin_changes_only_the_image_layer(catalog_copy, tmp_path):
    ansible = _roles(tmp_path)
    before = layer_keys("base1", _vars(catalog_copy), ansible)
    _pin(catalog_copy, "nvidia-base.yaml", r"^(\s+version: )4\.5\.2-4\.8\.1$", r"\g<1>4.5.2-4.9.0")
    after = layer_keys("base1", _vars(catalog_copy), ansible)
    assert [name for name, _ in before] == ["base", "gpu", "fabric", "image"]
    assert _changed(before, after) == ["image"]


def test_gpu_pin_changes_gpu_and_every_layer_above(catalog_copy, tmp_path):
    ansible = _roles(tmp_path)
    before = layer_keys("base1", _vars(catalog_copy), ansible)
    _pin(catalog_copy, "nvidia-train.yaml", r"^(\s+nccl: \{version: )2\.30\.4-1", r"\g<1>2.30.5-1")
    after = layer_keys("base1", _vars(catalog_copy), ansible)
    assert _changed(before, after) == ["gpu", "fabric", "image"]


def test_base_key_and_role_files_invalidate_from_their_layer_up(catalog_copy, tmp_path):
    ansible = _roles(tmp_path)
    variables = _vars(catalog_copy)
    before = layer_keys("base1", variables, ansible)
    assert _changed(before, layer_keys("base2", variables, ansible)) == ["base", "gpu", "fabric", "image"]
    (ansible / "roles/infiniband/tasks/main.yml").write_text("- name: changed\n")
    assert _changed(before, layer_keys("base1", variables, ansible)) == ["fabric", "image"]
    (ansible / "image.yml").write_text("- hosts: all\n  become: true\n")
    assert _changed(before, layer_keys("base1", variables, ansible)) == ["base", "gpu", "fabric", "image"]


def test_per_build_values_do_not_change_keys(catalog_copy, tmp_path):
    ansible = _roles(tmp_path)
    one = _vars(catalog_copy, image_version="2026.1129.0", commit="aaa")
    two = _vars(catalog_copy, image_version="2026.1130.4", commit="bbb")
    assert layer_keys("b", one, ansible) == layer_keys("b", two, ansible)
    assert inputs_digest("b", one, ansible) == inputs_digest("b", two, ansible)


def test_feed_url_is_neutral_but_the_feed_kind_is_not(catalog_copy, tmp_path):
    ansible = _roles(tmp_path)
    one = _vars(catalog_copy, feed="file:///var/tmp/builder-cache/standin/aaaa/root")
    two = _vars(catalog_copy, feed="file:///var/tmp/builder-cache/standin/bbbb/root")
    for variables in (one, two):
        variables["package_feed"] = "stand-in"
    assert layer_keys("b", one, ansible) == layer_keys("b", two, ansible)
    assert "@FEED@" in str(feed_neutral(one)["builder_feeds"])
    mirror = _vars(catalog_copy, feed="http://other-mirror.example/")
    assert _changed(layer_keys("b", one, ansible), layer_keys("b", mirror, ansible)) == [
        "base", "gpu", "fabric", "image"]


def test_layer_table_decides_roles_and_per_build_values_only_key_the_layer_that_bakes_them(catalog_copy, tmp_path):
    from builder.stack.layers import Layer

    ansible = _roles(tmp_path)
    layers = (Layer("base", "", ("common",)), Layer("gpu", "", ("cuda",)), Layer("image", "", ("stamp",)))
    (ansible / "roles/stamp/defaults").mkdir(parents=True)
    (ansible / "roles/stamp/defaults/main.yml").write_text("version: '{{ builder_image_version }}'\n")
    one = layer_keys("b", _vars(catalog_copy, image_version="2026.1129.0"), ansible, layers)
    two = layer_keys("b", _vars(catalog_copy, image_version="2026.1129.1"), ansible, layers)
    assert _changed(one, two) == ["image"]
    assert per_build_layers({}, ansible, layers) == {"image"}
    (ansible / "roles/stamp/defaults/main.yml").write_text("version: fixed\n")  # a role of layer image: its files
    assert _changed(two, layer_keys("b", _vars(catalog_copy, image_version="2026.1129.1"), ansible, layers)) == [
        "image"]
    assert per_build_layers({}, ansible, layers) == set()
    (ansible / "roles/generalize/tasks/main.yml").write_text("- name: changed\n")  # final role: no layer
    three = layer_keys("b", _vars(catalog_copy, image_version="2026.1129.1"), ansible, layers)
    assert three == layer_keys("b", _vars(catalog_copy, image_version="2026.1129.1"), ansible, layers)
    (ansible / "roles/helper").mkdir()
    (ansible / "roles/helper/main.yml").write_text("shared\n")  # a helper role in no layer: every layer
    assert _changed(three, layer_keys("b", _vars(catalog_copy, image_version="2026.1129.1"), ansible, layers)) == [
        "base", "gpu", "image"]


def test_stand_in_tarball_checksums_do_not_key_layers_but_mirror_ones_do(catalog_copy, tmp_path):
    ansible = _roles(tmp_path)
    one = _vars(catalog_copy, feed="file:///cache/standin/aaaa/root")
    two = _vars(catalog_copy, feed="file:///cache/standin/aaaa/root")
    assert "nccl_tests" in one["builder_downloads"]
    two["builder_downloads"]["nccl_tests"]["sha256"] = "0" * 64
    assert _changed(layer_keys("b", one, ansible), layer_keys("b", two, ansible)) == ["gpu", "fabric", "image"]
    for variables in (one, two):
        variables["package_feed"] = "stand-in"
    assert layer_keys("b", one, ansible) == layer_keys("b", two, ansible)
