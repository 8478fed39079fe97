"""A local build's publish step without a full build: numbering from the gallery, publishing a fixed VHD to the
local gallery emulator (``<state>/gallery``) or the one in the environment, a version taken meanwhile, the
lifecycle commands reading the local gallery, and the refusal to send a local VHD to real Azure."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from builder.azure import provenance
from builder.catalog.loader import load_catalog
from builder.emulator.vhd import MIB, make_fixed_vhd
from builder.errors import InputError, OperationError
from builder.local.gallery import GalleryTarget, require_local_vhd_target, resolve_target
from builder.local.publish import number_version, publish_vhd
from builder.versioning import next_version
from tests.conftest import REPO, builder_executable

IMAGE = "ndh100-train"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "images")


def test_resolve_target_prefers_the_environment(tmp_path):
    local = resolve_target(tmp_path, env={})
    assert local.local_state == (tmp_path / "gallery").resolve() and "local gallery emulator" in local.label
    emulator = resolve_target(tmp_path, env={"AZURE_SUBSCRIPTION_ID": "s", "BUILDER_ARM_ENDPOINT": "https://127.0.0.1:9"})
    assert emulator.local_state is None and emulator.settings.is_local
    require_local_vhd_target(emulator)
    azure = resolve_target(tmp_path, env={"AZURE_SUBSCRIPTION_ID": "s"})
    with pytest.raises(InputError, match="needs the VHD uploaded to a page blob first"):
        require_local_vhd_target(azure)
    with pytest.raises(InputError, match="missing subscription"):
        resolve_target(tmp_path, env={"BUILDER_ARM_ENDPOINT": "https://127.0.0.1:9"})


def test_local_gallery_numbers_publishes_and_lists(catalog, tmp_path, run_cli):
    state = tmp_path / "state"
    target = resolve_target(state, env={})
    first = number_version(catalog, IMAGE, state, target)
    assert first == next_version([])
    vhd = make_fixed_vhd(tmp_path / "a.vhd", 4 * MIB)
    tags = provenance("c0ffee", "build-1", "a" * 64, "passed", "local:debian12:k1")
    result = publish_vhd(catalog, IMAGE, first, vhd, tags, target)
    assert result.action == "created" and result.exclude_from_latest is True
    assert result.id.startswith("/subscriptions/00000000-0000-0000-0000-000000000000/")
    assert (state / "gallery" / "state.json").is_file()
    assert number_version(catalog, IMAGE, state, target) == next_version([first])
    assert number_version(catalog, IMAGE, state, None) == first  # --no-publish: the local registry only
    again = publish_vhd(catalog, IMAGE, first, vhd, tags, target)  # a re-run of the same publish
    assert again.action == "unchanged"

    env = {"BUILDER_STATE": str(state), "AZURE_SUBSCRIPTION_ID": "", "BUILDER_ARM_ENDPOINT": ""}
    listed = run_cli("versions", IMAGE, "--json", env=env)
    assert listed.code == 0, listed.stderr
    [info] = json.loads(listed.stdout)
    assert (info["version"], info["state"]) == (first, "staged")
    assert info["tags"]["builder.sbom_sha256"] == "a" * 64 and info["tags"]["builder.build_id"] == "build-1"
    table = run_cli("versions", IMAGE, env=env)
    assert f"local gallery emulator: {(state / 'gallery').resolve()}" in table.stderr and first in table.stdout
    promoted = run_cli("promote", IMAGE, first, env=env)
    assert promoted.code == 0, promoted.stderr
    assert json.loads(run_cli("versions", IMAGE, "--json", env=env).stdout)[0]["latest"] is True
    other = tmp_path / "elsewhere"
    missing = run_cli("versions", IMAGE, env={**env, "BUILDER_STATE": str(other)})
    assert missing.code == 2 and "missing subscription" in missing.stderr  # no local gallery there yet


def test_version_taken_meanwhile_is_a_clear_error(catalog, tmp_path, arm_emulator):
    target = GalleryTarget(settings=arm_emulator.settings)
    version = number_version(catalog, IMAGE, tmp_path, target)
    publish_vhd(catalog, IMAGE, version, make_fixed_vhd(tmp_path / "theirs.vhd", 2 * MIB), {}, target)
    with pytest.raises(OperationError, match=f"version {version} of {IMAGE} already exists in the emulator at") as info:
        publish_vhd(catalog, IMAGE, version, make_fixed_vhd(tmp_path / "ours.vhd", 2 * MIB), {}, target)
    assert "numbered it before converging" in str(info.value) and "ours.vhd" in str(info.value)


def test_local_build_bound_for_real_azure_is_refused_before_building(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "BUILDER_STATE": str(tmp_path / "state"),
           "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-0000000000aa", "BUILDER_ARM_ENDPOINT": ""}
    proc = subprocess.run([*builder_executable(), "build", IMAGE, "--target", "local", "--feed", "stand-in"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "needs the VHD uploaded to a page blob first, which builder does not do" in proc.stderr
    assert "--no-publish" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "state" / "builds").exists()


def test_default_target_stays_local_for_a_local_emulator(monkeypatch):
    from builder.commands.build import default_target

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "s")
    monkeypatch.setenv("BUILDER_ARM_ENDPOINT", "https://127.0.0.1:8443")
    assert default_target() == "local"
    monkeypatch.delenv("BUILDER_ARM_ENDPOINT")
    assert default_target() == "azure"
