"""Issue 16 CLI bugs: gc/yank and the local registry, `build --version`, dry runs that leave folders, throttling
retries on the progress line, and credential failures without library dumps."""

from __future__ import annotations

import json
from pathlib import Path

IMAGE = "ndh100-train"
SRC = "/subscriptions/s/resourceGroups/rg-build/providers/Microsoft.Compute/images/{}"


def _ok(result):
    assert result.code == 0, result.stderr
    return result


def _publish(run_cli, emu, version: str, source: str):
    return _ok(run_cli("publish", IMAGE, "--source-image-id", SRC.format(source), "--version", version,
                       env=emu.env()))


def _registry(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "state" / "registry.json").read_text())["images"]


# -- 1. gc and yank keep the local registry true --------------------------------------------------------------

def test_yank_is_recorded_and_gc_forgets_deleted_versions(run_cli, arm_emulator, tmp_path):
    _publish(run_cli, arm_emulator, "1.0.0", "img1")
    _publish(run_cli, arm_emulator, "1.0.1", "img2")
    _ok(run_cli("yank", IMAGE, "1.0.0", "--reason", "driver regression", "--yes", env=arm_emulator.env()))
    entry = _registry(tmp_path)[IMAGE]["1.0.0"]
    assert entry["yanked"] == "driver regression" and entry["yanked_at"]

    dry = json.loads(_ok(run_cli("gc", IMAGE, "--keep", "1", "--dry-run", "--json", env=arm_emulator.env())).stdout)
    assert [v["version"] for v in dry["versions"]] == ["1.0.0"]
    assert "1.0.0" in _registry(tmp_path)[IMAGE]  # a dry run deletes nothing, here either

    _ok(run_cli("gc", IMAGE, "--keep", "1", "--yes", env=arm_emulator.env()))
    assert list(_registry(tmp_path)[IMAGE]) == ["1.0.1"]
    refused = run_cli("reference", IMAGE, "--version", "1.0.0", env=arm_emulator.env())
    assert refused.code == 2 and "1.0.0" in refused.stderr, refused
    _ok(run_cli("reference", IMAGE, "--version", "1.0.1", env=arm_emulator.env()))


def test_promote_with_force_clears_the_recorded_yank(run_cli, arm_emulator, tmp_path):
    _publish(run_cli, arm_emulator, "1.0.0", "img1")
    _ok(run_cli("yank", IMAGE, "1.0.0", "--reason", "oops", "--yes", env=arm_emulator.env()))
    _ok(run_cli("promote", IMAGE, "1.0.0", "--force", env=arm_emulator.env()))
    assert "yanked" not in _registry(tmp_path)[IMAGE]["1.0.0"]


def test_registry_forget_and_update(tmp_path):
    from builder.registry import LocalRegistry

    registry = LocalRegistry(tmp_path)
    registry.record("a", "1.0.0", {"id": "x"})
    registry.record("a", "1.0.1", {"id": "y"})
    assert registry.update("a", "1.0.0", yanked="why") and not registry.update("a", "9.9.9", yanked="why")
    assert registry.live_versions("a") == ["1.0.1"] and registry.versions("a") == ["1.0.0", "1.0.1"]
    assert registry.forget("a", ["1.0.0", "2.0.0"]) == ["1.0.0"]
    assert registry.forget("a", ["1.0.1"]) == ["1.0.1"] and registry.load() == {"images": {}}
