"""Marketplace image versions for the emulator (``virtual_machine_images.list`` in the SDK).

``GET /subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/publishers/{pub}/artifacttypes/vmimage/
offers/{offer}/skus/{sku}/versions`` answers like Azure: a JSON array of ``{location, name, id}`` sorted by name,
404 ``NotFound`` for an unknown publisher/offer/SKU. Tests seed the versions with
``PUT /_emulator/marketplace/{publisher}/{offer}/{sku}`` and body ``{"versions": [...], "locations": [...]}``
(no ``locations``: every region).
"""

from __future__ import annotations

import re

from builder.emulator.server import ArmError, Request, Response, Router

# api-versions of the Microsoft.Compute virtual machine images API the SDK may send.
IMAGES_API = frozenset({"2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-04-01"})
LIST = (r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/publishers/"
        r"(?P<pub>[^/]+)/artifacttypes/vmimage/offers/(?P<offer>[^/]+)/skus/(?P<sku>[^/]+)/versions")
SEED = r"/_emulator/marketplace/(?P<pub>[^/]+)/(?P<offer>[^/]+)/(?P<sku>[^/]+)"


def _key(pub: str, offer: str, sku: str) -> str:
    return f"/_emulator/marketplace/{pub}/{offer}/{sku}"


def _sort_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in name.split("."))


def seed(req: Request, m: re.Match) -> Response:
    body = req.body if isinstance(req.body, dict) else None
    versions = body.get("versions") if body else None
    if not isinstance(versions, list) or not all(isinstance(v, str) and v for v in versions):
        raise ArmError(400, "InvalidRequestContent", "expected {\"versions\": [\"1.2.3\", ...]}")
    locations = body.get("locations")
    record = {"id": _key(m["pub"], m["offer"], m["sku"]), "versions": versions,
              "locations": [str(loc).lower() for loc in locations] if locations else None}
    req.emulator.store.put(record)
    req.emulator.store.save()
    return Response(200, record)


def list_versions(req: Request, m: re.Match) -> Response:
    req.api_version(IMAGES_API)
    record = req.emulator.store.get(_key(m["pub"], m["offer"], m["sku"]))
    location = m["loc"].lower()
    if record is None or (record.get("locations") and location not in record["locations"]):
        raise ArmError(404, "NotFound", f"Artifact: VMImage was not found (publisher '{m['pub']}', offer "
                                        f"'{m['offer']}', sku '{m['sku']}', location '{m['loc']}').")
    base = (f"/Subscriptions/{m['sub']}/Providers/Microsoft.Compute/Locations/{m['loc']}/Publishers/{m['pub']}"
            f"/ArtifactTypes/VMImage/Offers/{m['offer']}/Skus/{m['sku']}/Versions")
    names = sorted(record["versions"], key=_sort_key)
    return Response(200, [{"location": m["loc"], "name": n, "id": f"{base}/{n}"} for n in names])


def register(router: Router) -> None:
    router.add("PUT", SEED, seed)
    router.add("GET", LIST, list_versions)
