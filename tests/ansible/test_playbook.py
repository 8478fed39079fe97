"""The playbook and roles: layer tags match builder/stack/layers.py, every role is complete, lint is clean,
and no role repeats a version the catalog sets."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from builder.catalog.loader import load_catalog
from builder.local.keys import PER_BUILD, per_build_layers
from builder.stack.layers import FINAL_ROLES, LAYERS, MANIFEST_TAG

REPO = Path(__file__).resolve().parent.parent.parent
ANSIBLE = REPO / "ansible"
ROLES = ANSIBLE / "roles"
OSES = ("debian12", "ubuntu2204", "ubuntu2404")
CONCERNS = ("common", "nvidia_driver", "fabric_manager", "cuda", "cudnn", "nccl", "container_toolkit", "infiniband",
            "mpi", "enroot_pyxis", "monitoring", "rocm", "sku_tuning", "generalize")


def playbook_roles() -> list[dict]:
    plays = yaml.safe_load((ANSIBLE / "image.yml").read_text())
    assert len(plays) == 1
    return plays[0]["roles"]


def test_playbook_tags_every_role_with_its_layer():
    tags = {entry["role"]: entry["tags"] for entry in playbook_roles()}
    for layer in LAYERS:
        for role in layer.roles:
            assert tags[role] == [layer.name], role
    for role in FINAL_ROLES:
        assert tags[role] == [role]
    assert playbook_roles()[-1]["role"] == FINAL_ROLES[-1]
    known = {layer.name for layer in LAYERS} | {MANIFEST_TAG} | set(FINAL_ROLES)
    assert {tag for entry in playbook_roles() for tag in entry["tags"]} == known
    assert [entry["role"] for entry in playbook_roles() if entry["tags"] == [MANIFEST_TAG]] == ["image_manifest"]


def test_per_build_values_stay_out_of_every_layer():
    """Only the manifest step (its own tag, after the layers) bakes the version and commit in: every layer's
    snapshot can be reused by the next build."""
    assert per_build_layers({}) == set()
    order = [entry["tags"][0] for entry in playbook_roles()]
    assert order.index(MANIFEST_TAG) > max(order.index(layer.name) for layer in LAYERS)
    assert order.index(MANIFEST_TAG) < min(order.index(role) for role in FINAL_ROLES)
    baking = {folder.name for folder in ROLES.iterdir()
              if any(name.encode() in f.read_bytes() for f in folder.rglob("*") if f.is_file() for name in PER_BUILD)}
    assert baking == {"image_manifest"}


def test_every_concern_has_a_complete_role():
    for role in CONCERNS:
        folder = ROLES / role
        for part in ("tasks/main.yml", "defaults/main.yml", "handlers/main.yml", "meta/main.yml",
                     "meta/argument_specs.yml", *(f"vars/{os}.yml" for os in OSES)):
            assert (folder / part).is_file(), f"{role}/{part}"


def test_every_default_is_documented_in_the_argument_spec():
    for folder in sorted(p for p in ROLES.iterdir() if p.is_dir()):
        defaults = yaml.safe_load((folder / "defaults/main.yml").read_text()) or {}
        specs = yaml.safe_load((folder / "meta/argument_specs.yml").read_text())["argument_specs"]
        options = specs["main"]["options"]
        assert set(defaults) == set(options), folder.name
        assert all(o["description"].strip() for o in options.values()), folder.name
        text = (folder / "defaults/main.yml").read_text()
        for name in defaults:
            assert re.search(rf"^# .+\n{re.escape(name)}:", text, re.M), f"{folder.name}: {name} lacks a comment"


def test_os_vars_define_the_same_names_for_every_os():
    for folder in sorted(p for p in ROLES.iterdir() if p.is_dir()):
        names = {os: set(yaml.safe_load((folder / "vars" / f"{os}.yml").read_text()) or {}) for os in OSES}
        assert names["debian12"] and names["debian12"] == names["ubuntu2204"] == names["ubuntu2404"], folder.name


def test_no_catalog_version_is_written_in_ansible():
    catalog = load_catalog(REPO / "images")
    pins: set[str] = set()
    for image in catalog.buildable():
        for spec in image.model.components.model_dump(exclude_none=True).values():
            version = str(spec["version"])
            if len(version) >= 5:  # long enough not to match unrelated numbers
                pins.add(version)
            if spec.get("download"):
                pins.add(spec["download"]["sha256"])
    text = "\n".join(p.read_text() for p in ANSIBLE.rglob("*") if p.is_file())
    found = sorted(v for v in pins if re.search(rf"(?<![\w.]){re.escape(v)}(?![\w.])", text))
    assert not found, f"catalog pins repeated in ansible/: {found}"


def test_no_shell_module_in_roles():
    text = "\n".join(p.read_text() for p in ROLES.rglob("*.yml"))
    assert "ansible.builtin.shell" not in text and "\n  shell:" not in text


@pytest.mark.slow
def test_ansible_lint_production_profile_is_clean(tmp_path):
    lint = Path(sys.executable).parent / "ansible-lint"
    if not lint.exists() and shutil.which("ansible-lint") is None:
        pytest.skip("ansible-lint is not installed (pip install -e '.[dev]')")
    result = subprocess.run([str(lint if lint.exists() else "ansible-lint"), "--profile", "production", "--offline",
                             "--nocolor", "ansible/"], cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={"HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
