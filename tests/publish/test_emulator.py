"""The ARM emulator as the real SDK clients (and a raw HTTPS client, for headers) see it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from builder.azure.clients import compute_client, resource_client
from tests.conftest import REPO, builder_executable, default_sigint

RG, GALLERY, IMAGE = "rg-test", "gal_test", "img-test"
SOURCE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/src"
API = "2026-03-03"


def _definition(compute, location="eastus2"):
    compute.galleries.begin_create_or_update(RG, GALLERY, {"location": location}).result()
    return compute.gallery_images.begin_create_or_update(RG, GALLERY, IMAGE, {
        "location": location, "properties": {"osType": "Linux", "osState": "Generalized",
                                             "identifier": {"publisher": "p", "offer": "o", "sku": "s"}}}).result()


def _version_body(regions=("eastus2",), **profile):
    return {"location": "eastus2", "properties": {
        "storageProfile": {"source": {"id": SOURCE}},
        "publishingProfile": {"targetRegions": [{"name": r} for r in regions], **profile}}}


@pytest.fixture
def clients(arm_emulator):
    settings = arm_emulator.settings
    resources = resource_client(settings)
    resources.resource_groups.create_or_update(RG, {"location": "eastus2"})
    return compute_client(settings), resources


def _raw(handle, method, path, body=None, api=API):
    url = f"{handle.base_url}/subscriptions/{handle.subscription}{path}"
    params = {"api-version": api} if api else {}
    return requests.request(method, url, params=params, json=body, verify=handle.cert, timeout=10,
                            headers={"Authorization": "Bearer t"})


def test_resource_group_head_and_lowercase_path(arm_emulator):
    resources = resource_client(arm_emulator.settings)
    assert resources.resource_groups.check_existence("rg-new") is False
    created = resources.resource_groups.create_or_update("rg-new", {"location": "West US 3"})
    assert created.location == "westus3"
    assert resources.resource_groups.check_existence("rg-new") is True
    assert arm_emulator.stats()["by_method"]["HEAD"] == 2


def test_put_answers_201_creating_with_async_operation(arm_emulator, clients):
    arm_emulator.configure(operation_delay=0.5)
    response = _raw(arm_emulator, "PUT", f"/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/g1",
                    {"location": "eastus2"})
    assert response.status_code == 201
    assert response.json()["properties"]["provisioningState"] == "Creating"
    operation = response.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.Compute/locations/eastus2/capsOperations/" in operation
    assert int(response.headers["Retry-After"]) >= 1
    status = requests.get(operation, verify=arm_emulator.cert, headers={"Authorization": "Bearer t"}, timeout=5)
    assert status.json()["status"] == "InProgress" and "startTime" in status.json()
    time.sleep(0.6)
    status = requests.get(operation, verify=arm_emulator.cert, headers={"Authorization": "Bearer t"}, timeout=5)
    assert status.json()["status"] == "Succeeded" and "endTime" in status.json()


def test_api_version_is_checked_and_auth_required(arm_emulator, clients):
    path = f"/resourceGroups/{RG}/providers/Microsoft.Compute/galleries"
    assert _raw(arm_emulator, "GET", path, api=None).json()["error"]["code"] == "MissingApiVersionParameter"
    bad = _raw(arm_emulator, "GET", path, api="2019-01-01")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "NoRegisteredProviderFound"
    anonymous = requests.get(f"{arm_emulator.base_url}/subscriptions/x{path}", params={"api-version": API},
                             verify=arm_emulator.cert, timeout=5)
    assert anonymous.status_code == 401


def test_version_defaults_regions_and_replication_status(arm_emulator, clients):
    compute, _ = clients
    _definition(compute)
    arm_emulator.configure(region_delays={"westus3": 0.6})
    poller = compute.gallery_image_versions.begin_create_or_update(
        RG, GALLERY, IMAGE, "1.0.0", _version_body(("EASTUS2", "West US 3")))
    time.sleep(0.3)
    during = compute.gallery_image_versions.get(RG, GALLERY, IMAGE, "1.0.0", expand="ReplicationStatus").as_dict()
    states = {s["region"]: s["state"] for s in during["properties"]["replicationStatus"]["summary"]}
    assert states == {"East US 2": "Completed", "West US 3": "Replicating"}
    assert during["properties"]["replicationStatus"]["aggregatedState"] == "InProgress"
    done = poller.result().as_dict()
    profile = done["properties"]["publishingProfile"]
    assert [r["name"] for r in profile["targetRegions"]] == ["East US 2", "West US 3"]
    assert profile["replicaCount"] == 1 and profile["storageAccountType"] == "Standard_LRS"
    assert profile["excludeFromLatest"] is False and profile["publishedDate"]
    assert all(r["regionalReplicaCount"] == 1 for r in profile["targetRegions"])
    plain = compute.gallery_image_versions.get(RG, GALLERY, IMAGE, "1.0.0").as_dict()
    assert "replicationStatus" not in plain["properties"]


@pytest.mark.parametrize("name", ["1.0", "1.0.x", "1.0.2147483648"])
def test_bad_version_name_is_invalid_parameter(arm_emulator, clients, name):
    compute, _ = clients
    _definition(compute)
    with pytest.raises(HttpResponseError) as caught:
        compute.gallery_image_versions.begin_create_or_update(RG, GALLERY, IMAGE, name, _version_body())
    assert caught.value.error.code == "InvalidParameter"
    assert caught.value.error.target == "galleryImageVersionName"
    assert "Major(int).Minor(int).Patch(int)" in caught.value.error.message


def test_vhd_uri_as_source_id_is_rejected(arm_emulator, clients):
    compute, _ = clients
    _definition(compute)
    body = _version_body()
    body["properties"]["storageProfile"] = {"source": {"id": "https://acct.blob.core.windows.net/vhds/x.vhd"}}
    with pytest.raises(HttpResponseError) as caught:
        compute.gallery_image_versions.begin_create_or_update(RG, GALLERY, IMAGE, "1.0.0", body)
    assert caught.value.error.code == "InvalidParameter"


def test_nested_resources_block_delete_and_not_found(arm_emulator, clients):
    compute, _ = clients
    _definition(compute)
    compute.gallery_image_versions.begin_create_or_update(RG, GALLERY, IMAGE, "1.0.0", _version_body()).result()
    with pytest.raises(ResourceExistsError) as caught:
        compute.gallery_images.begin_delete(RG, GALLERY, IMAGE).result()
    assert caught.value.error.code == "CannotDeleteResource"
    with pytest.raises(ResourceExistsError):
        compute.galleries.begin_delete(RG, GALLERY).result()
    compute.gallery_image_versions.begin_delete(RG, GALLERY, IMAGE, "1.0.0").result()
    with pytest.raises(ResourceNotFoundError) as missing:
        compute.gallery_image_versions.get(RG, GALLERY, IMAGE, "1.0.0")
    assert missing.value.error.code == "ResourceNotFound"
    compute.gallery_images.begin_delete(RG, GALLERY, IMAGE).result()
    compute.galleries.begin_delete(RG, GALLERY).result()
    assert list(compute.galleries.list_by_resource_group(RG)) == []


def test_lists_page_with_next_link(arm_emulator, clients):
    compute, _ = clients
    _definition(compute)
    arm_emulator.configure(page_size=2, replication_delay=0)
    pollers = [compute.gallery_image_versions.begin_create_or_update(RG, GALLERY, IMAGE, f"1.0.{n}", _version_body())
               for n in range(5)]
    for poller in pollers:
        poller.result()
    first = _raw(arm_emulator, "GET", f"/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/{GALLERY}/images/"
                 f"{IMAGE}/versions").json()
    assert len(first["value"]) == 2 and first["nextLink"].startswith(arm_emulator.base_url)
    before = arm_emulator.stats()["by_method"]["GET"]
    names = [v.name for v in compute.gallery_image_versions.list_by_gallery_image(RG, GALLERY, IMAGE)]
    assert names == [f"1.0.{n}" for n in range(5)]
    assert arm_emulator.stats()["by_method"]["GET"] - before == 3


def test_immutable_definition_change_is_refused(arm_emulator, clients):
    compute, _ = clients
    _definition(compute)
    with pytest.raises(ResourceExistsError) as caught:
        compute.gallery_images.begin_create_or_update(RG, GALLERY, IMAGE, {
            "location": "eastus2", "properties": {"osType": "Linux", "osState": "Generalized",
                                                 "hyperVGeneration": "V2",
                                                 "identifier": {"publisher": "p", "offer": "o", "sku": "s"}}})
    assert caught.value.error.code == "PropertyChangeNotAllowed"


def test_routes_are_discovered_from_routes_modules(tmp_path, monkeypatch, emulator_factory):
    import builder.emulator as package

    (tmp_path / "routes_zz_extra.py").write_text(
        "from builder.emulator.server import Response\n"
        "def register(router):\n"
        "    router.add('GET', r'/subscriptions/[^/]+/providers/Test\\.Extra/things', "
        "lambda req, m: Response(200, {'value': ['ok']}))\n")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    handle = emulator_factory()
    assert "routes_zz_extra" in handle.stats()["routes"]
    assert _raw(handle, "GET", "/providers/Test.Extra/things").json() == {"value": ["ok"]}
    sys.modules.pop("builder.emulator.routes_zz_extra", None)


def test_cli_emulator_prints_ready_line_and_keeps_state(tmp_path):
    from builder.azure import Settings, StaticTokenCredential

    state = tmp_path / "state"

    def start():
        proc = subprocess.Popen([*builder_executable(), "emulator", "--port", "0", "--state", str(state),
                                 "--operation-delay", "0"], stdout=subprocess.PIPE, text=True, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=default_sigint)
        ready = json.loads(proc.stdout.readline())
        return proc, ready

    proc, ready = start()
    try:
        assert ready["base_url"].startswith("https://127.0.0.1:") and os.path.isfile(ready["cert"])
        settings = Settings("sub", base_url=ready["base_url"], cert=ready["cert"], credential=StaticTokenCredential(),
                            polling_interval=0)
        resource_client(settings).resource_groups.create_or_update(RG, {"location": "eastus2"})
        compute_client(settings).galleries.begin_create_or_update(RG, GALLERY, {"location": "eastus2"}).result()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 130  # Ctrl-C is an interruption, as for every command (issue 18)
    proc, again = start()
    try:
        assert again["cert"] == ready["cert"]
        settings = Settings("sub", base_url=again["base_url"], cert=again["cert"], credential=StaticTokenCredential(),
                            polling_interval=0)
        gallery = compute_client(settings).galleries.get(RG, GALLERY)
        assert gallery.properties.provisioning_state == "Succeeded"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_cli_emulator_loads_faults_and_rejects_bad_ones(tmp_path, run_cli):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"kind": "meteor"}]))
    result = run_cli("emulator", "--state", str(tmp_path / "s"), "--faults", str(bad))
    assert result.code == 2 and "unknown fault kind 'meteor'" in result.stderr and f"{bad}:" in result.stderr
    good = tmp_path / "faults.json"
    good.write_text(json.dumps([{"kind": "throttle", "count": 1, "method": "HEAD", "retry_after": 0}]))
    proc = subprocess.Popen([*builder_executable(), "emulator", "--state", str(tmp_path / "s"), "--faults", str(good)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=default_sigint)
    try:
        ready = json.loads(proc.stdout.readline())
        head = requests.head(f"{ready['base_url']}/subscriptions/s/resourcegroups/rg?api-version=2025-04-01",
                             verify=ready["cert"], timeout=5)
        assert head.status_code == 429 and head.headers["Retry-After"] == "0"
        stats = requests.get(f"{ready['base_url']}/_emulator/stats", verify=ready["cert"], timeout=5).json()
        assert stats["faults_fired"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_if_none_match_star_refuses_an_existing_version(arm_emulator, clients):
    compute, _ = clients
    _definition(compute)
    compute.gallery_image_versions.begin_create_or_update(RG, GALLERY, IMAGE, "1.0.0", _version_body(),
                                                          headers={"If-None-Match": "*"})
    with pytest.raises(HttpResponseError) as caught:
        compute.gallery_image_versions.begin_create_or_update(RG, GALLERY, IMAGE, "1.0.0", _version_body(),
                                                              headers={"If-None-Match": "*"})
    assert caught.value.status_code == 412 and caught.value.error.code == "PreconditionFailed"
    with pytest.raises(ResourceExistsError) as busy:
        compute.gallery_image_versions.begin_create_or_update(RG, GALLERY, IMAGE, "1.0.0", _version_body())
    assert busy.value.error.code == "OperationNotAllowed"


def test_resource_group_delete_removes_everything_below(arm_emulator, clients):
    compute, resources = clients
    _definition(compute)
    resources.resource_groups.begin_delete(RG).result()
    assert resources.resource_groups.check_existence(RG) is False
    resources.resource_groups.create_or_update(RG, {"location": "eastus2"})
    assert list(compute.galleries.list_by_resource_group(RG)) == []
