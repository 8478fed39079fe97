"""What ``builder doctor`` reads, served by the emulator in ARM's shapes (Azure REST API reference):

- Resource SKUs - List: ``GET /subscriptions/{s}/providers/Microsoft.Compute/skus[?$filter=location eq 'x']``
  -> ``{"value": [{"resourceType": "virtualMachines", "name", "tier", "size", "family", "locations",
  "locationInfo", "capabilities": [{"name": "vCPUs", "value"}], "restrictions"}]}``.
- Usage - List: ``GET /subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/usages`` ->
  ``{"value": [{"unit": "Count", "currentValue", "limit", "name": {"value", "localizedValue"}}]}``.
- Permissions - List For Resource Group: ``GET /subscriptions/{s}/resourceGroups/{rg}/providers/
  Microsoft.Authorization/permissions`` -> ``{"value": [{"actions", "notActions", "dataActions",
  "notDataActions"}]}``; 404 ``ResourceGroupNotFound`` when the group does not exist.
- Marketplace Agreements - Get: ``GET /subscriptions/{s}/providers/Microsoft.MarketplaceOrdering/offerTypes/
  virtualmachine/publishers/{p}/offers/{o}/plans/{plan}/agreements/current`` -> ``{"id", "name", "type",
  "properties": {"publisher", "product", "plan", "accepted", ...}}``.

Tests seed them through control endpoints (JSON bodies, kept in the emulator's store):

- ``PUT /_emulator/doctor/skus`` ``{"skus": [{"name", "family", "vcpus", "locations": [...],
  "restricted": [locations]}]}``
- ``PUT /_emulator/doctor/usages/{location}`` ``{"usages": [{"name", "localized", "current", "limit"}]}``
- ``PUT /_emulator/doctor/permissions`` ``{"permissions": [{"actions": [...], "notActions": [...]}]}``: the
  caller's permissions at every resource group (default, unseeded: ``actions ["*"]``: the emulator's token may do
  anything, as every other route lets it)
- ``PUT /_emulator/doctor/agreements/{publisher}/{offer}/{plan}`` ``{"accepted": true|false}`` (unseeded: the
  terms exist and are not accepted, as for a plan never accepted in a subscription)
"""

from __future__ import annotations

import re
from typing import Any

from builder.emulator.server import ArmError, Request, Response, Router

SKUS_API = frozenset({"2017-09-01", "2019-04-01", "2021-07-01"})
USAGE_API = frozenset({"2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-03-01",
                       "2026-04-01"})
PERMISSIONS_API = frozenset({"2015-07-01", "2018-01-01-preview", "2022-04-01"})
AGREEMENTS_API = frozenset({"2015-06-01", "2021-01-01"})

SUB = r"/subscriptions/(?P<sub>[^/]+)"
SKUS = SUB + r"/providers/Microsoft\.Compute/skus"
USAGES = SUB + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/usages"
PERMISSIONS = SUB + r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Authorization/permissions"
AGREEMENT = (SUB + r"/providers/Microsoft\.MarketplaceOrdering/offerTypes/virtualmachine/publishers/(?P<pub>[^/]+)"
             r"/offers/(?P<offer>[^/]+)/plans/(?P<plan>[^/]+)/agreements/current")
CONTROL = r"/_emulator/doctor"
KEY = "/_emulator/doctor"


def _body(req: Request, key: str, kind: type) -> Any:
    value = req.body.get(key) if isinstance(req.body, dict) else None
    if not isinstance(value, kind):
        raise ArmError(400, "InvalidRequestContent", f"expected {{\"{key}\": {kind.__name__}}}")
    return value


def _save(req: Request, record: dict[str, Any]) -> Response:
    req.emulator.store.put(record)
    req.emulator.store.save()
    return Response(200, record)


def seed_skus(req: Request, m: re.Match) -> Response:
    return _save(req, {"id": f"{KEY}/skus", "skus": _body(req, "skus", list)})


def seed_usages(req: Request, m: re.Match) -> Response:
    return _save(req, {"id": f"{KEY}/usages/{m['loc'].lower()}", "usages": _body(req, "usages", list)})


def seed_permissions(req: Request, m: re.Match) -> Response:
    return _save(req, {"id": f"{KEY}/permissions", "permissions": _body(req, "permissions", list)})


