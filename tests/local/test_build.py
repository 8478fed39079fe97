"""``builder build`` end to end: a full build of ndh100-train with the stand-in feed (converge, verify,
generalize, disk, boot test; the session's ``full_build`` of tests/fixtures/local.py), a top-layer rebuild from
the layer cache (overlay diffs, and the whole-tree copy fallback forced), and the failure, interrupt and lock paths
(cheap ones)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from builder.local.lock import BuildLock
from builder.rootfs import mounts_under
from tests.conftest import REPO, builder_executable, default_sigint
from tests.fixtures.local import needs_local_tools

pytestmark = [needs_local_tools()]
IMAGE = "ndh100-train"


def _env(cache: Path, state: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "BUILDER_STATE": str(state), "BUILDER_CACHE": str(cache),
            "COLUMNS": "200", **extra}


def _build(cache: Path, state: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*builder_executable(), "build", IMAGE, "--feed", "stand-in", "--json", *args],
                          capture_output=True, text=True, cwd=REPO, env=_env(cache, state), timeout=timeout,
                          check=False)


def _records(state: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((state / "builds").glob("*/build.json"))]


def _gallery_versions(state: Path) -> list[str]:
    """Versions in the local gallery emulator's state (none when it was never written)."""
    path = state / "gallery" / "state.json"
    resources = json.loads(path.read_text())["resources"] if path.exists() else {}
    return [k for k in resources if "/versions/" in k]


def _no_leftovers(cache: Path, record: dict) -> None:
    work = cache / "work" / record["id"]
    assert mounts_under(work) == []
    assert not work.exists(), f"work tree left behind: {work}"


def _overlay_works(cache: Path) -> bool:
    """Whether this machine mounts overlayfs in the cache (else builds fall back to whole-tree copies)."""
    from builder.local.overlay import probe

    (cache / "work").mkdir(parents=True, exist_ok=True)
    return probe(cache / "work") is None


@pytest.mark.slow
def test_full_build_exports_a_booted_disk_sbom_and_manifest(full_build, builder_cache, run_cli):
    record, state = full_build["record"], full_build["state"]
    assert record["status"] == "succeeded"
    statuses = {p["name"]: p["status"] for p in record["phases"]}
    assert statuses == {name: "done" for name in statuses}, statuses
    assert list(statuses)[:6] == ["base", "render", "layer:base", "layer:gpu", "layer:fabric", "layer:image"]
    build_dir = Path(record["directory"])
    vhd, sbom, manifest = (Path(record["artifacts"][k]) for k in ("disk", "sbom", "manifest"))
    assert vhd.parent == sbom.parent == build_dir and vhd.suffix == ".vhd" and sbom.name.endswith(".cdx.json")
    assert vhd.stat().st_size % (1024 * 1024) == 512  # fixed VHD: whole MiB of data + the 512-byte footer
    data = json.loads(manifest.read_text())
    assert data["image"] == IMAGE and data["version"] == record["version"]
    assert re.fullmatch(r"[0-9a-f]{64}", data["inputs_digest"])
    assert [layer["name"] for layer in data["layers"]] == ["base", "gpu", "fabric", "image"]
    assert not any(layer["cached"] for layer in data["layers"])
    overlay = _overlay_works(builder_cache)
    assert record["snapshots"] == "overlay" if overlay else record["snapshots"].startswith("copy: overlayfs cannot")
    assert {layer["format"] for layer in data["layers"]} == {"overlay-diff" if overlay else "tree"}
    assert data["boot_test"]["ok"] is True
    assert data["artifacts"]["disk"]["bytes"] == vhd.stat().st_size
    from builder.catalog.loader import load_catalog
    from builder.stack import resolve

    assert data["components"] == resolve(load_catalog(REPO / "images"), IMAGE).versions
    bom = json.loads(sbom.read_text())
    names = {c["name"] for c in bom["components"]}
    assert data["sbom_packages"] > 100 and {"waagent", "systemd"} <= names
    assert "BUILDER-BOOT-OK" in Path(data["boot_test"]["serial_log"]).read_text(errors="replace")
    assert (build_dir / "logs" / "layer-gpu.log").read_text().count("TASK [") > 0
    registry = json.loads((state / "registry.json").read_text())
    assert record["version"] in registry["images"][IMAGE]
    _no_leftovers(builder_cache, record)
    listed = run_cli("builds", "--json", env={"BUILDER_STATE": str(state)})
    assert [(b["id"], b["status"]) for b in json.loads(listed.stdout)] == [(record["id"], "succeeded")]
    table = run_cli("builds", env={"BUILDER_STATE": str(state)})
    assert record["id"] in table.stdout and f"{vhd.name}" in table.stdout and "published" in table.stdout
    assert json.loads(listed.stdout)[0]["published"]["id"] == record["published"]["id"]
    snapshots = run_cli("cache", "ls", "--json", "--cache-dir", str(builder_cache))
    keys = {e["key"] for e in json.loads(snapshots.stdout)}
    listed = {e["key"]: e for e in json.loads(snapshots.stdout)}
    if overlay:  # a diff names the snapshot below it
        assert listed[data["layers"][3]["key"]]["parent"] == data["layers"][2]["key"]
    from builder.local.keys import per_build_layers

    baked = per_build_layers({})
    assert {layer["key"] for layer in data["layers"] if layer["name"] not in baked} <= keys
    assert not {layer["key"] for layer in data["layers"] if layer["name"] in baked} & keys
    _published_to_the_local_gallery(record, state, vhd, sbom, data["git_commit"], run_cli)


