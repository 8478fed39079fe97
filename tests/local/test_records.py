"""Build lock, build records and history, progress reporters, preflight messages."""

from __future__ import annotations

import io
import json

import pytest

from builder.errors import InputError, OperationError
from builder.local import records
from builder.local.display import LineReporter, LiveReporter, summary
from builder.local.lock import BuildLock
from builder.local.pipeline import BuildOptions
from builder.local.preflight import preflight


def test_second_lock_on_the_same_image_is_refused(tmp_path):
    with BuildLock(tmp_path, "img", "build-1"):
        with pytest.raises(OperationError) as refused:
            BuildLock(tmp_path, "img", "build-2").acquire()
        assert "another build of img is running (build build-1" in str(refused.value)
        with BuildLock(tmp_path, "other", "build-3"):  # another image may build meanwhile
            pass
    with BuildLock(tmp_path, "img", "build-4"):  # released on exit
        pass


def test_records_round_trip_and_history(tmp_path):
    first = records.new_build(tmp_path, "img", {"feed": "stand-in"})
    first.phase("base").status = "done"
    first.status = records.SUCCEEDED
    first.finished = first.started + 12
    first.artifacts["disk"] = "/x/img.vhd"
    first.save()
    second = records.new_build(tmp_path, "other")
    loaded = records.load(first.directory)
    assert loaded.status == "succeeded" and loaded.phases[0].name == "base" and loaded.duration == 12
    assert [r.id for r in records.history(tmp_path)] == [first.id, second.id]
    assert [r.id for r in records.history(tmp_path, "other")] == [second.id]
    assert json.loads((first.directory / "build.json").read_text())["options"] == {"feed": "stand-in"}


def _record(tmp_path):
    record = records.new_build(tmp_path, "img")
    for name in ("base", "layer:gpu", "disk"):
        record.phase(name)
    record.phase("base").status = "done"
    record.phase("base").seconds = 1.5
    record.phase("layer:gpu").status = "running"
    return record


def test_line_reporter_prints_phases_and_tasks(tmp_path):
    stream = io.StringIO()
    reporter = LineReporter(stream)
    record = _record(tmp_path)
    reporter.start(record)
    reporter.phase("layer:gpu")
    reporter.update("nvidia_driver : Install the driver")
    record.phase("layer:gpu").status = "done"
    reporter.phase_done("layer:gpu")
    out = stream.getvalue()
    assert "layer:gpu: started" in out and "nvidia_driver : Install the driver" in out
    assert "layer:gpu: done in" in out


def test_live_table_shows_phase_elapsed_and_current_task(tmp_path):
    reporter = LiveReporter()
    reporter.record = _record(tmp_path)
    reporter.phase("layer:gpu")
    reporter.update("cuda : Install the toolkit")
    reporter.console.begin_capture()
    reporter.console.print(reporter._render())
    text = reporter.console.end_capture()
    assert "layer:gpu" in text and "running" in text and "cuda : Install the toolkit" in text
    assert "pending" in text and "1.5s" in text
    reporter.console.begin_capture()
    reporter.console.print(summary(reporter.record))
    assert "base" in reporter.console.end_capture()


def test_preflight_names_what_is_missing(tmp_path):
    options = BuildOptions(image="img", state_dir=tmp_path, base_rootfs=tmp_path / "nope.tar")
    with pytest.raises(InputError) as problem:
        preflight(options, euid=1000)
    text = str(problem.value)
    assert "user: local builds need root" in text and "sudo" in text
    assert "--base-rootfs: no such file or folder" in text


def test_preflight_lists_missing_tools_with_their_packages(tmp_path, monkeypatch):
    from builder.local import preflight as module

    monkeypatch.setattr(module, "_have", lambda tool: tool not in ("debootstrap", "qemu-system-x86_64"))
    options = BuildOptions(image="img", state_dir=tmp_path, feed="stand-in")
    with pytest.raises(InputError) as problem:
        preflight(options, euid=0)
    text = str(problem.value)
    assert "missing debootstrap, qemu-system-x86_64" in text and "apt-get install debootstrap qemu-system-x86" in text
    without_boot = BuildOptions(image="img", state_dir=tmp_path, boot=False, base_rootfs=tmp_path)
    assert module.missing(without_boot) == {}


def test_a_running_record_without_a_live_lock_shows_as_abandoned(tmp_path):
    live = records.new_build(tmp_path, "img")
    with BuildLock(tmp_path, "img", live.id):
        assert [r.status for r in records.history(tmp_path)] == ["running"]
    assert [r.status for r in records.history(tmp_path)] == ["abandoned"]


def test_layer_snapshots_fall_back_to_copies_with_a_notice(tmp_path, monkeypatch):
    """``auto`` uses overlayfs where it mounts and says so in build.json; where it does not (some containers), or
    where a path cannot go into overlay mount options, the build falls back to whole-tree copies with a notice;
    ``--snapshots overlay`` fails instead, ``--snapshots copy`` forces the fallback (notice too)."""
    from builder.catalog.loader import load_catalog
    from builder.local import overlay
    from builder.local.display import Reporter
    from builder.local.pipeline import Pipeline
    from builder.local.snapshots import LayerTrees
    from tests.conftest import REPO

    notices: list[str] = []

    class Recording(Reporter):
        def notice(self, text: str) -> None:
            notices.append(text)

    options = BuildOptions(image="ndh100-train", state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                           publish=False)
    pipeline = Pipeline(load_catalog(REPO / "images"), options, Recording())
    pipeline.record = records.new_build(options.state_dir, options.image)
    pipeline.trees = LayerTrees(pipeline.cache, pipeline.work, tmp_path / "base", notice=pipeline.reporter.notice)
    monkeypatch.setattr(overlay, "probe", lambda scratch: None)
    assert pipeline._choose_snapshots() == "overlay" and pipeline.record.snapshots == "overlay" and notices == []
    monkeypatch.setattr(overlay, "probe", lambda scratch: "mount: permission denied")
    assert pipeline._choose_snapshots() == "copy"
    assert "overlayfs cannot be used here (mount: permission denied); layer snapshots fall back to whole-tree " \
           "copies" in notices[-1]
    assert records.load(pipeline.record.directory).snapshots == "copy: overlayfs cannot be used here (mount: " \
                                                               "permission denied)"
    options.snapshots = "overlay"
    with pytest.raises(OperationError, match="overlayfs cannot be used here: mount: permission denied"):
        pipeline._choose_snapshots()
    options.snapshots = "copy"
    monkeypatch.setattr(overlay, "probe", lambda scratch: pytest.fail("a forced copy does not probe"))
    assert pipeline._choose_snapshots() == "copy" and "forced by --snapshots copy" in notices[-1]
    options.snapshots = "auto"
    monkeypatch.setattr(overlay, "probe", lambda scratch: None)
    pipeline.trees.base = tmp_path / "base,with:commas"
    assert pipeline._choose_snapshots() == "copy" and "must not contain" in notices[-1]
