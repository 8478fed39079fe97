"""What an image must look like, derived only from the catalog, ``images/skus.yaml`` and ``builder/packages.py``.

The result is a JSON-ready mapping handed to the pytest-testinfra suites (``--expectations FILE``); the suites
never hard-code a version, package name, count or threshold themselves.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from builder.catalog.loader import Catalog
from builder.errors import InputError
from builder.packages import packages_for
from builder.plan import component_versions
from builder.versions import major_minor

ROLES_DIR = Path(__file__).resolve().parent.parent.parent / "ansible" / "roles"


def role_defaults(role: str) -> dict[str, Any]:
    """A role's ``defaults/main.yml`` (the single place limits and sysctl values are set); {} when absent."""
    path = ROLES_DIR / role / "defaults" / "main.yml"
    if not path.exists():
        return {}
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def feed_markers() -> dict[str, str]:
    """The path prefix of each vendor apt repository (``builder.render.FEEDS``); mirrors keep that layout."""
    from urllib.parse import urlsplit

    from builder.render import FEEDS

    return {name: urlsplit(spec.repo).path.split("{")[0] for name, spec in FEEDS.items()}

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
    targets = [name for name in image.target_skus if name in catalog.skus]
    target_facts = [catalog.skus[name] for name in targets]
    nvswitch = any(s.nvswitch for s in target_facts)
    installed = {k: v for k, v in comps.items() if k != "fabric_manager" or nvswitch}  # FM only on NVSwitch sizes
    packages = [
        {"component": component, **package.as_dict()}
        for component, items in packages_for(installed).items()
        for package in items
    ]
    markers = feed_markers()
    common = role_defaults("common")
    rocm = role_defaults("rocm") if "rocm" in installed else {}
    expectations: dict[str, Any] = {
        "image": image.name,
        "os": image.os.value,
        "kind": image.kind.value,
        "purpose": image.purpose.value,
        "version": expect_version,
        "components": installed,
        "component_versions": component_versions(image),
        "packages": packages,
        "apt_feeds": {feed: markers[feed] for feed in sorted({p["feed"] for p in packages}) if feed in markers},
        "infiniband": any(s.infiniband for s in target_facts),
        "nvswitch": nvswitch,
        "limits": {item: common[f"common_{item}"] for item in ("memlock", "nofile", "stack")
                   if f"common_{item}" in common},
        "sysctl": {key: str(value) for key, value in (common.get("common_sysctl") or {}).items()},
        "rocm_sysctl": {key: str(value) for key, value in (rocm.get("rocm_sysctl") or {}).items()},
        "rocm_device_mode": rocm.get("rocm_device_mode"),
        "target_skus": targets,
        "sku": resolve_sku_choice(catalog, sku),
        "skus": {name: facts.model_dump(mode="json") for name, facts in catalog.skus.items()},
    }
    if "cuda" in comps:
        release = major_minor(comps["cuda"]["version"])
        expectations["cuda"] = {"version": comps["cuda"]["version"], "release": release,
                                "home": f"/usr/local/cuda-{release}"}
        default_image = f"nvidia/cuda:{comps['cuda']['version']}-base-ubuntu24.04"
        expectations["container_image"] = os.environ.get("BUILDER_VERIFY_CONTAINER_IMAGE", default_image)
    return expectations
