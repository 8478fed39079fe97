"""ARM routes: resource groups, Compute Gallery galleries/images/versions and their long-running operations.

Behaves as Azure does where the SDK can tell: PUT 201 + ``Azure-AsyncOperation`` + ``Retry-After`` with
``provisioningState: Creating``; operations finish lazily by the clock (so state survives restarts);
versions replicate per region; defaults filled; real error codes.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
import time
import uuid
from typing import Any

from builder.catalog import reference_data
from builder.emulator.server import ArmError, Request, Response, Router

COMPUTE_API = frozenset({"2024-03-03", "2025-03-03", "2025-12-03", "2026-03-03"})
RESOURCES_API = frozenset({"2021-04-01", "2022-09-01", "2024-03-01", "2024-11-01", "2025-01-01", "2025-03-01",
                           "2025-04-01"})
SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<rg>[^/]+)"
GALLERIES = RG + r"/providers/Microsoft\.Compute/galleries"
GALLERY = GALLERIES + r"/(?P<gallery>[^/]+)"
IMAGE = GALLERY + r"/images/(?P<image>[^/]+)"
VERSION = IMAGE + r"/versions/(?P<version>[^/]+)"
OPERATION = SUB + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/capsOperations/(?P<op>[^/]+)"
RG_OPERATION = SUB + r"/operationresults/(?P<op>[^/]+)"

# ARM's own rule for gallery and image names, in ASCII (its message quotes ^[^_\W][\w-._]{0,79}(?<![-.])$)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}(?<![-.])", re.ASCII)
VERSION_NAME = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)", re.ASCII)  # fullmatch: no Unicode digits, no "\n"
STORAGE_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
BUSY = ("Creating", "Updating", "Deleting", "Migrating")
IMMUTABLE_IMAGE = ("osType", "osState", "hyperVGeneration", "identifier", "architecture")


# ------------------------------------------------------------------ helpers


def _now() -> float:
    return time.time()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _public(resource: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in copy.deepcopy(resource).items() if not k.startswith("_")}
    if resource.get("_etag"):
        body["etag"] = resource["_etag"]
    return body


def _new_etag(resource: dict[str, Any]) -> None:
    """A fresh entity tag on every change a client makes (PUT, PATCH, DELETE); ARM leaves storing and validating
    ETags to the resource provider (Azure/azure-resource-manager-rpc v1.0/Addendum.md, "ETags for Resources")."""
    resource["_etag"] = f'"{uuid.uuid4()}"'


def _etag_header(resource: dict[str, Any]) -> dict[str, str]:
    return {"ETag": resource["_etag"]} if resource.get("_etag") else {}


def _region(name: str, target: str) -> tuple[str, str]:
    """``(short, display)`` for a region name in any spelling; InvalidParameter when unknown."""
    short = reference_data.normalise_region(str(name))
    if short is None:
        raise ArmError(400, "InvalidParameter", f"The region '{name}' is not a valid Azure location.", target)
    return short, reference_data.regions()[short]


def _check_name(name: str, target: str) -> None:
    if not NAME.fullmatch(name):
        raise ArmError(400, "InvalidParameter", f"The entity name '{name}' is invalid according to its validation "
                       "rule: ^[^_\\W][\\w-._]{0,79}(?<![-.])$.", target)


def _require(body: Any, path: str) -> Any:
    value: Any = body
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value in (None, "", {}):
        raise ArmError(400, "InvalidParameter", f"Required parameter '{path}' is missing (null).", path)
    return value


def _deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _retry_after(req: Request, remaining: float, integer: bool = False) -> str:
    value = req.emulator.config.retry_after
    seconds = max(remaining, 0.05) if value is None else float(value)
    if integer:
        return str(max(1, math.ceil(seconds)) if value is None else math.ceil(seconds))
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"


def _body(req: Request) -> dict[str, Any]:
    if not isinstance(req.body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
    return req.body


# ------------------------------------------------------------------ operations


def advance(req: Request) -> None:
    """Finish every operation whose time has come (called before each ARM request)."""
    store = req.emulator.store
    now = _now()
    changed = False
    for op in store.operations.values():
        if op["status"] != "InProgress" or now < op["end"]:
            continue
        changed = True
        op["status"] = "Failed" if op.get("error") else "Succeeded"
        op["endTime"] = _iso(op["end"])
        resource = store.get(op["resource"])
        if op["kind"] == "delete":
            if op["status"] == "Succeeded":
                for key in store.descendants(op["resource"]):
                    store.resources.pop(key, None)
                store.delete(op["resource"])
            elif resource is not None:
                resource["properties"]["provisioningState"] = "Failed"
        elif resource is not None:
            resource["properties"]["provisioningState"] = op["status"]
            if op["status"] == "Succeeded" and "storageProfile" in resource["properties"]:
                resource["properties"]["storageProfile"].setdefault("osDiskImage", {}).setdefault("sizeInGB", 30)
    if changed:
        store.save()


def start_operation(req: Request, resource_id: str, location: str, kind: str, duration: float,
                    error: dict[str, str] | None = None) -> dict[str, Any]:
    op_id = str(uuid.uuid4())
    op = {"id": op_id, "name": op_id, "resource": resource_id, "kind": kind, "location": location,
          "start": _now(), "end": _now() + duration, "status": "InProgress", "error": error,
          "api": req.query.get("api-version", "")}
    req.emulator.store.operations[op_id] = op
    return op


def operation_headers(req: Request, op: dict[str, Any], monitor: bool = False) -> dict[str, str]:
    sub = req.path.split("/")[2]
    url = (f"{req.emulator.base_url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{op['location']}"
           f"/capsOperations/{op['id']}?api-version={op['api']}")
    headers = {"Azure-AsyncOperation": url, "Retry-After": _retry_after(req, op["end"] - _now(), integer=True)}
    if monitor:
        headers["Location"] = url + "&monitor=true"
    return headers


def get_operation(req: Request, m: re.Match) -> Response:
    req.api_version(COMPUTE_API)
    advance(req)
    op = req.emulator.store.operations.get(m["op"])
    if op is None:
        raise ArmError(404, "ResourceNotFound", f"The operation '{m['op']}' was not found.")
    running = op["status"] == "InProgress"
    headers = {"Retry-After": _retry_after(req, op["end"] - _now())} if running else {}
    if req.query.get("monitor") == "true":
        if running:
            return Response(202, None, {**headers, "Location": req.emulator.base_url + req.path
                                        + f"?api-version={op['api']}&monitor=true"})
        if op["status"] == "Failed":
            return Response(400, {"error": op["error"]})
        return Response(204)
    body = {"name": op["name"], "startTime": _iso(op["start"]), "status": op["status"]}
    if not running:
        body["endTime"] = op["endTime"]
    if op["status"] == "Failed":
        body["error"] = op["error"]
    return Response(200, body, headers)


# ------------------------------------------------------------------ resource groups


def _rg_id(m: re.Match) -> str:
    return f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}"


def rg_head(req: Request, m: re.Match) -> Response:
    req.api_version(RESOURCES_API)
    advance(req)
    return Response(204 if req.emulator.store.get(_rg_id(m)) else 404)


def rg_get(req: Request, m: re.Match) -> Response:
    req.api_version(RESOURCES_API)
    advance(req)
    resource = req.emulator.store.get(_rg_id(m))
    if resource is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{m['rg']}' could not be found.")
    return Response(200, _public(resource))


def rg_put(req: Request, m: re.Match) -> Response:
    req.api_version(RESOURCES_API)
    advance(req)
    body = _body(req)
    short, _ = _region(_require(body, "location"), "location")
    store = req.emulator.store
    existing = store.get(_rg_id(m))
    if existing and existing["location"] != short:
        raise ArmError(409, "InvalidResourceGroupLocation", f"Invalid resource group location '{short}'. The "
                       f"Resource group already exists in location '{existing['location']}'.")
    resource = {"id": _rg_id(m), "name": m["rg"], "type": "Microsoft.Resources/resourceGroups", "location": short,
                "tags": body.get("tags") or (existing or {}).get("tags") or {},
                "properties": {"provisioningState": "Succeeded"}}
    store.put(resource)
    store.save()
    return Response(200 if existing else 201, _public(resource))


def rg_delete(req: Request, m: re.Match) -> Response:
    req.api_version(RESOURCES_API)
    advance(req)
    store = req.emulator.store
    resource = store.get(_rg_id(m))
    if resource is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{m['rg']}' could not be found.")
    resource["properties"]["provisioningState"] = "Deleting"
    op = start_operation(req, resource["id"], resource["location"], "delete", req.emulator.config.operation_delay)
    store.save()
    location = f"{req.emulator.base_url}/subscriptions/{m['sub']}/operationresults/{op['id']}?api-version={op['api']}"
    return Response(202, None, {"Location": location, "Retry-After": _retry_after(req, op["end"] - _now(), True)})


def rg_operation(req: Request, m: re.Match) -> Response:
    advance(req)
    op = req.emulator.store.operations.get(m["op"])
    if op is None:
        raise ArmError(404, "ResourceNotFound", f"The operation '{m['op']}' was not found.")
    if op["status"] == "InProgress":
        return Response(202, None, {"Location": req.emulator.base_url + req.path + f"?api-version={op['api']}",
                                    "Retry-After": _retry_after(req, op["end"] - _now())})
    return Response(200)


def rg_list(req: Request, m: re.Match) -> Response:
    req.api_version(RESOURCES_API)
    advance(req)
    items = [r for k, r in req.emulator.store.resources.items()
             if k.startswith(f"/subscriptions/{m['sub'].lower()}/resourcegroups/") and k.count("/") == 4]
    return _page(req, items)


# ------------------------------------------------------------------ paging


def _page(req: Request, items: list[dict[str, Any]], render=_public) -> Response:
    size = max(1, int(req.emulator.config.page_size))
    start = int(req.query.get("$skiptoken") or 0)
    body: dict[str, Any] = {"value": [render(r) for r in items[start:start + size]]}
    if start + size < len(items):
        body["nextLink"] = (f"{req.emulator.base_url}{req.path}?api-version={req.query.get('api-version')}"
                            f"&$skiptoken={start + size}")
    return Response(200, body)


# ------------------------------------------------------------------ gallery resources


def _ids(m: re.Match) -> dict[str, str]:
    base = f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}/providers/Microsoft.Compute/galleries"
    ids = {"rg": _rg_id(m)}
    if "gallery" in m.groupdict() and m["gallery"]:
        ids["gallery"] = f"{base}/{m['gallery']}"
    if "image" in m.groupdict() and m["image"]:
        ids["image"] = f"{ids['gallery']}/images/{m['image']}"
    if "version" in m.groupdict() and m["version"]:
        ids["version"] = f"{ids['image']}/versions/{m['version']}"
    return ids


def _not_found(kind: str, name: str) -> ArmError:
    return ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.Compute/{kind}/{name}' under resource group "
                    "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def _get_existing(req: Request, resource_id: str, kind: str, name: str) -> dict[str, Any]:
    resource = req.emulator.store.get(resource_id)
    if resource is None:
        raise _not_found(kind, name)
    return resource


def _parent(req: Request, resource_id: str, kind: str, name: str) -> dict[str, Any]:
    resource = req.emulator.store.get(resource_id)
    if resource is None:
        raise ArmError(404, "ParentResourceNotFound" if kind != "resourceGroups" else "ResourceGroupNotFound",
                       f"Can not perform requested operation on nested resource. Parent resource '{name}' not found.")
    return resource


def _render_version(req: Request, resource: dict[str, Any]) -> dict[str, Any]:
    body = _public(resource)
    if req.query.get("$expand", "").lower() == "replicationstatus":
        body["properties"]["replicationStatus"] = replication_status(resource)
    return body


def replication_status(resource: dict[str, Any]) -> dict[str, Any]:
    now = _now()
    summary = []
    for job in resource.get("_replication", []):
        done = now >= job["end"]
        duration = max(job["end"] - job["start"], 1e-6)
        if done and job["fail"]:
            state, details = "Failed", "Replication failed: storage copy to the region did not complete."
        elif done:
            state, details = "Completed", ""
        else:
            state, details = "Replicating", ""
        progress = 100 if done and not job["fail"] else min(99, int(100 * (now - job["start"]) / duration))
        summary.append({"region": job["region"], "state": state, "details": details, "progress": progress})
    states = {s["state"] for s in summary}
    aggregated = ("Failed" if "Failed" in states and "Replicating" not in states else
                  "InProgress" if "Replicating" in states else "Completed" if summary else "Unknown")
    return {"aggregatedState": aggregated, "summary": summary}


def _put_started(req: Request, resource: dict[str, Any], existing: dict[str, Any] | None, kind: str,
                 duration: float, error: dict[str, str] | None = None) -> Response:
    store = req.emulator.store
    if existing and existing["properties"].get("provisioningState") in BUSY:
        raise ArmError(409, "OperationNotAllowed", f"Another operation is in progress on '{resource['name']}'; "
                       "retry after it completes.")
    resource["properties"]["provisioningState"] = "Updating" if existing else "Creating"
    _new_etag(resource)
    store.put(resource)
    op = start_operation(req, resource["id"], resource["location"], kind, duration, error)
    store.save()
    body = _render_version(req, resource) if kind == "version" else _public(resource)
    return Response(200 if existing else 201, body, {**operation_headers(req, op), **_etag_header(resource)})


def _lro_error(req: Request) -> dict[str, str] | None:
    fault = req.emulator.faults.take(("lro_fail",), req.method, req.path)
    if fault is None:
        return None
    return {"code": fault.code, "message": fault.message}


def _precondition(req: Request, existing: dict[str, Any] | None) -> None:
    """If-None-Match / If-Match as ARM specifies them for PUT, PATCH and DELETE (412 PreconditionFailed):
    Azure/azure-resource-manager-rpc v1.0/Addendum.md, "ETags for Resources"."""
    none_match = req.headers.get("if-none-match")
    if_match = req.headers.get("if-match")
    etag = (existing or {}).get("_etag")
    if none_match == "*" and existing is not None:
        raise ArmError(412, "PreconditionFailed", f"The resource '{existing['name']}' already exists and the request "
                       "asked to create it only if absent (If-None-Match: *).")
    if none_match and none_match != "*" and etag is not None and none_match == etag:
        raise ArmError(412, "PreconditionFailed", f"The resource '{existing['name']}' still has ETag {etag} "
                       "(If-None-Match).")
    if if_match == "*" and existing is None:
        raise ArmError(412, "PreconditionFailed", "The resource does not exist (If-Match: *).")
    if if_match and if_match != "*" and (existing is None or etag != if_match):
        raise ArmError(412, "PreconditionFailed", f"The resource was changed since it was read: its ETag is "
                       f"{etag}, the request's If-Match is {if_match}.")


def gallery_put(req: Request, m: re.Match) -> Response:
    req.api_version(COMPUTE_API)
    advance(req)
    ids = _ids(m)
    _check_name(m["gallery"], "galleryName")
    _parent(req, ids["rg"], "resourceGroups", m["rg"])
    body = _body(req)
    short, _ = _region(_require(body, "location"), "location")
    existing = req.emulator.store.get(ids["gallery"])
    _precondition(req, existing)
    props = copy.deepcopy(body.get("properties") or {})
    props["identifier"] = {"uniqueName": f"{m['sub']}-{m['gallery'].upper()}"}
    resource = {"id": ids["gallery"], "name": m["gallery"], "type": "Microsoft.Compute/galleries", "location": short,
                "tags": body.get("tags") or {}, "properties": props}
    return _put_started(req, resource, existing, "gallery", req.emulator.config.operation_delay, _lro_error(req))


def image_put(req: Request, m: re.Match) -> Response:
    req.api_version(COMPUTE_API)
    advance(req)
    ids = _ids(m)
    _check_name(m["image"], "galleryImageName")
    _parent(req, ids["gallery"], "galleries", m["gallery"])
    body = _body(req)
    short, _ = _region(_require(body, "location"), "location")
    for field in ("properties.osType", "properties.osState", "properties.identifier.publisher",
                  "properties.identifier.offer", "properties.identifier.sku"):
        _require(body, field)
    props = copy.deepcopy(body["properties"])
    props.setdefault("hyperVGeneration", "V1")
    props.setdefault("architecture", "x64")
    existing = req.emulator.store.get(ids["image"])
    _precondition(req, existing)
    if existing:
        for key in IMMUTABLE_IMAGE:
            if existing["properties"].get(key) != props.get(key):
                raise ArmError(409, "PropertyChangeNotAllowed", f"Changing property 'galleryImage.properties.{key}' "
                               "is not allowed.", f"galleryImage.properties.{key}")
    resource = {"id": ids["image"], "name": m["image"], "type": "Microsoft.Compute/galleries/images",
                "location": short, "tags": body.get("tags") or {}, "properties": props}
    return _put_started(req, resource, existing, "image", req.emulator.config.operation_delay, _lro_error(req))


def _source_of(props: dict[str, Any]) -> dict[str, Any]:
    storage = props.get("storageProfile") or {}
    source = storage.get("source") or {}
    vhd = ((storage.get("osDiskImage") or {}).get("source") or {})
    return {"id": source.get("id"), "virtualMachineId": source.get("virtualMachineId"), "uri": vhd.get("uri"),
            "storageAccountId": vhd.get("storageAccountId")}


def _check_local_vhd(props: dict[str, Any], source: dict[str, Any], subscription: str) -> None:
    """A ``file://`` VHD is the emulator's stand-in for a page blob: the file must be a fixed VHD of whole MiB on
    this machine and its storage account must be in the request's subscription; records ``sizeInGB``."""
    from builder.emulator.vhd import VhdError, check_fixed_vhd, local_path, size_in_gb

    target = "storageProfile.osDiskImage.source.uri"
    account = source["storageAccountId"] or ""
    if not account.lower().startswith(f"/subscriptions/{subscription.lower()}/"):
        raise ArmError(400, "InvalidParameter", f"The storage account '{account}' of the local VHD must be in "
                       f"subscription '{subscription}'.", "storageProfile.osDiskImage.source.storageAccountId")
    try:
        size = check_fixed_vhd(local_path(source["uri"]))
    except VhdError as exc:
        raise ArmError(400, "InvalidParameter", f"The VHD blob '{source['uri']}' cannot be used: {exc}.",
                       target) from None
    props["storageProfile"]["osDiskImage"]["sizeInGB"] = size_in_gb(size)


