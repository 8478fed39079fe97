"""Hands-off patching (``builder patch``) against the ARM emulator: a newer marketplace base version -> outdated ->
build -> verify -> a staged version with release notes; the current latest stays; a rerun builds nothing.

The end-to-end test runs a real local build of cpu-infer (stand-in feed, layer cache; no boot test) published as a
file VHD to the emulator. The current version it is compared with is a small fixed VHD published with the tags a
build records (that version's contents are not built: its components come from its tags, it has no SBOM)."""

from __future__ import annotations

import json

import pytest

from builder.azure import Lifecycle, Source, provenance, publish_version
from builder.catalog.loader import load_catalog
from builder.emulator.vhd import MIB, make_fixed_vhd
from builder.errors import OperationError
from builder.local.gallery import storage_account_id
from builder.stack import tags as T
from tests.conftest import REPO
from tests.fixtures.emulator import SUBSCRIPTION
from tests.fixtures.local import needs_local_tools

IMAGE = "cpu-infer"
CURRENT = "2026.1101.0"
# Marketplace version names as tests/packer/test_azure_gallery.py seeds them (MARKET).
OLD_BASE, NEW_BASE = "22.04.2025010101", "22.04.2025112001"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "images")


def _current(emulator, catalog, tmp_path, image: str = IMAGE, version: str = CURRENT) -> None:
    """A live version of ``image`` built on OLD_BASE (a small fixed VHD with the tags a build records)."""
    vhd = make_fixed_vhd(tmp_path / f"{image}-current.vhd", 2 * MIB)
    publish_version(catalog, image, source=Source(vhd_uri=vhd.as_uri(), storage_account_id=storage_account_id(
        SUBSCRIPTION)), version=version, tags=provenance("abc123", "b-0", None, T.VERIFIED, OLD_BASE),
        settings=emulator.settings)
    Lifecycle(catalog, image, emulator.settings).promote(version)


def _seed(emulator, catalog, versions, image: str = IMAGE) -> None:
    m = catalog.model(image).base.marketplace
    emulator._control("PUT", f"marketplace/{m.publisher}/{m.offer}/{m.sku}", {"versions": list(versions)})


def _versions(emulator, catalog, image: str = IMAGE):
    return {v.version: v for v in Lifecycle(catalog, image, emulator.settings).versions()}


@needs_local_tools()
def test_newer_base_is_built_staged_with_release_notes_and_a_rerun_is_a_no_op(run_cli, arm_emulator, catalog,
                                                                              builder_cache, tmp_path):
    _current(arm_emulator, catalog, tmp_path)
    _seed(arm_emulator, catalog, [OLD_BASE])
    env = arm_emulator.env(BUILDER_CACHE=str(builder_cache), BUILDER_STATE=str(tmp_path / "state"))
    args = ("patch", IMAGE, "--target", "local", "--feed", "stand-in", "--no-components", "--no-boot-test", "--json")
    current = run_cli(*args, env=env)
    assert current.code == 0, current.stderr
    assert json.loads(current.stdout)["images"] == []  # built on the newest base: nothing to do
    assert list(_versions(arm_emulator, catalog)) == [CURRENT]

    _seed(arm_emulator, catalog, [OLD_BASE, NEW_BASE])  # a newer base version appears in the marketplace
    first = run_cli(*args, env=env, timeout=900)
    assert first.code == 0, first.stderr[-3000:]
    doc = json.loads(first.stdout)
    [outcome] = doc["images"]
    assert outcome["status"] == "staged" and outcome["current"] == CURRENT
    assert [(f["kind"], f["current"], f["latest"]) for f in outcome["findings"]] == [("base", OLD_BASE, NEW_BASE)]
    version = outcome["version"]
    assert doc["staged"] == [{"image": IMAGE, "version": version, "verification": T.VERIFIED}]
    versions = _versions(arm_emulator, catalog)
    staged = versions[version]
    assert staged.state == "staged" and staged.exclude_from_latest and not staged.latest
    assert versions[CURRENT].latest  # the current latest is unchanged
    assert staged.tags[T.PATCH_KEY] == outcome["key"]
    assert f"{OLD_BASE} -> {NEW_BASE}" in staged.tags[T.PATCH]
    notes = (tmp_path / "state" / "patches" / IMAGE / f"{version}.md").read_text()
    assert notes == outcome["notes"]
    assert f"## {IMAGE} {version}" in notes and f"Changes since {CURRENT}" in notes
    assert "### Components" in notes and "### Packages" in notes
    assert f"| microsoft-dsvm:ubuntu-2204:2204-gen2 | base | {OLD_BASE} | {NEW_BASE} |" in notes
    import hashlib

    assert staged.tags[T.PATCH_NOTES] == hashlib.sha256(notes.encode()).hexdigest()

    builds = sorted((tmp_path / "state" / "builds").iterdir())
    again = run_cli(*args, env=env)
    assert again.code == 0, again.stderr
    [rerun] = json.loads(again.stdout)["images"]
    assert (rerun["status"], rerun["version"]) == ("unchanged", version)
    assert sorted((tmp_path / "state" / "builds").iterdir()) == builds  # nothing was built
    assert _versions(arm_emulator, catalog).keys() == versions.keys()


