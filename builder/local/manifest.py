"""The build manifest (``manifest.json``): inputs digest, base, layer keys (cached or built), component
versions, verification and boot results, phase timings and the artifacts with their SHA-256."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BuildFacts:
    """What the phases of one local build found, as the manifest records it."""

    image: str
    version: str
    build_id: str
    git_commit: str | None
    inputs_digest: str
    base: dict[str, Any]
    feed: dict[str, Any]
    layers: list[dict[str, Any]]
    components: dict[str, str]
    packages: dict[str, Any]
    verification: dict[str, Any] = field(default_factory=dict)
    sbom_packages: int = 0
    sbom_package_list_sha256: str = ""  # builder.local.sbom.package_list_digest: equal for reproduced builds
    catalog_inputs_digest: str = ""  # builder.packer.chain.inputs_digest: the builder.inputs_digest of the catalog
    disk: dict[str, Any] = field(default_factory=dict)
    boot_test: dict[str, Any] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path


def build_manifest(facts: BuildFacts, sha256: Callable[[Path], str]) -> dict[str, Any]:
    artifacts = {}
    for name, path in facts.artifacts.items():
        file = Path(path)
        if file.is_file():
            artifacts[name] = {"path": file.name, "bytes": file.stat().st_size, "sha256": sha256(file)}
    return {
        "manifest_version": 1,
        "image": facts.image,
        "version": facts.version,
        "build_id": facts.build_id,
        "target": "local",
        "git_commit": facts.git_commit,
        "inputs_digest": facts.inputs_digest,
        "catalog_inputs_digest": facts.catalog_inputs_digest,
        "base": facts.base,
        "feed": facts.feed,
        "layers": facts.layers,
        "components": facts.components,
        "packages": facts.packages,
        "verification": facts.verification,
        "sbom_packages": facts.sbom_packages,
        "sbom_package_list_sha256": facts.sbom_package_list_sha256,
        "disk": {k: v for k, v in facts.disk.items() if k != "vhd"},
        "boot_test": facts.boot_test,
        "phases": facts.phases,
        "artifacts": artifacts,
        "host": {"machine": platform.machine(), "python": platform.python_version()},
    }


def write_manifest(facts: BuildFacts, sha256: Callable[[Path], str], dest: Path) -> Path:
    dest.write_text(json.dumps(build_manifest(facts, sha256), indent=2, default=str), encoding="utf-8")
    return dest