def version_put(req: Request, m: re.Match) -> Response:
    req.api_version(COMPUTE_API)
    advance(req)
    ids = _ids(m)
    match = VERSION_NAME.fullmatch(m["version"])
    if not match or any(int(p) > 2_147_483_647 for p in match.groups()):
        raise ArmError(400, "InvalidParameter", "The image version name should follow Major(int).Minor(int).Patch(int) "
                       "format, where int is between 0 and 2,147,483,647 (inclusive).", "galleryImageVersionName")
    _parent(req, ids["image"], "images", m["image"])
    body = _body(req)
    short, _ = _region(_require(body, "location"), "location")
    props = copy.deepcopy(body.get("properties") or {})
    source = _source_of(props)
    if source["id"] and re.match(r"^https?://", source["id"]):
        raise ArmError(400, "InvalidParameter", "A VHD uri must be given as storageProfile.osDiskImage.source.uri "
                       "with its storageAccountId, not as storageProfile.source.id.", "storageProfile.source.id")
    if not (source["id"] or source["virtualMachineId"] or source["uri"]):
        raise ArmError(400, "InvalidParameter", "Required parameter 'storageProfile.source' is missing (null).",
                       "storageProfile.source")
    if source["uri"] and not source["storageAccountId"]:
        raise ArmError(400, "InvalidParameter", "Required parameter 'storageProfile.osDiskImage.source."
                       "storageAccountId' is missing (null).", "storageProfile.osDiskImage.source.storageAccountId")
    if source["uri"] and source["uri"].lower().startswith("file:"):
        _check_local_vhd(props, source, m["sub"])
    publishing = props.setdefault("publishingProfile", {})
    publishing.setdefault("replicaCount", 1)
    publishing.setdefault("excludeFromLatest", False)
    publishing.setdefault("storageAccountType", "Standard_LRS")
    publishing.setdefault("replicationMode", "Full")
    if publishing["storageAccountType"] not in STORAGE_TYPES:
        raise ArmError(400, "InvalidParameter", f"Storage account type '{publishing['storageAccountType']}' is not "
                       "supported.", "publishingProfile.storageAccountType")
    regions = publishing.get("targetRegions") or [{"name": short}]
    normalised = []
    for index, region in enumerate(regions):
        _, display = _region(region.get("name", ""), f"publishingProfile.targetRegions[{index}].name")
        entry = {**region, "name": display}
        entry.setdefault("regionalReplicaCount", publishing["replicaCount"])
        entry.setdefault("storageAccountType", publishing["storageAccountType"])
        normalised.append(entry)
    publishing["targetRegions"] = normalised
    store = req.emulator.store
    existing = store.get(ids["version"])
    _precondition(req, existing)
    if existing and _source_of(existing["properties"]) != source:
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'galleryImageVersion.properties."
                       "storageProfile.source' is not allowed.", "properties.storageProfile.source")
    publishing["publishedDate"] = (existing or {}).get("properties", {}).get("publishingProfile", {}).get(
        "publishedDate") or _iso(_now())
    resource = {"id": ids["version"], "name": m["version"], "type": "Microsoft.Compute/galleries/images/versions",
                "location": short, "tags": body.get("tags") or {}, "properties": props}
    failing = req.emulator.faults.take(("replication_fail",), req.method, req.path)
    fail_region = _region(failing.region, "region")[1] if failing and failing.region else None
    config = req.emulator.config
    now = _now()
    jobs = []
    for region in normalised:
        short_name = reference_data.normalise_region(region["name"]) or ""
        delay = float(config.region_delays.get(short_name, config.replication_delay))
        jobs.append({"region": region["name"], "start": now, "end": now + delay, "fail": region["name"] == fail_region})
    resource["_replication"] = jobs
    error = _lro_error(req)
    if fail_region and not error:
        error = {"code": "ReplicationFailed", "message": f"Replication of the image version to region(s) "
                 f"'{fail_region}' failed. Retry the operation or remove the region."}
    duration = max([j["end"] for j in jobs], default=now) - now
    return _put_started(req, resource, existing, "version", duration, error)


