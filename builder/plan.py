"""``builder plan``: what a build of an image would do, derived from the catalog alone."""

from __future__ import annotations

from typing import Any

from builder.catalog.loader import Catalog
from builder.catalog.schema import Image
from builder.layers import FINAL_ROLES, LAYERS
from builder.packages import packages_for
from builder.packer.chain import PublishedLookup, chain_status

LOCAL_SUITES = {"ubuntu2204": "jammy", "ubuntu2404": "noble", "debian12": "bookworm"}


def component_versions(image: Image) -> dict[str, str]:
    """Flat ``component -> version`` of the pinned stack."""
    comps = image.components.model_dump(exclude_none=True)
    return {name: str(spec["version"]) for name, spec in comps.items()}


def base_chain(catalog: Catalog, image: Image) -> list[str]:
    """This image, then each catalog image it is layered on (``base.image``)."""
    chain = [image.name]
    current = image
    while current.base.image and current.base.image not in chain:
        chain.append(current.base.image)
        parent = catalog.images.get(current.base.image)
        if parent is None or parent.model is None:
            break
        current = parent.model
    return chain


def describe_base(image: Image) -> str:
    base = image.base
    if base.marketplace:
        m = base.marketplace
        plan = f" (plan {m.plan.publisher}/{m.plan.product}/{m.plan.name})" if m.plan else ""
        return f"marketplace {m.publisher}:{m.offer}:{m.sku}:{m.version}{plan}"
    if base.gallery_image_id:
        return f"gallery {base.gallery_image_id}"
    return f"catalog image {base.image} (its latest gallery version)"


def make_plan(catalog: Catalog, image: Image, target: str, next_version: str,
              published: PublishedLookup | None = None) -> dict[str, Any]:
    """``published``: latest gallery version + digest tag per image (None: no gallery, rebuild status unknown)."""
    comps = image.components.model_dump(exclude_none=True)
    packages = packages_for(comps)
    layers = []
    for layer in LAYERS:
        present = {name: str(comps[name]["version"]) for name in layer.components if name in comps}
        layers.append({
            "name": layer.name,
            "description": layer.description,
            "roles": list(layer.roles),
            "components": present,
            "packages": [p.as_dict() for name in present for p in packages.get(name, [])],
        })
    g = image.gallery
    plan: dict[str, Any] = {
        "image": image.name,
        "target": target,
        "os": image.os.value,
        "kind": image.kind.value,
        "purpose": image.purpose.value,
        "base": describe_base(image),
        "base_chain": base_chain(catalog, image),
        "layers": layers,
        "final_roles": list(FINAL_ROLES),
        "components": component_versions(image),
        "target_skus": list(image.target_skus),
        "tests": {"suites": list(image.tests.suites), "extra_checks": list(image.tests.extra_checks)},
        "destination": {
            "resource_group": g.resource_group,
            "gallery": g.gallery,
            "definition": g.definition,
            "regions": {r.name: r.replicas for r in g.target_regions},
            "storage_account_type": g.storage_account_type.value,
            "exclude_from_latest": g.staging.exclude_from_latest,
        },
        "next_version": next_version,
        "chain": [link.as_dict() for link in chain_status(catalog, image.name, published)],
    }
    if target == "local":
        plan["build"] = {
            "rootfs": f"debootstrap {LOCAL_SUITES[image.os.value]} (falls back to Debian 12 when unreachable)",
            "connection": "chroot",
            "artifacts": "fixed VHD, SBOM, manifest under .builder/builds/<id>/",
        }
    else:
        b = image.build
        plan["build"] = {
            "packer_source": "azure-arm",
            "region": b.region,
            "vm_size": b.vm_size,
            "os_disk_gb": b.os_disk_gb,
            "spot": b.spot,
            "timeout_minutes": b.timeout_minutes,
        }
    return plan
