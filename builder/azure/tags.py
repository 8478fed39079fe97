"""Tags on gallery image versions: component versions from the catalog plus build provenance and verification."""

from __future__ import annotations

from builder.catalog.schema import Image
from builder.outdated import BASE_VERSION_TAG
from builder.plan import component_versions

IMAGE = "builder.image"
GIT_COMMIT = "builder.git_commit"
BUILD_ID = "builder.build_id"
SBOM = "builder.sbom_sha256"
VERIFICATION = "builder.verification"
# The base actually built on (marketplace version, or the parent's gallery version for layered builds); defined
# by `builder outdated`, which compares it with the newest base.
BASE_VERSION = BASE_VERSION_TAG
PROMOTED_AT = "builder.promoted_at"
YANKED = "builder.yanked"
YANKED_AT = "builder.yanked_at"
COMPONENT_PREFIX = "component."
VERIFIED = "passed"
VERIFICATION_STATES = ("passed", "failed", "pending")
MAX_VALUE = 256


def provenance(git_commit: str | None = None, build_id: str | None = None, sbom_digest: str | None = None,
               verification: str | None = None, base_version: str | None = None) -> dict[str, str]:
    """Provenance tags for ``publish_version(tags=...)``; empty values are left out (a new version without a
    verification result is tagged ``pending``)."""
    tags = {GIT_COMMIT: git_commit, BUILD_ID: build_id, SBOM: sbom_digest, VERIFICATION: verification,
            BASE_VERSION: base_version}
    return {k: v for k, v in tags.items() if v}


def version_tags(image: Image, extra: dict[str, str]) -> dict[str, str]:
    """Component versions from the catalog, the image name, then the caller's tags (they win)."""
    tags = {f"{COMPONENT_PREFIX}{name}": version for name, version in component_versions(image).items()}
    tags[IMAGE] = image.name
    tags.setdefault(VERIFICATION, "pending")
    tags.update({k: str(v)[:MAX_VALUE] for k, v in extra.items()})
    return tags