def _get(kind: str, key: str):
    def handler(req: Request, m: re.Match) -> Response:
        req.api_version(COMPUTE_API)
        advance(req)
        resource = _get_existing(req, _ids(m)[key], kind, m[key])
        return Response(200, _render_version(req, resource) if key == "version" else _public(resource),
                        _etag_header(resource))
    return handler


def _patch(kind: str, key: str):
    def handler(req: Request, m: re.Match) -> Response:
        req.api_version(COMPUTE_API)
        advance(req)
        resource = _get_existing(req, _ids(m)[key], kind, m[key])
        body = _body(req)
        _precondition(req, resource)
        if resource["properties"].get("provisioningState") in BUSY:
            raise ArmError(409, "OperationNotAllowed", f"Another operation is in progress on '{resource['name']}'.")
        if "tags" in body:
            resource["tags"] = body["tags"] or {}
        _deep_merge(resource["properties"], body.get("properties") or {})
        resource["properties"]["provisioningState"] = "Updating"
        _new_etag(resource)
        op = start_operation(req, resource["id"], resource["location"], "update", req.emulator.config.operation_delay,
                             _lro_error(req))
        req.emulator.store.save()
        return Response(200, _render_version(req, resource) if key == "version" else _public(resource),
                        {**operation_headers(req, op), **_etag_header(resource)})
    return handler