def _fake_build(emulator, catalog, tmp_path, fail: set[str]):
    """Stands in for a build: fails for ``fail`` (as a failing verify phase does), else publishes a file VHD."""
    from builder.azure.publish import next_free_version
    from builder.patching import Built

    built: list[str] = []

    def build(image: str) -> Built:
        built.append(image)
        if image in fail:
            raise OperationError(f"phase 'verify' failed: 1 check failed in {image}")
        vhd = make_fixed_vhd(tmp_path / f"{image}-new.vhd", 3 * MIB)
        version = next_free_version(catalog, image, emulator.settings)
        publish_version(catalog, image, source=Source(vhd_uri=vhd.as_uri(), storage_account_id=storage_account_id(
            SUBSCRIPTION)), version=version, tags=provenance("def456", "b-1", None, T.VERIFIED, NEW_BASE),
            settings=emulator.settings)
        return Built(version, "b-1", [])

    return build, built


def test_a_failed_build_publishes_nothing_and_the_others_go_on(arm_emulator, catalog, tmp_path):
    import contextlib

    from builder.commands.patch import differ, find_outdated
    from builder.patching import run

    for image in ("cpu-infer", "cpu-train"):
        _current(arm_emulator, catalog, tmp_path, image)
    _seed(arm_emulator, catalog, [OLD_BASE, NEW_BASE])
    build, built = _fake_build(arm_emulator, catalog, tmp_path, fail={"cpu-infer"})

    def gallery():
        return contextlib.nullcontext(arm_emulator.settings)

    report = find_outdated(catalog, ["cpu-infer", "cpu-train"], "upstream", arm_emulator.settings, False)
    result = run(catalog, report, build, differ(tmp_path / "state"), gallery, tmp_path / "state")
    assert not result.ok and result.as_dict()["failed"] == ["cpu-infer"]
    by_image = {o.image: o for o in result.outcomes}
    assert by_image["cpu-infer"].status == "failed" and "phase 'verify' failed" in by_image["cpu-infer"].message
    assert list(_versions(arm_emulator, catalog, "cpu-infer")) == [CURRENT]  # nothing published
    assert by_image["cpu-train"].status == "staged"
    assert _versions(arm_emulator, catalog, "cpu-train")[by_image["cpu-train"].version].state == "staged"
    assert built == ["cpu-infer", "cpu-train"]

    # the next night: the failed image is tried again, the staged one is left alone
    report = find_outdated(catalog, ["cpu-infer", "cpu-train"], "upstream", arm_emulator.settings, False)
    build, built = _fake_build(arm_emulator, catalog, tmp_path, fail=set())
    result = run(catalog, report, build, differ(tmp_path / "state"), gallery, tmp_path / "state")
    assert result.ok and built == ["cpu-infer"]
    assert {o.image: o.status for o in result.outcomes} == {"cpu-infer": "staged", "cpu-train": "unchanged"}


