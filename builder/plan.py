"""``builder plan``: what a build of an image would do, derived from the catalog alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.catalog.bases import base_chain, describe_base
from builder.catalog.loader import Catalog
from builder.catalog.schema import Image
from builder.packer.chain import PublishedLookup, chain_status
from builder.paths import DEFAULT_STATE
from builder.stack import from_image
from builder.stack.layers import FINAL_ROLES, LAYERS

LOCAL_SUITES = {"ubuntu2204": "jammy", "ubuntu2404": "noble", "debian12": "bookworm"}


def make_plan(catalog: Catalog, image: Image, target: str, next_version: str,
              published: PublishedLookup | None = None, state_dir: Path = DEFAULT_STATE) -> dict[str, Any]:
    """``published``: latest gallery version + digest tag per image (None: no gallery, rebuild status unknown);
    ``state_dir``: where a local build keeps its records (``--state-dir``)."""
    stack = from_image(image)
    layers = []
    for layer in LAYERS:
        present = {name: c for name, c in stack.components.items() if c.layer == layer.name}
        layers.append({
            "name": layer.name,
            "description": layer.description,
            "roles": list(layer.roles),
            "components": {name: c.version for name, c in present.items()},
            "packages": [p.as_dict() for c in present.values() for p in c.packages],
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
        "components": stack.versions,
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
            "artifacts": f"fixed VHD, SBOM, manifest under {state_dir / 'builds'}/<id>/",
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
