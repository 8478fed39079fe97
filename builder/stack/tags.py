"""The one vocabulary of tags on gallery image versions (every reader and writer imports these names)."""

from __future__ import annotations

PREFIX = "builder."
IMAGE = "builder.image"
VERSION = "builder.version"
BASE = "builder.base"  # marketplace | gallery | image:<name>
GIT_COMMIT = "builder.git_commit"
BUILD_ID = "builder.build_id"
SBOM = "builder.sbom_sha256"
VERIFICATION = "builder.verification"
# The base actually built on (marketplace version, or the parent's gallery version for layered builds);
# `builder outdated` compares it with the newest base.
BASE_VERSION = "builder.base_version"
INPUTS_DIGEST = "builder.inputs_digest"  # builder.packer.chain: what the version was built from
PROMOTED_AT = "builder.promoted_at"
YANKED = "builder.yanked"
YANKED_AT = "builder.yanked_at"
# builder.patching (`builder patch`): what a hands-off patch was built for, its one-line summary and notes digest
PATCH_KEY = "builder.patch_key"
PATCH = "builder.patch"
PATCH_NOTES = "builder.patch_notes_sha256"
COMPONENT_PREFIX = "component."  # component.<name> = the pinned version
VERIFIED = "passed"
VERIFICATION_STATES = ("passed", "failed", "pending")
MAX_VALUE = 256  # Azure's limit on a tag value


def component_tag(component: str) -> str:
    return f"{COMPONENT_PREFIX}{component}"


def component_tags(versions: dict[str, str]) -> dict[str, str]:
    """``component.<name> -> version`` for a flat component map."""
    return {component_tag(name): version for name, version in versions.items()}


def components_from_tags(tags: dict[str, str]) -> dict[str, str]:
    """The flat component map recorded in a version's tags."""
    return {k.removeprefix(COMPONENT_PREFIX): v for k, v in tags.items() if k.startswith(COMPONENT_PREFIX)}


def provenance(git_commit: str | None = None, build_id: str | None = None, sbom_digest: str | None = None,
               verification: str | None = None, base_version: str | None = None) -> dict[str, str]:
    """Provenance tags for ``publish_version(tags=...)``; empty values are left out (a new version without a
    verification result is tagged ``pending``)."""
    tags = {GIT_COMMIT: git_commit, BUILD_ID: build_id, SBOM: sbom_digest, VERIFICATION: verification,
            BASE_VERSION: base_version}
    return {k: v for k, v in tags.items() if v}


def version_tags(image: str, versions: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """Component versions, the image name, then the caller's tags (they win); values cut to Azure's limit."""
    tags = {**component_tags(versions), IMAGE: image}
    tags.setdefault(VERIFICATION, "pending")
    tags.update({k: str(v)[:MAX_VALUE] for k, v in extra.items()})
    return tags
