"""The build manifest (``manifest.json``): inputs digest, base, layer keys (cached or built), component
versions, verification and boot results, phase timings and the artifacts with their SHA-256."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from builder.local.pipeline import Pipeline




def build_manifest(pipeline: Pipeline) -> dict[str, Any]:
    from builder.local.keys import inputs_digest

    record, state, variables = pipeline.record, pipeline.state, pipeline.state.variables
    assert record is not None
    artifacts = {}
    for name, path in record.artifacts.items():
        file = Path(path)
        if file.is_file():
            artifacts[name] = {"path": file.name, "bytes": file.stat().st_size,
                               "sha256": pipeline.artifact_sha256(file)}
    return {
        "manifest_version": 1,
        "image": pipeline.options.image,
        "version": pipeline.version,
        "build_id": record.id,
        "target": "local",
        "git_commit": variables.get("builder_git_commit"),
        "inputs_digest": inputs_digest(state.base_key, variables),
        "base": {"os": state.os, "catalog_os": variables.get("builder_catalog_os"), "key": state.base_key,
                 "source": state.base_source},
        "feed": {"name": variables.get("package_feed"), "base": variables.get("package_feed_base")},
        "layers": state.layers,
        "components": {name: spec.get("version") for name, spec in variables.get("builder_components", {}).items()},
        "packages": variables.get("builder_packages", {}),
        "verification": state.verify,
        "sbom_packages": state.sbom_packages,
        "disk": {k: v for k, v in state.disk.items() if k != "vhd"},
        "boot_test": state.boot,
        "phases": [{"name": p.name, "status": p.status, "seconds": round(p.seconds, 1)} for p in record.phases
                   if p.status not in ("pending", "skipped", "running")],
        "artifacts": artifacts,
        "host": {"machine": platform.machine(), "python": platform.python_version()},
    }


def write_manifest(pipeline: Pipeline, dest: Path) -> Path:
    dest.write_text(json.dumps(build_manifest(pipeline), indent=2, default=str), encoding="utf-8")
    return dest
