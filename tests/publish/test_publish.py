"""Publishing and the version lifecycle through the real CLI and Python API, against the emulator."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from builder.azure import Lifecycle, Source, provenance, publish_version
from builder.azure.clients import compute_client
from builder.catalog.loader import load_catalog
from builder.errors import InputError, OperationError
from builder.versioning import day_prefix
from tests.conftest import REPO

IMAGE = "ndh100-train"
SRC = "/subscriptions/s/resourceGroups/rg-build/providers/Microsoft.Compute/images/{}"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "images")


def _source(name: str = "img1") -> Source:
    return Source(managed_image_id=SRC.format(name))


def _publish(run_cli, emu, *args, source="img1"):
    return run_cli("publish", IMAGE, "--source-image-id", SRC.format(source), *args, env=emu.env())


def _json(result):
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_full_lifecycle_through_the_cli(run_cli, arm_emulator, catalog, tmp_path):
    model = catalog.model(IMAGE)
    today = day_prefix(dt.datetime.now(dt.UTC).date())
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"bomFormat": "CycloneDX"}')

    first = _json(_publish(run_cli, arm_emulator, "--json", "--verification", "passed", "--build-id", "b-1",
                           "--git-commit", "abc123", "--sbom", str(sbom), "--base-version", "22.04.2025112001"))
    assert first["version"] == f"{today}.0" and first["action"] == "created"
    assert first["exclude_from_latest"] is model.gallery.staging.exclude_from_latest
    assert set(first["regions"]) == {"East US 2", "West US 3"}
    assert set(first["regions"].values()) == {"Completed"}
    tags = first["tags"]
    assert tags["component.cuda"] == model.components.cuda.version
    assert tags["component.nvidia_driver"] == model.components.nvidia_driver.version
    assert tags["builder.git_commit"] == "abc123" and tags["builder.build_id"] == "b-1"
    assert len(tags["builder.sbom_sha256"]) == 64 and tags["builder.verification"] == "passed"
    assert tags["builder.base_version"] == "22.04.2025112001"

    second = _json(_publish(run_cli, arm_emulator, "--json", source="img2"))
    assert second["version"] == f"{today}.1" and second["tags"]["builder.verification"] == "pending"
    assert "builder.base_version" not in second["tags"]

    listed = _json(run_cli("versions", IMAGE, "--json", env=arm_emulator.env()))
    assert [v["version"] for v in listed] == [f"{today}.1", f"{today}.0"]
    assert [v["state"] for v in listed] == ["staged", "staged"] and not any(v["latest"] for v in listed)

    refused = run_cli("promote", IMAGE, f"{today}.1", env=arm_emulator.env())
    assert refused.code == 1 and "verification is 'pending'" in refused.stderr

    promoted = _json(run_cli("promote", IMAGE, f"{today}.0", "--json", env=arm_emulator.env()))
    assert promoted["exclude_from_latest"] is False
    assert promoted["latest"] is True  # what Azure now resolves latest to (issue 16: it always said false)
    listed = _json(run_cli("versions", IMAGE, "--json", env=arm_emulator.env()))
    assert [(v["version"], v["latest"], v["state"]) for v in listed] == [
        (f"{today}.1", False, "staged"), (f"{today}.0", True, "live")]
    text = run_cli("versions", IMAGE, env=arm_emulator.env())
    assert text.code == 0 and f"{today}.0" in text.stdout and "verification=passed" in text.stdout

    yanked = _json(run_cli("yank", IMAGE, f"{today}.0", "--reason", "driver regression", "--json", "--yes",
                           env=arm_emulator.env()))
    assert yanked["state"] == "yanked" and yanked["exclude_from_latest"] is True
    assert yanked["tags"]["builder.yanked"] == "driver regression"
    assert dt.datetime.fromisoformat(yanked["end_of_life_date"]) <= dt.datetime.now(dt.UTC)
    again = run_cli("promote", IMAGE, f"{today}.0", env=arm_emulator.env())
    assert again.code == 1 and "yanked" in again.stderr

    dry = _json(run_cli("gc", IMAGE, "--keep", "1", "--dry-run", "--json", env=arm_emulator.env()))
    assert dry == {"dry_run": True, "versions": [{"version": f"{today}.0", "reason": "yanked"}]}
    assert len(_json(run_cli("versions", IMAGE, "--json", env=arm_emulator.env()))) == 2
    done = _json(run_cli("gc", IMAGE, "--keep", "1", "--json", "--yes", env=arm_emulator.env()))
    assert done["versions"] == dry["versions"]
    assert [v["version"] for v in _json(run_cli("versions", IMAGE, "--json", env=arm_emulator.env()))] == [
        f"{today}.1"]
    # a reason is printed as text: an escape sequence in it never reaches the terminal (issue 18)
    hostile = run_cli("yank", IMAGE, f"{today}.1", "--yes", "--reason", "bad\x1b[2J\x9b31m build",
                      env=arm_emulator.env())
    assert hostile.code == 0, hostile.stderr
    assert "\x1b" not in hostile.stdout and "\x9b" not in hostile.stdout and "bad[2J31m build" in hostile.stdout


def test_gc_never_deletes_the_current_latest(arm_emulator, catalog):
    settings = arm_emulator.settings
    old = publish_version(catalog, IMAGE, source=_source("a"), version="1.0.0", settings=settings,
                          tags=provenance(verification="passed"))
    publish_version(catalog, IMAGE, source=_source("b"), version="1.0.1", settings=settings)
    publish_version(catalog, IMAGE, source=_source("c"), version="1.0.2", settings=settings)
    life = Lifecycle(catalog, IMAGE, settings)
    life.promote(old.version)
    doomed = life.gc(keep=0)
    assert [d["version"] for d in doomed] == ["1.0.2", "1.0.1"]
    remaining = life.versions()
    assert [(v.version, v.latest) for v in remaining] == [("1.0.0", True)]


def test_publish_is_idempotent_and_guards_the_source(run_cli, arm_emulator):
    first = _json(_publish(run_cli, arm_emulator, "--version", "1.2.3", "--json"))
    puts = arm_emulator.stats()["by_method"]["PUT"]
    rerun = _json(_publish(run_cli, arm_emulator, "--version", "1.2.3", "--json"))
    assert rerun["action"] == "unchanged" and rerun["id"] == first["id"]
    assert arm_emulator.stats()["by_method"]["PUT"] == puts

    other = _publish(run_cli, arm_emulator, "--version", "1.2.3", source="other")
    assert other.code == 1 and "different source" in other.stderr and "--force" in other.stderr
    replaced = _json(_publish(run_cli, arm_emulator, "--version", "1.2.3", "--force", "--yes", "--json",
                              source="other"))
    assert replaced["action"] == "replaced" and replaced["source"].endswith("/images/other")


@pytest.mark.parametrize(("args", "expected"), [
    (["--version", "2026.1129"], "version: invalid image version"),
    (["--version", "1.2.99999999999"], "above 2,147,483,647"),
    (["--region", "atlantis"], "region: unknown region 'atlantis'"),
    (["--region", "eastus2=0"], "must be >= 1"),
])
def test_bad_input_exits_2(run_cli, arm_emulator, args, expected):
    result = _publish(run_cli, arm_emulator, *args)
    assert result.code == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert arm_emulator.stats()["requests"] == 0


def test_missing_subscription_and_source_exit_2(run_cli, arm_emulator):
    env = {**arm_emulator.env(), "AZURE_SUBSCRIPTION_ID": ""}
    missing = run_cli("publish", IMAGE, "--source-image-id", SRC.format("x"), env=env)
    assert missing.code == 2 and "AZURE_SUBSCRIPTION_ID: missing subscription" in missing.stderr
    no_source = run_cli("publish", IMAGE, env=arm_emulator.env())
    assert no_source.code == 2 and "give exactly one source" in no_source.stderr
    half_vhd = run_cli("publish", IMAGE, "--vhd-uri", "https://a.blob.core.windows.net/v/x.vhd", env=arm_emulator.env())
    assert half_vhd.code == 2 and "--storage-account-id" in half_vhd.stderr
    unknown = run_cli("versions", "no-such-image", env=arm_emulator.env())
    assert unknown.code == 2 and "unknown image" in unknown.stderr


def test_unknown_region_in_catalog_exits_2_with_location(run_cli, arm_emulator, catalog_copy):
    path = catalog_copy / "base-dsvm.yaml"
    path.write_text(path.read_text().replace("{name: westus3, replicas: 1}", "{name: westus9, replicas: 1}"))
    result = run_cli("--catalog", str(catalog_copy), "publish", IMAGE, "--source-image-id", SRC.format("x"),
                     env=arm_emulator.env())
    assert result.code == 2 and "unknown region 'westus9'" in result.stderr
    assert f"{path}:" in result.stderr


def test_immutable_definition_mismatch_is_a_located_error(run_cli, arm_emulator, catalog):
    model = catalog.model(IMAGE)
    g = model.gallery
    settings = arm_emulator.settings
    publish_version(catalog, IMAGE, source=_source(), version="1.0.0", settings=settings)
    compute = compute_client(settings)
    compute.gallery_image_versions.begin_delete(g.resource_group, g.gallery, g.definition, "1.0.0").result()
    compute.gallery_images.begin_delete(g.resource_group, g.gallery, g.definition).result()
    compute.gallery_images.begin_create_or_update(g.resource_group, g.gallery, g.definition, {
        "location": "eastus2", "properties": {"osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V1",
                                             "identifier": g.identifier.model_dump()}}).result()
    result = _publish(run_cli, arm_emulator)
    assert result.code == 2
    assert "gallery.hyper_v_generation: gallery image definition property 'hyperVGeneration' is 'V1'" in result.stderr
    assert "base-dsvm.yaml:" in result.stderr
    assert [v.name for v in compute.gallery_image_versions.list_by_gallery_image(
        g.resource_group, g.gallery, g.definition)] == []


def test_definition_matches_the_catalog(arm_emulator, catalog):
    model = catalog.model(IMAGE)
    g = model.gallery
    result = publish_version(catalog, IMAGE, source=_source(), settings=arm_emulator.settings)
    props = result.definition["properties"]
    assert props["osType"] == "Linux" and props["osState"] == "Generalized"
    assert props["hyperVGeneration"] == g.hyper_v_generation and props["architecture"] == g.architecture
    assert props["identifier"] == g.identifier.model_dump()
    features = {f["name"]: f["value"] for f in props["features"]}
    assert features["IsAcceleratedNetworkSupported"] == str(g.features.accelerated_networking)
    assert features["DiskControllerTypes"] == ", ".join(g.features.disk_controller_types)
    assert props["description"] == model.description
    version = compute_client(arm_emulator.settings).gallery_image_versions.get(
        g.resource_group, g.gallery, g.definition, result.version).as_dict()
    profile = version["properties"]["publishingProfile"]
    assert profile["storageAccountType"] == g.storage_account_type.value
    assert profile["replicationMode"] == g.replication_mode
    assert {r["name"]: r["regionalReplicaCount"] for r in profile["targetRegions"]} == {
        "East US 2": g.target_regions[0].replicas, "West US 3": g.target_regions[1].replicas}
    eol = dt.datetime.fromisoformat(profile["endOfLifeDate"]).date()
    assert eol == dt.datetime.now(dt.UTC).date() + dt.timedelta(days=g.end_of_life_days)


@pytest.mark.parametrize("source", [
    Source(vm_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/vm1"),
    Source(gallery_version_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/i/"
                              "versions/1.0.0"),
    Source(vhd_uri="https://acct.blob.core.windows.net/vhds/disk.vhd",
           storage_account_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acct"),
])
def test_every_source_kind_publishes_and_reruns_as_no_op(arm_emulator, catalog, source):
    first = publish_version(catalog, IMAGE, source=source, version="3.0.0", settings=arm_emulator.settings)
    again = publish_version(catalog, IMAGE, source=source, version="3.0.0", settings=arm_emulator.settings)
    assert (first.action, again.action) == ("created", "unchanged")


def test_cli_shows_per_region_progress_and_keeps_secrets_out(run_cli, arm_emulator, tmp_path):
    arm_emulator.configure(replication_delay=0.6)
    result = _publish(run_cli, arm_emulator)
    assert result.code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip().startswith("replication")]
    assert any("Replicating" in line and "East US 2" in line and "West US 3" in line for line in lines)
    assert "Completed 100%" in lines[-1]
    assert "emulator-token" not in result.stdout + result.stderr
    written = "".join(p.read_text(errors="replace") for p in Path(tmp_path).rglob("*") if p.is_file())
    assert "emulator-token" not in written


def test_api_rejects_bad_version_before_any_request(arm_emulator, catalog):
    with pytest.raises(InputError):
        publish_version(catalog, IMAGE, source=_source(), version="v1", settings=arm_emulator.settings)
    assert arm_emulator.stats()["requests"] == 0
    with pytest.raises(OperationError, match="not found"):
        Lifecycle(catalog, IMAGE, arm_emulator.settings).versions()


def test_verification_recorded_after_publish_allows_promote(run_cli, arm_emulator):
    first = _json(_publish(run_cli, arm_emulator, "--version", "4.0.0", "--git-commit", "aaa", "--json"))
    assert first["tags"]["builder.verification"] == "pending"
    assert run_cli("promote", IMAGE, "4.0.0", env=arm_emulator.env()).code == 1
    failed = _json(_publish(run_cli, arm_emulator, "--version", "4.0.0", "--verification", "failed", "--json"))
    assert failed["action"] == "tags-updated" and failed["tags"]["builder.verification"] == "failed"
    assert run_cli("promote", IMAGE, "4.0.0", env=arm_emulator.env()).code == 1
    passed = _json(_publish(run_cli, arm_emulator, "--version", "4.0.0", "--verification", "passed",
                            "--git-commit", "bbb", "--json"))
    assert passed["action"] == "tags-updated" and passed["tags"]["builder.verification"] == "passed"
    assert passed["tags"]["builder.git_commit"] == "aaa", "provenance of the existing version must not change"
    rerun = _json(_publish(run_cli, arm_emulator, "--version", "4.0.0", "--json"))
    assert rerun["action"] == "unchanged" and rerun["tags"]["builder.verification"] == "passed"
    assert run_cli("promote", IMAGE, "4.0.0", env=arm_emulator.env()).code == 0


@pytest.mark.parametrize("args", [
    ["yank", IMAGE, "1.0.0", "--reason", "r"],
    ["gc", IMAGE, "--keep", "1"],
    ["publish", IMAGE, "--source-image-id", "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/i",
     "--version", "1.0.0", "--force"],
])
def test_destructive_commands_refuse_without_yes_when_not_interactive(run_cli, arm_emulator, args):
    """Nothing is asked of a pipe or CI; without --yes the command refuses before any request (issue 16)."""
    before = arm_emulator.stats()["requests"]
    result = run_cli(*args, env=arm_emulator.env())
    assert result.code == 2 and "--yes" in result.stderr and "Traceback" not in result.stderr
    assert arm_emulator.stats()["requests"] == before


def test_publish_refuses_an_image_validate_rejects(run_cli, arm_emulator, catalog_copy):
    """Every command that reads an image applies the stack rules first (issue 18); publish too."""
    path = catalog_copy / "nvidia-train.yaml"
    path.write_text(path.read_text().replace("fabric_manager: {version: 580.126.16}",
                                             "fabric_manager: {version: 580.95.05}"))
    before = arm_emulator.stats()["requests"]
    result = run_cli("--catalog", str(catalog_copy), "publish", IMAGE, "--source-image-id",
                     "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/i", env=arm_emulator.env())
    assert result.code == 2 and "Fabric Manager 580.95.05" in result.stderr
    assert arm_emulator.stats()["requests"] == before