def test_a_yanked_patch_is_not_rebuilt_for_the_same_inputs(arm_emulator, catalog, tmp_path):
    import contextlib

    from builder.commands.patch import differ, find_outdated
    from builder.patching import run

    _current(arm_emulator, catalog, tmp_path)
    _seed(arm_emulator, catalog, [OLD_BASE, NEW_BASE])
    build, built = _fake_build(arm_emulator, catalog, tmp_path, fail=set())

    def gallery():
        return contextlib.nullcontext(arm_emulator.settings)

    def once():
        report = find_outdated(catalog, [IMAGE], "upstream", arm_emulator.settings, False)
        return run(catalog, report, build, differ(tmp_path / "state"), gallery, tmp_path / "state")

    [staged] = once().outcomes
    Lifecycle(catalog, IMAGE, arm_emulator.settings).yank(staged.version, "rejected in review")
    [again] = once().outcomes
    assert (again.status, again.version) == ("rejected", staged.version) and built == [IMAGE]


def test_dry_run_builds_nothing(run_cli, arm_emulator, catalog, tmp_path):
    _current(arm_emulator, catalog, tmp_path)
    _seed(arm_emulator, catalog, [OLD_BASE, NEW_BASE])
    result = run_cli("patch", IMAGE, "--target", "local", "--no-components", "--dry-run", env=arm_emulator.env())
    assert result.code == 0, result.stderr
    assert f"{IMAGE}: planned: would build and stage a new version (base microsoft-dsvm:ubuntu-2204:2204-gen2: " \
           f"{OLD_BASE} -> {NEW_BASE})" in result.stdout
    assert list(_versions(arm_emulator, catalog)) == [CURRENT]


@pytest.mark.parametrize("args, message", [
    (("no-such-image",), "no-such-image"),
    (("base-dsvm",), "'base-dsvm' is abstract"),
    (("cpu-infer", "--target", "azure", "--feed", "stand-in"), "the build VM in Azure cannot read it"),
    (("cpu-infer", "--feed", "ftp://x"), "expected upstream, stand-in or a mirror base URL"),
    (("cpu-infer", "--target", "azure"), "--target azure needs the gallery in the environment"),
])
def test_bad_input_is_one_message_and_exit_2(run_cli, args, message):
    result = run_cli("patch", *args, "--dry-run", env={"AZURE_SUBSCRIPTION_ID": "", "BUILDER_ARM_ENDPOINT": ""})
    assert result.code == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_patch_key_follows_the_newest_versions_and_the_catalog_entry(catalog_copy):
    from builder.outdated import Finding
    from builder.patching import patch_key

    shipped = load_catalog(catalog_copy)
    found = [Finding(IMAGE, "base", "microsoft-dsvm:ubuntu-2204:2204-gen2", OLD_BASE, NEW_BASE)]
    key = patch_key(shipped, IMAGE, found)
    assert key == patch_key(load_catalog(catalog_copy), IMAGE, list(reversed(found * 2)))
    assert key != patch_key(shipped, IMAGE, [Finding(IMAGE, "base", found[0].subject, OLD_BASE, "22.04.2026010101")])
    text = (catalog_copy / "cpu-infer.yaml").read_text()
    (catalog_copy / "cpu-infer.yaml").write_text(text.replace("build: {spot: true}", "build: {spot: false}"))
    assert key != patch_key(load_catalog(catalog_copy), IMAGE, found)
    (catalog_copy / "cpu-infer.yaml").write_text(text.replace("description: ", "description: Changed. "))
    assert key == patch_key(load_catalog(catalog_copy), IMAGE, found)  # documentation only


def test_an_image_that_is_not_staged_is_refused_before_building(arm_emulator, catalog_copy, tmp_path):
    import contextlib

    from builder.commands.patch import differ, find_outdated
    from builder.patching import run

    path = catalog_copy / "cpu-infer.yaml"
    path.write_text(path.read_text().replace("gallery:\n", "gallery:\n  staging: {exclude_from_latest: false}\n"))
    edited = load_catalog(catalog_copy)
    _current(arm_emulator, edited, tmp_path)
    _seed(arm_emulator, edited, [OLD_BASE, NEW_BASE])
    build, built = _fake_build(arm_emulator, edited, tmp_path, fail=set())
    report = find_outdated(edited, [IMAGE], "upstream", arm_emulator.settings, False)
    result = run(edited, report, build, differ(tmp_path / "state"), lambda: contextlib.nullcontext(
        arm_emulator.settings), tmp_path / "state")
    [outcome] = result.outcomes
    assert outcome.status == "failed" and "exclude_from_latest is false" in outcome.message
    assert built == [] and not result.ok
