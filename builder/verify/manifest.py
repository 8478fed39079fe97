"""The image manifest (``/etc/builder/image.json``): written by the build, checked by the static suite."""

from __future__ import annotations

from typing import Any

from builder.catalog.schema import Image
from builder.stack import from_image

MANIFEST_PATH = "/etc/builder/image.json"
VERSION_PATTERN = r"^[0-9]{4}\.[0-9]{1,4}\.[0-9]+$"


def render_manifest(image: Image, version: str, git_commit: str, **extra: Any) -> dict[str, Any]:
    """The manifest mapping for ``image`` at ``version`` built from ``git_commit`` (extra keys are kept)."""
    return {"image": image.name, "version": version, "components": from_image(image).versions,
            "git_commit": git_commit, **extra}
