"""Publish a local build. The local gallery emulator client is a later integration; until it is wired, the
version is recorded in the local build registry (``<state>/registry.json``) and the build says so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.registry import LocalRegistry

if TYPE_CHECKING:
    from builder.local.pipeline import Pipeline


def publish(pipeline: Pipeline) -> dict[str, Any]:
    record = pipeline.record
    assert record is not None
    entry = {"build_id": record.id, "target": "local", "artifacts": dict(record.artifacts),
             "inputs": pipeline.state.layers[-1]["key"] if pipeline.state.layers else None}
    registry = LocalRegistry(pipeline.options.state_dir)
    registry.record(pipeline.options.image, pipeline.version, entry)
    pipeline.reporter.notice(f"notice: recorded {pipeline.options.image} {pipeline.version} in the local build "
                             f"registry ({registry.path}); publishing to the gallery emulator is not wired yet")
    return {"registry": str(registry.path), "version": pipeline.version,
            "detail": f"{pipeline.version} recorded in {registry.path.name} (gallery emulator not wired yet)"}
