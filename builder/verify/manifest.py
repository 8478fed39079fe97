"""The image manifest (``/etc/builder/image.json``): written by the build, checked by the static suite."""

from __future__ import annotations

from typing import Any

from builder.catalog.schema import Image
from builder.plan import component_versions

MANIFEST_PATH = "/etc/builder/image.json"
VERSION_PATTERN = r"^\d{4}\.\d{1,4}\.\d+$"


def render_manifest(image: Image, version: str, git_commit: str, **extra: Any) -> dict[str, Any]:
    """The manifest mapping for ``image`` at ``version`` built from ``git_commit`` (extra keys are kept)."""
    return {"image": image.name, "version": version, "components": component_versions(image),
            "git_commit": git_commit, **extra}
