"""Make sure the resource group, gallery and image definition exist and match the catalog."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from builder.catalog.loader import CatalogImage
from builder.catalog.reference_data import normalise_region
from builder.catalog.rules import DEFINITION_NAME, GALLERY_NAME, RESOURCE_GROUP_NAME
from builder.catalog.schema import Image
from builder.errors import InputError, Problem

OS_TYPE = "Linux"
OS_STATE = "Generalized"


# Azure's naming rules (ASCII, fullmatch) are the catalog rules' (builder.catalog.rules, which cites Microsoft
# Learn "Naming rules and restrictions for Azure resources"); checked here again before the first request, so a
# name such as "../../x" never reaches a URL whichever caller built the Destination.
NAME_RULES = {
    "resource_group": (RESOURCE_GROUP_NAME, "1-90 letters, digits, '_', '-', '.', '(' or ')', not ending with '.'"),
    "gallery": (GALLERY_NAME, "1-80 letters, digits, '_' or '.', starting and ending with a letter or digit"),
    "definition": (DEFINITION_NAME,
                   "1-80 letters, digits, '_', '-' or '.', starting and ending with a letter or digit"),
}


def check_names(resource_group: str, gallery: str, definition: str) -> list[str]:
    """Problems (``field: message``) with the destination names; empty when Azure would take them."""
    problems = []
    for key, value in (("resource_group", resource_group), ("gallery", gallery), ("definition", definition)):
        pattern, rule = NAME_RULES[key]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            problems.append(f"gallery.{key}: {str(value)[:100]!r} is not a valid Azure name: {rule}")
    return problems


@dataclass(frozen=True)
class Destination:
    """Where versions of one catalog image go."""

    resource_group: str
    gallery: str
    definition: str
    location: str

    @classmethod
    def of(cls, image: Image) -> Destination:
        g = image.gallery
        location = normalise_region(image.build.region) or image.build.region
        return cls(g.resource_group, g.gallery, g.definition, location)

    def require_valid(self) -> Destination:
        """InputError (exit 2) naming every bad destination name; call before the first request."""
        problems = check_names(self.resource_group, self.gallery, self.definition)
        if problems:
            raise InputError([Problem(p) for p in problems])
        return self

    def version_id(self, subscription: str, version: str) -> str:
        return (f"/subscriptions/{subscription}/resourceGroups/{self.resource_group}/providers/Microsoft.Compute/"
                f"galleries/{self.gallery}/images/{self.definition}/versions/{version}")


def features(image: Image) -> list[dict[str, str]]:
    f = image.gallery.features
    items = [{"name": "IsAcceleratedNetworkSupported", "value": str(f.accelerated_networking)},
             {"name": "DiskControllerTypes", "value": ", ".join(f.disk_controller_types)}]
    if f.security_type != "Standard":
        items.append({"name": "SecurityType", "value": f.security_type})
    return items


def definition_body(image: Image, location: str) -> dict[str, Any]:
    """The gallery image (definition) as the catalog wants it (ARM JSON)."""
    g = image.gallery
    props: dict[str, Any] = {
        "osType": OS_TYPE,
        "osState": OS_STATE,
        "hyperVGeneration": g.hyper_v_generation,
        "architecture": g.architecture,
        "identifier": g.identifier.model_dump(),
        "features": features(image),
        "description": image.description,
    }
    if g.end_of_life_date:
        props["endOfLifeDate"] = dt.datetime.combine(g.end_of_life_date, dt.time(), dt.UTC).isoformat()
    return {"location": location, "properties": props}


# catalog field (for the located error) per immutable definition property
IMMUTABLE = {
    "osType": ("gallery",),
    "osState": ("gallery",),
    "hyperVGeneration": ("gallery", "hyper_v_generation"),
    "architecture": ("gallery", "architecture"),
    "identifier": ("gallery", "identifier"),
    "features": ("gallery", "features"),
}


def _normal(key: str, value: Any) -> Any:
    if key == "identifier" and isinstance(value, dict):
        return {k: str(v).lower() for k, v in value.items() if k in ("publisher", "offer", "sku")}
    if key == "features":
        return sorted((str(i.get("name")).lower(), str(i.get("value")).replace(" ", "").lower()) for i in value or [])
    return str(value).lower() if value is not None else None


def compare_definition(entry: CatalogImage, wanted: dict[str, Any], actual: dict[str, Any]) -> tuple[
        list[Problem], dict[str, Any]]:
    """``(immutable mismatches as located problems, mutable properties to update)``."""
    problems: list[Problem] = []
    have = actual.get("properties") or {}
    want = wanted["properties"]
    for key, field in IMMUTABLE.items():
        if _normal(key, have.get(key)) != _normal(key, want.get(key)):
            problems.append(entry.problem(field, f"gallery image definition property '{key}' is {have.get(key)!r} "
                                          f"in Azure but the catalog wants {want.get(key)!r}; it cannot be changed "
                                          "in place: use a new gallery.definition name"))
    updates = {k: want[k] for k in ("description", "endOfLifeDate") if k in want and have.get(k) != want[k]}
    if "endOfLifeDate" in updates and _same_day(have.get("endOfLifeDate"), want["endOfLifeDate"]):
        updates.pop("endOfLifeDate")
    return problems, updates


def _same_day(a: Any, b: Any) -> bool:
    return bool(a) and bool(b) and str(a)[:10] == str(b)[:10]


def ensure_definition(compute, resources, entry: CatalogImage, image: Image, dest: Destination, say) -> dict:
    """Create what is missing (resource group, gallery, definition); fail on immutable mismatches."""
    from azure.core.exceptions import ResourceNotFoundError

    from builder.azure.errors import arm_errors

    dest.require_valid()
    with arm_errors(f"resource group {dest.resource_group}"):
        if not resources.resource_groups.check_existence(dest.resource_group):
            say(f"creating resource group {dest.resource_group} in {dest.location}")
            resources.resource_groups.create_or_update(dest.resource_group, {"location": dest.location})
    with arm_errors(f"gallery {dest.gallery}"):
        try:
            compute.galleries.get(dest.resource_group, dest.gallery)
        except ResourceNotFoundError:
            say(f"creating gallery {dest.gallery}")
            compute.galleries.begin_create_or_update(dest.resource_group, dest.gallery, {
                "location": dest.location, "properties": {"description": "AI VM images built by builder"}}).result()
    wanted = definition_body(image, dest.location)
    with arm_errors(f"image definition {dest.gallery}/{dest.definition}"):
        try:
            actual = compute.gallery_images.get(dest.resource_group, dest.gallery, dest.definition).as_dict()
        except ResourceNotFoundError:
            say(f"creating image definition {dest.definition}")
            return compute.gallery_images.begin_create_or_update(dest.resource_group, dest.gallery, dest.definition,
                                                                 wanted).result().as_dict()
        problems, updates = compare_definition(entry, wanted, actual)
        if problems:
            raise InputError(problems)
        if updates:
            say(f"updating image definition {dest.definition}: {', '.join(updates)}")
            return compute.gallery_images.begin_update(dest.resource_group, dest.gallery, dest.definition,
                                                       {"properties": updates}).result().as_dict()
    return actual