def seed_agreement(req: Request, m: re.Match) -> Response:
    accepted = _body(req, "accepted", bool)
    return _save(req, {"id": f"{KEY}/agreements/{m['pub']}/{m['offer']}/{m['plan']}", "accepted": accepted})


def list_skus(req: Request, m: re.Match) -> Response:
    req.api_version(SKUS_API)
    found = re.fullmatch(r"\s*location\s+eq\s+'([^']+)'\s*", req.query.get("$filter", ""), re.IGNORECASE)
    location = found.group(1).lower() if found else None
    record = req.emulator.store.get(f"{KEY}/skus") or {"skus": []}
    value = []
    for sku in record["skus"]:
        locations = [str(x).lower() for x in sku.get("locations") or []]
        if location and location not in locations:
            continue
        name = str(sku["name"])
        shown = [location] if location else locations
        restricted = [str(x).lower() for x in sku.get("restricted") or []]
        restrictions = [{"type": "Location", "values": [loc], "restrictionInfo": {"locations": [loc]},
                         "reasonCode": "NotAvailableForSubscription"} for loc in shown if loc in restricted]
        value.append({"resourceType": "virtualMachines", "name": name, "tier": "Standard",
                      "size": name.split("_", 1)[-1], "family": sku.get("family"), "locations": shown,
                      "locationInfo": [{"location": loc, "zones": []} for loc in shown],
                      "capabilities": [{"name": "vCPUs", "value": str(sku.get("vcpus", 1))}],
                      "restrictions": restrictions})
    return Response(200, {"value": value})


def list_usages(req: Request, m: re.Match) -> Response:
    req.api_version(USAGE_API)
    record = req.emulator.store.get(f"{KEY}/usages/{m['loc'].lower()}") or {"usages": []}
    value = [{"unit": "Count", "currentValue": int(u.get("current", 0)), "limit": int(u.get("limit", 0)),
              "name": {"value": u["name"], "localizedValue": u.get("localized") or u["name"]}}
             for u in record["usages"]]
    return Response(200, {"value": value})


def list_permissions(req: Request, m: re.Match) -> Response:
    req.api_version(PERMISSIONS_API)
    group = f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}"
    if req.emulator.store.get(group) is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{m['rg']}' could not be found.")
    record = req.emulator.store.get(f"{KEY}/permissions") or {"permissions": [{"actions": ["*"], "notActions": []}]}
    value = [{"actions": list(p.get("actions") or []), "notActions": list(p.get("notActions") or []),
              "dataActions": [], "notDataActions": []} for p in record["permissions"]]
    return Response(200, {"value": value})


def get_agreement(req: Request, m: re.Match) -> Response:
    req.api_version(AGREEMENTS_API)
    record = req.emulator.store.get(f"{KEY}/agreements/{m['pub']}/{m['offer']}/{m['plan']}") or {"accepted": False}
    return Response(200, {
        "id": (f"/subscriptions/{m['sub']}/providers/Microsoft.MarketplaceOrdering/offerTypes/VirtualMachine/"
               f"publishers/{m['pub']}/offers/{m['offer']}/plans/{m['plan']}/agreements/current"),
        "name": m["plan"], "type": "Microsoft.MarketplaceOrdering/offertypes",
        "properties": {"publisher": m["pub"], "product": m["offer"], "plan": m["plan"],
                       "licenseTextLink": "", "privacyPolicyLink": "", "retrieveDatetime": "",
                       "signature": "", "accepted": record["accepted"]}})


def register(router: Router) -> None:
    router.add("PUT", CONTROL + r"/skus", seed_skus)
    router.add("PUT", CONTROL + r"/usages/(?P<loc>[^/]+)", seed_usages)
    router.add("PUT", CONTROL + r"/permissions", seed_permissions)
    router.add("PUT", CONTROL + r"/agreements/(?P<pub>[^/]+)/(?P<offer>[^/]+)/(?P<plan>[^/]+)", seed_agreement)
    router.add("GET", SKUS, list_skus)
    router.add("GET", USAGES, list_usages)
    router.add("GET", PERMISSIONS, list_permissions)
    router.add("GET", AGREEMENT, get_agreement)