def _published_to_the_local_gallery(record: dict, state: Path, vhd: Path, sbom: Path, commit: str, run_cli) -> None:
    """The build published its verified version (the one in the image manifest) to <state>/gallery, staged, with
    provenance tags; `builder versions` reads that gallery when no Azure settings are set."""
    import hashlib

    published = record["published"]
    assert published["kind"] == "local-gallery" and published["action"] == "created"
    assert published["version"] == record["version"] and published["id"].endswith(f"/versions/{record['version']}")
    assert published["exclude_from_latest"] is True
    assert {p["name"]: p["status"] for p in record["phases"]}["publish"] == "done"
    env = {"BUILDER_STATE": str(state), "AZURE_SUBSCRIPTION_ID": "", "BUILDER_ARM_ENDPOINT": ""}
    listed = run_cli("versions", IMAGE, "--json", env=env)
    assert listed.code == 0, listed.stderr
    [info] = json.loads(listed.stdout)
    assert (info["version"], info["state"], info["latest"]) == (record["version"], "staged", False)
    tags = info["tags"]
    assert tags["builder.build_id"] == record["id"] and tags["builder.verification"] == "passed"
    assert tags["builder.sbom_sha256"] == hashlib.sha256(sbom.read_bytes()).hexdigest()
    assert tags["builder.git_commit"] == commit and tags["builder.base_version"].startswith("local:debian12:")
    assert tags["component.dcgm_exporter"] == "4.5.2-4.8.1"
    gallery = json.loads((state / "gallery" / "state.json").read_text())
    [version] = [r for k, r in gallery["resources"].items() if k.endswith(f"/versions/{record['version']}")]
    disk = version["properties"]["storageProfile"]["osDiskImage"]
    assert disk["source"]["uri"] == vhd.as_uri() and disk["sizeInGB"] >= 1


def _forget_other_image_layers(cache: Path, record: dict) -> None:
    """Drop image-layer snapshots of IMAGE other than the full build's: the cache outlives a test run, so an
    earlier run may already hold the snapshot this test must converge again."""
    from builder.local.cache import LayerCache

    manifest = json.loads(Path(record["artifacts"]["manifest"]).read_text())
    [full_key] = [layer["key"] for layer in manifest["layers"] if layer["name"] == "image"]
    layer_cache = LayerCache(cache)
    layer_cache.prune([e for e in layer_cache.entries() if e.meta.get("image") == IMAGE and e.usable
                       and e.meta.get("layer") == "image" and e.key != full_key], partials=False)


def _pin_changed(catalog: Path) -> Path:
    path = catalog / "nvidia-base.yaml"
    text, count = re.subn(r"^(\s+version: )4\.5\.2-4\.8\.1$", r"\g<1>4.5.2-4.9.0", path.read_text(), flags=re.M)
    assert count == 1
    path.write_text(text)
    return catalog


