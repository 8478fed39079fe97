"""Nothing duplicated, nothing resurrected (issue 18): one source maps to one version, conditional lifecycle
updates, state files written whole under a lock, diff precedence, every input checked before the first request."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
from functools import partial
from pathlib import Path

import pytest

from builder.azure import Lifecycle, Source, provenance, publish_version
from builder.azure.clients import compute_client
from builder.azure.publish import tag_version
from builder.catalog.loader import load_catalog
from builder.errors import InputError, OperationError
from tests.conftest import REPO, builder_executable
from tests.fixtures.emulator import SRC, VERSIONS, run_together, source, wait_for

IMAGE = "ndh100-train"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "images")


def _names(catalog, emu) -> list[str]:
    return [v.version for v in Lifecycle(catalog, IMAGE, emu.settings).versions()]


# ------------------------------------------------------------------ 1. one source, one version


def test_rerun_without_version_after_success_is_unchanged(run_cli, arm_emulator, catalog):
    args = ("publish", IMAGE, "--source-image-id", SRC.format("img1"), "--json")
    first = run_cli(*args, env=arm_emulator.env())
    second = run_cli(*args, env=arm_emulator.env())
    assert first.code == 0 and second.code == 0, first.stderr + second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert two["version"] == one["version"] and two["action"] == "unchanged"
    assert _names(catalog, arm_emulator) == [one["version"]]


def test_rerun_without_version_after_kill_9_resumes_its_version(arm_emulator, catalog, tmp_path):
    arm_emulator.configure(replication_delay=1.5)
    env = {**os.environ, "PYTHONPATH": str(REPO), "BUILDER_STATE": str(tmp_path / "state"), **arm_emulator.env()}
    args = [*builder_executable(), "publish", IMAGE, "--source-image-id", SRC.format("img1"), "--json"]
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: arm_emulator.version_puts() > 0 or proc.poll() is not None, "the version PUT")
    assert proc.poll() is None, "the publisher ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    killed = _names(catalog, arm_emulator)
    assert len(killed) == 1

    rerun = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["version"] == killed[0] and result["action"] in ("resumed", "unchanged")
    assert _names(catalog, arm_emulator) == killed and arm_emulator.version_puts() == 1


def test_lost_create_response_finds_its_own_version(arm_emulator, catalog):
    arm_emulator.fault("drop_response", count=1, method="PUT", path=VERSIONS)
    result = publish_version(catalog, IMAGE, source=source(), settings=arm_emulator.settings)
    assert arm_emulator.stats()["faults_fired"] == 1
    assert result.version.endswith(".0") and set(result.regions.values()) == {"Completed"}
    assert _names(catalog, arm_emulator) == [result.version]


@pytest.mark.parametrize("version", [None, "5.0.0"])
def test_two_racing_runs_of_one_source_make_one_version(arm_emulator, catalog, version):
    publish_version(catalog, IMAGE, source=source("seed"), version="0.0.1", settings=arm_emulator.settings)
    outcomes = run_together(*(partial(publish_version, catalog, IMAGE, source=source("same"), version=version,
                                      settings=arm_emulator.settings) for _ in range(2)))
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert len(outcomes) == 2 and outcomes[0].version == outcomes[1].version
    assert sorted(_names(catalog, arm_emulator)) == sorted(["0.0.1", outcomes[0].version])


def test_runs_colliding_on_the_create_share_one_version(arm_emulator, catalog):
    """Both runs number before either create lands: the first create is held until the second one is done."""
    settings = arm_emulator.settings
    publish_version(catalog, IMAGE, source=source("seed"), version="0.0.1", settings=settings)
    arm_emulator.fault("hold", count=1, method="PUT", path=VERSIONS)
    first = partial(publish_version, catalog, IMAGE, source=source("same"), settings=settings)
    with arm_emulator.while_held(first, "the first run's create to be held") as outcomes:
        second = publish_version(catalog, IMAGE, source=source("same"), settings=settings)
    assert len(outcomes) == 1 and not isinstance(outcomes[0], Exception), outcomes
    assert outcomes[0].version == second.version and second.action == "created"
    assert sorted(_names(catalog, arm_emulator)) == sorted(["0.0.1", second.version])


# ------------------------------------------------------------------ 2. no stale lifecycle writes


def test_emulator_serves_etags_and_honours_if_match(arm_emulator, catalog):
    from azure.core.exceptions import HttpResponseError

    publish_version(catalog, IMAGE, source=source(), version="1.0.0", settings=arm_emulator.settings)
    g = catalog.model(IMAGE).gallery
    compute = compute_client(arm_emulator.settings)
    args = (g.resource_group, g.gallery, g.definition, "1.0.0")
    etag = compute.gallery_image_versions.get(*args, cls=lambda resp, _d, _h: resp.http_response.headers["ETag"])
    with pytest.raises(HttpResponseError) as stale:
        compute.gallery_image_versions.begin_update(*args, {"tags": {"a": "b"}}, headers={"If-Match": '"stale"'})
    assert stale.value.status_code == 412 and stale.value.error.code == "PreconditionFailed"
    compute.gallery_image_versions.begin_update(*args, {"tags": {"a": "b"}}, headers={"If-Match": etag}).result()
    changed = compute.gallery_image_versions.get(*args, cls=lambda resp, _d, _h: resp.http_response.headers["ETag"])
    assert changed != etag


def test_delayed_promote_cannot_undo_a_concurrent_yank(arm_emulator, catalog):
    settings = arm_emulator.settings
    publish_version(
        catalog, IMAGE, source=source(), version="1.0.0", settings=settings, tags=provenance(verification="passed")
    )
    # promote's PATCH is held until the yank is done, then throttled once: its retry lands after the yank
    arm_emulator.fault("hold", count=1, method="PATCH", path=VERSIONS)
    arm_emulator.fault("throttle", count=1, method="PATCH", path=VERSIONS, retry_after=0)

    def promote():
        return Lifecycle(catalog, IMAGE, settings).promote("1.0.0")

    with arm_emulator.while_held(promote, "promote's PATCH to be held") as outcome:
        Lifecycle(catalog, IMAGE, settings).yank("1.0.0", "driver regression")
    assert len(outcome) == 1 and isinstance(outcome[0], OperationError), outcome
    assert "yanked" in str(outcome[0])
    [info] = Lifecycle(catalog, IMAGE, settings).versions()
    assert info.state == "yanked" and not info.latest and info.exclude_from_latest
    assert info.tags["builder.yanked"] == "driver regression"


def test_expired_version_is_not_promoted_without_force(arm_emulator, catalog):
    settings = arm_emulator.settings
    publish_version(
        catalog, IMAGE, source=source(), version="1.0.0", settings=settings, tags=provenance(verification="passed")
    )
    g = catalog.model(IMAGE).gallery
    compute_client(settings).gallery_image_versions.begin_update(
        g.resource_group,
        g.gallery,
        g.definition,
        "1.0.0",
        {"properties": {"publishingProfile": {"endOfLifeDate": "2020-01-01T00:00:00+00:00"}}},
    ).result()
    life = Lifecycle(catalog, IMAGE, settings)
    with pytest.raises(OperationError, match="expired"):
        life.promote("1.0.0")
    assert not any(v.latest for v in life.versions())
    assert life.promote("1.0.0", force=True).exclude_from_latest is False


def test_gc_keeps_a_version_promoted_after_it_was_listed(arm_emulator, catalog):
    settings = arm_emulator.settings
    for version in ("1.0.0", "1.0.1"):
        publish_version(
            catalog,
            IMAGE,
            source=source(version),
            version=version,
            settings=settings,
            tags=provenance(verification="passed"),
        )
    arm_emulator.fault("hold", count=1, method="DELETE", path=r"/versions/1\.0\.1$")

    def gc():
        return Lifecycle(catalog, IMAGE, settings).gc(keep=0)

    with arm_emulator.while_held(gc, "gc's delete of 1.0.1 to be held") as outcome:
        Lifecycle(catalog, IMAGE, settings).promote("1.0.1")
    assert outcome == [[{"version": "1.0.0", "reason": "staged"}]], outcome
    assert [(v.version, v.latest) for v in Lifecycle(catalog, IMAGE, settings).versions()] == [("1.0.1", True)]


# ------------------------------------------------------------------ 3. state files


def _record_many(state: str, worker: int, barrier, count: int) -> None:
    from builder.registry import LocalRegistry

    registry = LocalRegistry(Path(state))
    barrier.wait(timeout=60)
    for n in range(count):
        registry.record(IMAGE, f"{worker}.0.{n}", {"id": f"w{worker}-{n}"})


def test_parallel_publishes_lose_no_registry_entry(tmp_path):
    from builder.registry import LocalRegistry

    ctx = multiprocessing.get_context("fork")
    workers, count = 6, 25
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_record_many, args=(str(tmp_path), w, barrier, count)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * workers
    recorded = set(LocalRegistry(tmp_path).versions(IMAGE))
    assert recorded == {f"{w}.0.{n}" for w in range(workers) for n in range(count)}
    assert not [p.name for p in tmp_path.iterdir() if p.name != "registry.json" and not p.name.endswith(".lock")]


@pytest.mark.parametrize(
    "command", [("plan", IMAGE), ("reference", IMAGE), ("publish", IMAGE, "--source-image-id", SRC.format("x"))]
)
def test_corrupted_registry_is_exit_2_naming_the_file(run_cli, arm_emulator, tmp_path, command):
    state = tmp_path / "state"
    state.mkdir()
    (state / "registry.json").write_text('{"images": {"ndh100-train": ')
    result = run_cli(*command, env=arm_emulator.env())
    assert result.code == 2, result.stderr
    assert str(state / "registry.json") in result.stderr and "Traceback" not in result.stderr
    assert arm_emulator.stats()["requests"] == 0


# ------------------------------------------------------------------ 4. diff precedence


def test_diff_of_versions_published_from_this_state_dir_reads_the_gallery_tags(
    run_cli, arm_emulator, catalog, tmp_path
):
    published = run_cli(
        "publish", IMAGE, "--source-image-id", SRC.format("a"), "--version", "1.0.0", env=arm_emulator.env()
    )
    assert published.code == 0, published.stderr
    second = publish_version(catalog, IMAGE, source=source("b"), version="1.0.1", settings=arm_emulator.settings)
    # what `builder publish` records for it (as for 1.0.0 above)
    from builder.registry import LocalRegistry

    LocalRegistry(tmp_path / "state").record(
        IMAGE, "1.0.1", {"id": second.id, "action": second.action, "regions": second.regions}
    )
    tag_version(catalog, IMAGE, "1.0.1", {"component.cuda": "99.0.0"}, arm_emulator.settings)
    result = run_cli("diff", IMAGE, "1.0.0", "1.0.1", env=arm_emulator.env())
    assert result.code == 0, result.stderr
    assert "No component changes" not in result.stdout
    assert "| cuda |" in result.stdout and "99.0.0" in result.stdout


# ------------------------------------------------------------------ 5. input checked before any request


BAD_VERSIONS = ["1.0.0\n", "\uff11.\uff10.\uff10", "\u0661.\u0660.\u0660", " 1.0.0", "1.0.0 ", "1.0.0\x00"]


def test_non_ascii_or_padded_versions_never_reach_azure(run_cli, arm_emulator, catalog):
    for args in (
        ("publish", IMAGE, "--source-image-id", SRC.format("x"), "--version", "1.0.0\n"),
        ("promote", IMAGE, "\uff11.\uff10.\uff10"),
        ("yank", IMAGE, "\u0661.\u0660.\u0660", "--reason", "r"),
    ):
        result = run_cli(*args, env=arm_emulator.env())
        assert result.code == 2 and "Traceback" not in result.stderr, (args, result.stderr)
    life = Lifecycle(catalog, IMAGE, arm_emulator.settings)
    for version in BAD_VERSIONS:
        for call in (
            lambda v: publish_version(catalog, IMAGE, source=source(), version=v, settings=arm_emulator.settings),
            life.promote,
            lambda v: life.yank(v, "r"),
            lambda v: tag_version(catalog, IMAGE, v, {"a": "b"}, arm_emulator.settings),
        ):
            with pytest.raises(InputError):
                call(version)
    assert arm_emulator.stats()["requests"] == 0


def test_bad_publish_arguments_exit_2_before_any_request(run_cli, arm_emulator, catalog):
    for args in (
        ("--source-image-id", SRC.format("x"), "--region", "eastus2", "--region", "East US 2=2"),
        ("--source-image-id", SRC.format("x") + "\n"),
    ):
        result = run_cli("publish", IMAGE, *args, env=arm_emulator.env())
        assert result.code == 2 and "Traceback" not in result.stderr, (args, result.stderr)
    assert (
        "given twice"
        in run_cli(
            "publish",
            IMAGE,
            "--source-image-id",
            SRC.format("x"),
            "--region",
            "eastus2",
            "--region",
            "eastus2",
            env=arm_emulator.env(),
        ).stderr
    )
    account = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a"
    for bad in (
        {"managed_image_id": SRC.format("x") + "\n"},
        {"managed_image_id": "/subscriptions/s/resourceGroups/../providers/Microsoft.Compute/images/x"},
        {"managed_image_id": SRC.format("..")},
        {"vm_id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v\t"},
        {"vhd_uri": "https://a.blob.core.windows.net/v/x.vhd\n", "storage_account_id": account},
        {"vhd_uri": "https://a.blob.core.windows.net/v/x.vhd", "storage_account_id": account + "\n"},
    ):
        with pytest.raises(InputError):
            Source(**bad)
    for regions in ([("eastus2", 1), ("eastus2", 1)], [("westus3", 1), ("West US 3", 2)], [("eastus2\n", 1)]):
        with pytest.raises(InputError):
            publish_version(catalog, IMAGE, source=source(), settings=arm_emulator.settings, regions_override=regions)
    assert arm_emulator.stats()["requests"] == 0


def test_bad_destination_names_exit_2_before_any_request(run_cli, arm_emulator, catalog_copy):
    from builder.azure.gallery import Destination

    path = catalog_copy / "base-dsvm.yaml"
    assert "resource_group: rg-ai-images" in path.read_text()
    path.write_text(path.read_text().replace("resource_group: rg-ai-images", 'resource_group: "../../subscriptions"'))
    result = run_cli(
        "--catalog", str(catalog_copy), "publish", IMAGE, "--source-image-id", SRC.format("x"), env=arm_emulator.env()
    )
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    assert arm_emulator.stats()["requests"] == 0
    for names in (
        ("../../x", "ai_images", "d"),
        ("rg.", "ai_images", "d"),
        ("rg", "ai_im\u0430ges", "d"),
        ("rg", "ai_images", "d\n"),
        ("rg", "ai-images", "d"),
    ):
        with pytest.raises(InputError):
            Destination(*names, "eastus2").require_valid()
    assert Destination("rg-ai-images", "ai_images", "ndh100-train", "eastus2").require_valid()
