"""What an image must look like, derived only from the image's ``Stack`` (catalog, ``images/skus.yaml``) and the
role settings (``builder.stack.settings``).

The result is a JSON-ready mapping handed to the pytest-testinfra suites (``--expectations FILE``); the suites
never hard-code a version, package name, count or threshold themselves.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from builder.catalog.loader import Catalog
from builder.errors import InputError
from builder.stack import resolve
from builder.stack import settings as role_settings
from builder.stack.feeds import path_markers
from builder.verify.sku import health_checks, health_defaults
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


def sku_table(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Every size's facts, each with ``health``: what Azure's health checks run there (None where nothing)."""
    doc = catalog.sku_doc
    checks = health_checks(doc.data if doc else None, catalog.skus, file=doc.file if doc else None)
    return {name: {**facts.model_dump(mode="json"), "health": checks.get(name)} for name, facts in catalog.skus.items()}


def build_expectations(catalog: Catalog, image_name: str, *, sku: str = "auto",
                       expect_version: str | None = None, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the suites compare against, for one buildable image (``settings``: the role settings,
    default: from this checkout's roles, ``builder.stack.settings``)."""
    stack = resolve(catalog, image_name)
    settings = role_settings.load() if settings is None else settings
    installed = stack.installed()
    packages = [{"component": name, **package.as_dict()} for name, group in stack.packages.items() if name in installed
                for package in group]
    markers = path_markers()
    rocm = "rocm" in installed
    expectations: dict[str, Any] = {
        "image": stack.image,
        "os": stack.os,
        "kind": stack.kind,
        "purpose": stack.purpose,
        "version": expect_version,
        "components": {name: c.spec for name, c in installed.items()},
        "component_versions": stack.versions,
        "packages": packages,
        "units": stack.units(),
        "apt_feeds": {feed: markers[feed] for feed in sorted({p["feed"] for p in packages}) if feed in markers},
        "infiniband": stack.has_infiniband,
        "nvswitch": stack.has_nvswitch,
        "limits": settings["limits"],
        "sysctl": settings["sysctl"],
        "rocm_sysctl": settings["rocm_sysctl"] if rocm else {},
        "rocm_device_mode": settings["rocm_device_mode"] if rocm else None,
        "rocm_amdgpu": settings["rocm_amdgpu"] if rocm else None,
        "exporter_conflicts": settings["exporter_conflicts"] if "dcgm_exporter" in installed else [],
        "target_skus": list(stack.skus),
        "security_type": catalog.model(image_name).gallery.features.security_type,
        "sku": resolve_sku_choice(catalog, sku),
        "skus": sku_table(catalog),
        "health_defaults": health_defaults(),
    }
    if "cuda" in stack.components:
        cuda = stack.components["cuda"].version
        release = major_minor(cuda)
        expectations["cuda"] = {"version": cuda, "release": release, "home": f"/usr/local/cuda-{release}"}
        default_image = f"nvidia/cuda:{cuda}-base-ubuntu24.04"
        expectations["container_image"] = os.environ.get("BUILDER_VERIFY_CONTAINER_IMAGE", default_image)
    return expectations
