"""Every injected fault: nothing lost, nothing promoted that should not be, re-runs finish the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from functools import partial

import pytest

from builder.azure import Lifecycle, provenance, publish_version
from builder.azure.clients import compute_client
from builder.catalog.loader import load_catalog
from builder.errors import OperationError
from tests.conftest import REPO, builder_executable
from tests.fixtures.emulator import SRC, VERSIONS, run_together, source, wait_for

IMAGE = "ndh100-train"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "images")


def _publish(catalog, emu, version="1.0.0", image="img1", verification="passed"):
    return publish_version(catalog, IMAGE, source=source(image), version=version, settings=emu.settings,
                           tags=provenance(verification=verification))


def _remote(catalog, emu, version):
    g = catalog.model(IMAGE).gallery
    return compute_client(emu.settings).gallery_image_versions.get(
        g.resource_group, g.gallery, g.definition, version, expand="ReplicationStatus").as_dict()


def test_throttling_honours_retry_after(arm_emulator, catalog):
    arm_emulator.fault("throttle", count=1, method="PUT", path=VERSIONS, retry_after=1)
    arm_emulator.fault("throttle", count=4, method="GET", path="capsOperations", retry_after=0.05)
    started = time.monotonic()
    result = _publish(catalog, arm_emulator)
    elapsed = time.monotonic() - started
    assert result.action == "created" and set(result.regions.values()) == {"Completed"}
    assert elapsed >= 1.0, "the 429's Retry-After: 1 was not honoured (backoff alone is 0.01 s)"
    assert arm_emulator.stats()["faults_fired"] == 5
    assert arm_emulator.version_puts() == 2


def test_server_errors_are_retried(arm_emulator, catalog):
    arm_emulator.fault("error", count=2, status=503, method="PUT", path=VERSIONS)
    arm_emulator.fault("error", count=3, status=500, path="capsOperations")
    arm_emulator.fault("error", count=1, status=502, method="HEAD")
    result = _publish(catalog, arm_emulator)
    assert result.action == "created"
    assert arm_emulator.stats()["faults_fired"] == 6


def test_connection_resets_are_retried_without_duplicates(arm_emulator, catalog):
    arm_emulator.fault("reset", count=2, method="PUT", path=VERSIONS)
    arm_emulator.fault("reset", count=1, method="GET", path="capsOperations")
    result = _publish(catalog, arm_emulator)
    assert result.action == "created"
    life = Lifecycle(catalog, IMAGE, arm_emulator.settings)
    assert [v.version for v in life.versions()] == ["1.0.0"]
    assert arm_emulator.stats()["faults_fired"] == 3


def test_failed_operation_reports_arm_error_and_rerun_retries(arm_emulator, catalog, run_cli):
    arm_emulator.fault("lro_fail", method="PUT", path=VERSIONS, code="GalleryImageVersionCreationFailed",
                       message="Disk copy failed in the source region.")
    failed = run_cli("publish", IMAGE, "--source-image-id", SRC.format("img1"), "--version", "1.0.0",
                     "--verification", "passed", env=arm_emulator.env())
    assert failed.code == 1 and "Traceback" not in failed.stderr
    assert "GalleryImageVersionCreationFailed: Disk copy failed in the source region." in failed.stderr
    assert _remote(catalog, arm_emulator, "1.0.0")["properties"]["provisioningState"] == "Failed"
    life = Lifecycle(catalog, IMAGE, arm_emulator.settings)
    with pytest.raises(OperationError, match="only a Succeeded version"):
        life.promote("1.0.0", force=True)
    assert [v.state for v in life.versions()] == ["failed"]

    rerun = _publish(catalog, arm_emulator)
    assert rerun.action == "retried" and set(rerun.regions.values()) == {"Completed"}
    assert life.promote("1.0.0").exclude_from_latest is False


def test_replication_failing_in_one_region(arm_emulator, catalog):
    arm_emulator.fault("replication_fail", method="PUT", path=VERSIONS, region="westus3")
    with pytest.raises(OperationError) as caught:
        _publish(catalog, arm_emulator)
    assert "ReplicationFailed" in str(caught.value) and "West US 3" in str(caught.value)
    remote = _remote(catalog, arm_emulator, "1.0.0")
    summary = {s["region"]: s["state"] for s in remote["properties"]["replicationStatus"]["summary"]}
    assert summary == {"East US 2": "Completed", "West US 3": "Failed"}
    life = Lifecycle(catalog, IMAGE, arm_emulator.settings)
    with pytest.raises(OperationError):
        life.promote("1.0.0", force=True)
    assert not any(v.latest for v in life.versions())

    rerun = _publish(catalog, arm_emulator)
    assert rerun.action == "retried" and rerun.regions == {"East US 2": "Completed", "West US 3": "Completed"}


def test_publisher_killed_mid_operation_then_rerun(arm_emulator, catalog, tmp_path):
    arm_emulator.configure(replication_delay=2.0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "BUILDER_STATE": str(tmp_path / "state"), **arm_emulator.env()}
    args = [*builder_executable(), "publish", IMAGE, "--source-image-id", SRC.format("img1"), "--version", "1.0.0",
            "--build-id", "b-42", "--json"]
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: arm_emulator.version_puts() > 0 or proc.poll() is not None, "the version PUT", timeout=30)
    assert proc.poll() is None, "publisher never created the version"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert _remote(catalog, arm_emulator, "1.0.0")["properties"]["provisioningState"] == "Creating"

    rerun = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    # "resumed" when the re-run finds it still Creating; on a loaded machine replication may finish first
    assert result["action"] in ("resumed", "unchanged") and set(result["regions"].values()) == {"Completed"}
    assert result["tags"]["builder.build_id"] == "b-42"
    assert arm_emulator.version_puts() == 1


def test_concurrent_publishes_of_one_version_one_wins(arm_emulator, catalog):
    arm_emulator.configure(replication_delay=0.5)
    _publish(catalog, arm_emulator, version="0.0.1")  # definition exists: both race on the version only
    names = ("left", "right")
    racing = [partial(_publish, catalog, arm_emulator, image=name) for name in names]
    outcomes = dict(zip(names, run_together(*racing), strict=True))
    winners = [n for n, o in outcomes.items() if not isinstance(o, Exception)]
    losers = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(winners) == 1 and len(losers) == 1 and isinstance(losers[0], OperationError), outcomes
    assert "concurrently" in str(losers[0]) or "different source" in str(losers[0])
    remote = _remote(catalog, arm_emulator, "1.0.0")
    assert remote["properties"]["storageProfile"]["source"]["id"].endswith(f"/images/{winners[0]}")


def test_concurrent_auto_numbered_publishes_both_land(arm_emulator, catalog):
    publish_version(catalog, IMAGE, source=source("seed"), version="0.0.1", settings=arm_emulator.settings)
    results = run_together(*(partial(publish_version, catalog, IMAGE, source=source(name),
                                     settings=arm_emulator.settings) for name in ("a", "b")))
    assert not any(isinstance(r, Exception) for r in results), results
    assert len(results) == 2 and len({r.version for r in results}) == 2