@pytest.mark.slow
def test_top_layer_pin_change_rebuilds_only_the_image_layer(full_build, builder_cache, catalog_copy, tmp_path):
    _pin_changed(catalog_copy)
    _forget_other_image_layers(builder_cache, full_build["record"])
    state = tmp_path / "state"
    started = time.monotonic()
    proc = subprocess.run([*builder_executable(), "--catalog", str(catalog_copy), "build", IMAGE, "--feed",
                           "stand-in", "--json", "--no-boot-test", "--version", "2026.1201.42"],
                          capture_output=True, text=True, cwd=REPO, env=_env(builder_cache, state), timeout=900,
                          check=False)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads(proc.stdout)
    assert record["version"] == record["published"]["version"] == "2026.1201.42"  # build --version, taken as given
    statuses = {p["name"]: p["status"] for p in record["phases"]}
    assert [statuses[f"layer:{n}"] for n in ("base", "gpu", "fabric", "image")] == ["cached", "cached", "cached",
                                                                                   "done"]
    manifest = json.loads(Path(record["artifacts"]["manifest"]).read_text())
    assert manifest["components"]["dcgm_exporter"] == "4.5.2-4.9.0" and manifest["version"] == "2026.1201.42"
    full_layers = {p["name"]: p["seconds"] for p in full_build["record"]["phases"]}
    rebuilt_layers = {p["name"]: p["seconds"] for p in record["phases"]}
    converge_full = sum(full_layers[f"layer:{n}"] for n in ("base", "gpu", "fabric", "image"))
    converge_rebuilt = sum(rebuilt_layers[f"layer:{n}"] for n in ("base", "gpu", "fabric", "image"))
    assert converge_rebuilt < converge_full, (converge_rebuilt, converge_full, seconds)
    if record["snapshots"] == "overlay":  # the cached layers are lower layers of a mount: nothing is copied
        assert sum(rebuilt_layers[f"layer:{n}"] for n in ("base", "gpu", "fabric")) < 3, rebuilt_layers
    _no_leftovers(builder_cache, record)


