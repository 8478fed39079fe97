"""What an image must look like, derived only from the catalog, ``images/skus.yaml`` and ``builder/packages.py``.

The result is a JSON-ready mapping handed to the pytest-testinfra suites (``--expectations FILE``); the suites
never hard-code a version, package name, count or threshold themselves.
"""

from __future__ import annotations

import difflib
from typing import Any

from builder.catalog.loader import Catalog
from builder.errors import InputError
from builder.packages import packages_for
from builder.plan import component_versions
from builder.versions import major_minor

SUITES = ("static", "hardware", "all")


def resolve_sku_choice(catalog: Catalog, choice: str) -> str:
    """``auto`` or a VM size from ``skus.yaml`` (InputError with a hint otherwise)."""
    if choice == "auto" or choice in catalog.skus:
        return choice
    hint = difflib.get_close_matches(choice, list(catalog.skus), n=1)
    suffix = f"; did you mean '{hint[0]}'?" if hint else ""
    sku_file = catalog.sku_doc.file if catalog.sku_doc else catalog.root / "skus.yaml"
    raise InputError(f"unknown VM size '{choice}' (not in skus.yaml){suffix}", file=sku_file, field="--skus")


def build_expectations(catalog: Catalog, image_name: str, *, sku: str = "auto",
                       expect_version: str | None = None) -> dict[str, Any]:
    """Everything the suites compare against, for one buildable image."""
    image = catalog.model(image_name)
    comps = image.components.model_dump(mode="json", exclude_none=True)
    packages = [
        {"component": component, **package.as_dict()}
        for component, items in packages_for(comps).items()
        for package in items
    ]
    targets = [name for name in image.target_skus if name in catalog.skus]
    target_facts = [catalog.skus[name] for name in targets]
    expectations: dict[str, Any] = {
        "image": image.name,
        "os": image.os.value,
        "kind": image.kind.value,
        "purpose": image.purpose.value,
        "version": expect_version,
        "components": comps,
        "component_versions": component_versions(image),
        "packages": packages,
        "apt_feeds": sorted({p["feed"] for p in packages}),
        "infiniband": "doca_ofed" in comps,
        "nvswitch": any(s.nvswitch for s in target_facts),
        "target_skus": targets,
        "sku": resolve_sku_choice(catalog, sku),
        "skus": {name: facts.model_dump(mode="json") for name, facts in catalog.skus.items()},
    }
    if "cuda" in comps:
        release = major_minor(comps["cuda"]["version"])
        expectations["cuda"] = {"version": comps["cuda"]["version"], "release": release,
                                "home": f"/usr/local/cuda-{release}"}
    return expectations