def _delete(kind: str, key: str, child: str | None):
    def handler(req: Request, m: re.Match) -> Response:
        req.api_version(COMPUTE_API)
        advance(req)
        store = req.emulator.store
        resource = store.get(_ids(m)[key])
        if resource is None:
            return Response(204)
        _precondition(req, resource)
        if child and store.children(resource["id"], child):
            raise ArmError(409, "CannotDeleteResource", f"Can not delete resource before nested resources are "
                           f"deleted: '{resource['name']}' still has {child}.")
        resource["properties"]["provisioningState"] = "Deleting"
        _new_etag(resource)
        op = start_operation(req, resource["id"], resource["location"], "delete", req.emulator.config.operation_delay,
                             _lro_error(req))
        store.save()
        return Response(202, None, operation_headers(req, op, monitor=True))
    return handler


def _list(parent_key: str, kind: str, render_versions: bool = False):
    def handler(req: Request, m: re.Match) -> Response:
        req.api_version(COMPUTE_API)
        advance(req)
        ids = _ids(m)
        parent = req.emulator.store.get(ids[parent_key])
        if parent is None:
            raise ArmError(404, "ResourceNotFound" if parent_key != "rg" else "ResourceGroupNotFound",
                           f"The parent resource '{m[parent_key] if parent_key != 'rg' else m['rg']}' was not found.")
        if parent_key == "rg":
            prefix = ids["rg"] + "/providers/Microsoft.Compute"
            items = req.emulator.store.children(prefix, "galleries")
        else:
            items = req.emulator.store.children(ids[parent_key], kind)
        return _page(req, items)
    return handler