@pytest.mark.slow
def test_forced_copy_fallback_materializes_the_diffs_and_saves_a_whole_tree(full_build, builder_cache,
                                                                             catalog_copy, tmp_path):
    """``BUILDER_SNAPSHOTS=copy`` (what a machine without overlayfs does, with a notice): the cached layers
    (diffs) are applied to a copy of the base, the changed top layer converges on that plain tree and is saved
    as a whole tree, which an overlay build can use as a lower layer too."""
    from builder.local.cache import LayerCache

    _pin_changed(catalog_copy)
    _forget_other_image_layers(builder_cache, full_build["record"])
    state = tmp_path / "state"
    proc = subprocess.run([*builder_executable(), "--catalog", str(catalog_copy), "build", IMAGE, "--feed",
                           "stand-in", "--no-boot-test", "--no-publish"], capture_output=True, text=True, cwd=REPO,
                          env=_env(builder_cache, state, BUILDER_SNAPSHOTS="copy"), timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "notice: layer snapshots are whole-tree copies (forced by --snapshots copy" in proc.stderr
    [record] = _records(state)
    assert record["status"] == "succeeded" and record["snapshots"].startswith("copy: forced")
    statuses = {p["name"]: p for p in record["phases"]}
    assert [statuses[f"layer:{n}"]["status"] for n in ("base", "gpu", "fabric", "image")] == ["cached"] * 3 + ["done"]
    assert "(copied)" in statuses["layer:fabric"]["detail"] and "(tree," in statuses["layer:image"]["detail"]
    manifest = json.loads(Path(record["artifacts"]["manifest"]).read_text())
    [image] = [layer for layer in manifest["layers"] if layer["name"] == "image"]
    entry = LayerCache(builder_cache).get(image["key"])
    assert entry is not None and entry.format == "tree" and (entry.data / "usr/bin").is_dir()
    keys = [(layer["name"], layer["key"]) for layer in manifest["layers"]]
    assert LayerCache(builder_cache).longest_prefix(keys) == 4
    _no_leftovers(builder_cache, record)


@pytest.mark.slow
def test_a_failed_layer_unmounts_its_overlay_and_keeps_a_plain_copy_with_keep_rootfs(builder_cache, tmp_path):
    """A converge that fails (here: ansible-playbook refuses an unknown strategy plugin, at once) while the layer's
    overlay and the chroot mounts are up: the build fails naming the phase, nothing stays mounted, and
    ``--keep-rootfs`` leaves what the overlay showed as a plain folder."""
    state = tmp_path / "state"
    proc = subprocess.run([*builder_executable(), "build", IMAGE, "--feed", "stand-in", "--no-cache", "--json",
                           "--keep-rootfs", "--no-publish"], capture_output=True, text=True, cwd=REPO,
                          env=_env(builder_cache, state, ANSIBLE_STRATEGY="builder-test-no-such-strategy"),
                          timeout=600, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    record = json.loads(proc.stdout)
    assert "phase 'layer:base' failed" in record["error"] and "Traceback" not in proc.stderr
    work = builder_cache / "work" / record["id"]
    try:
        assert mounts_under(work) == []
        assert (work / "rootfs/usr/bin").is_dir() and not (work / "rootfs/proc/self").exists()
        assert sorted(p.name for p in work.iterdir()) == ["rootfs"]
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


def test_second_build_of_the_same_image_is_refused(builder_cache, tmp_path):
    state = tmp_path / "state"
    with BuildLock(state, IMAGE, "held-by-test"):
        proc = _build(builder_cache, state, timeout=120)
    assert proc.returncode == 1
    assert f"another build of {IMAGE} is running (build held-by-test" in proc.stderr
    assert "Traceback" not in proc.stderr
    [record] = _records(state)
    assert record["status"] == "failed" and not (state / "registry.json").exists()


def test_failed_phase_names_itself_and_its_log_and_publishes_nothing(builder_cache, debian_base, tmp_path):
    broken = tmp_path / "base.tar.gz"
    with tarfile.open(broken, "w:gz") as tar:
        tar.add(debian_base / "etc", arcname="etc")
        tar.add(debian_base / "usr/share/doc", arcname="usr/share/doc")
    with open(broken, "r+b") as handle:
        handle.truncate(broken.stat().st_size // 2)
    state = tmp_path / "state"
    proc = _build(builder_cache, state, "--base-rootfs", str(broken), timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "error: phase 'base' failed" in proc.stderr and "Traceback" not in proc.stderr
    log = Path(re.search(r"\(log: ([^)]+)\)", proc.stderr).group(1))
    assert log.is_file() and "tar" in log.read_text()
    record = json.loads(proc.stdout)
    assert record["status"] == "failed" and record["error_log"] == str(log)
    statuses = {p["name"]: p["status"] for p in record["phases"]}
    assert statuses["base"] == "failed" and {s for n, s in statuses.items() if n != "base"} == {"skipped"}
    assert record["artifacts"] == {} and not (state / "registry.json").exists()
    assert record["published"] == {} and _gallery_versions(state) == []
    assert not list((builder_cache / "base").glob(".user-*.partial"))
    _no_leftovers(builder_cache, record)


@pytest.mark.slow
def test_interrupt_unmounts_and_exits_130(builder_cache, tmp_path):
    state = tmp_path / "state"
    # Output goes to a file, not a pipe nobody reads while waiting: a full pipe would block the build.
    output = tmp_path / "build-output.log"
    with output.open("w") as sink:
        proc = subprocess.Popen([*builder_executable(), "build", IMAGE, "--feed", "stand-in", "--no-cache",
                                 "--quiet"], cwd=REPO, env=_env(builder_cache, state), stdout=sink,
                                stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 300
    mounted = False
    try:
        while time.monotonic() < deadline and proc.poll() is None and not mounted:
            records = _records(state) if (state / "builds").exists() else []
            if records:
                mounted = bool(mounts_under(builder_cache / "work" / records[0]["id"]))
            time.sleep(0.2)
        assert mounted, f"never saw the converge's chroot mounts: {proc.poll()}"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = output.read_text()
    assert proc.returncode == 130, stderr
    [record] = _records(state)
    assert record["status"] == "interrupted"
    assert [p["name"] for p in record["phases"] if p["status"] == "interrupted"] == ["layer:base"]
    _no_leftovers(builder_cache, record)
    assert not (state / "registry.json").exists()


def test_unusable_base_folder_is_an_input_error(builder_cache, tmp_path):
    folder = tmp_path / "not-a-rootfs"
    (folder / "etc").mkdir(parents=True)
    (folder / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    state = tmp_path / "state"
    proc = _build(builder_cache, state, "--base-rootfs", str(folder), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"{folder}: --base-rootfs: the base root filesystem lacks python3, a kernel and initrd in /boot" in (
        proc.stderr) and "Traceback" not in proc.stderr
    [record] = _records(state)
    assert record["status"] == "failed" and record["artifacts"] == {}