def register(router: Router) -> None:
    router.add("GET", OPERATION, get_operation)
    router.add("GET", RG_OPERATION, rg_operation)
    router.add("GET", SUB + r"/resourcegroups", rg_list)
    router.add("HEAD", RG, rg_head)
    router.add("GET", RG, rg_get)
    router.add("PUT", RG, rg_put)
    router.add("DELETE", RG, rg_delete)
    router.add("GET", GALLERIES, _list("rg", "galleries"))
    router.add("PUT", GALLERY, gallery_put)
    router.add("GET", GALLERY, _get("galleries", "gallery"))
    router.add("PATCH", GALLERY, _patch("galleries", "gallery"))
    router.add("DELETE", GALLERY, _delete("galleries", "gallery", "images"))
    router.add("GET", GALLERY + "/images", _list("gallery", "images"))
    router.add("PUT", IMAGE, image_put)
    router.add("GET", IMAGE, _get("images", "image"))
    router.add("PATCH", IMAGE, _patch("images", "image"))
    router.add("DELETE", IMAGE, _delete("images", "image", "versions"))
    router.add("GET", IMAGE + "/versions", _list("image", "versions"))
    router.add("PUT", VERSION, version_put)
    router.add("GET", VERSION, _get("versions", "version"))
    router.add("PATCH", VERSION, _patch("versions", "version"))
    router.add("DELETE", VERSION, _delete("versions", "version", None))
