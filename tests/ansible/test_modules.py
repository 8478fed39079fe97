"""The custom modules in ansible/library, run directly (as Ansible runs them, arguments from a JSON file):
builder_files writes files, copies and links only when something differs; builder_state reads without changing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parent.parent.parent / "ansible" / "library"


def run_module(name: str, tmp_path: Path, check: bool = False, **args) -> dict:
    file = tmp_path / f"{name}-args.json"
    file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check,
                                                        "_ansible_diff": True}}))
    result = subprocess.run([sys.executable, str(LIBRARY / f"{name}.py"), str(file)], capture_output=True, text=True,
                            timeout=60)
    return json.loads(result.stdout)


def me() -> dict:
    import grp
    import pwd

    return {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}


def test_builder_files_links_replace_only_when_they_point_elsewhere(tmp_path):
    link = tmp_path / "bin/exporter"
    spec = {"path": str(link), "link": "/opt/exporter-1/exporter"}
    first = run_module("builder_files", tmp_path, files=[spec], parents=True)
    assert first["changed"] and os.readlink(link) == "/opt/exporter-1/exporter"
    assert not run_module("builder_files", tmp_path, files=[spec])["changed"]
    os.unlink(link)
    link.symlink_to("/elsewhere")
    assert run_module("builder_files", tmp_path, check=True, files=[spec])["changed"]
    assert os.readlink(link) == "/elsewhere"  # check mode changes nothing
    assert run_module("builder_files", tmp_path, files=[spec])["changed"]
    assert os.readlink(link) == "/opt/exporter-1/exporter"
    folder = tmp_path / "folder"
    folder.mkdir()
    failed = run_module("builder_files", tmp_path, files=[{"path": str(folder), "link": "/x"}])
    assert failed.get("failed") and "folder" in failed["msg"]


def test_builder_files_removes_files_links_and_folders(tmp_path):
    folder = tmp_path / "cache/builder"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep/file").write_text("x")
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("still here")
    link = tmp_path / "link-to-kept"
    link.symlink_to(kept)
    plain = tmp_path / "history"
    plain.write_text("ls\n")
    specs = [{"path": str(p), "absent": True} for p in (folder, link, plain, tmp_path / "never-there")]
    checked = run_module("builder_files", tmp_path, check=True, files=specs)
    assert checked["changed"] and sorted(checked["changed_paths"]) == sorted(map(str, (folder, link, plain)))
    assert folder.exists() and link.is_symlink() and plain.exists()  # check mode removes nothing
    removed = run_module("builder_files", tmp_path, files=specs)
    assert removed["changed"] and not any(os.path.lexists(p) for p in (folder, link, plain))
    assert (kept / "file").read_text() == "still here"  # a link is removed, never what it points to
    assert not run_module("builder_files", tmp_path, files=specs)["changed"]
    bad = run_module("builder_files", tmp_path, files=[{"path": str(plain), "absent": False}])
    assert bad.get("failed") and "absent: false" in bad["msg"]


def test_builder_files_copies_a_source_on_the_target(tmp_path):
    source = tmp_path / "build/plugin.so"
    source.parent.mkdir()
    source.write_bytes(b"\x7fELF built\n")
    spec = {"path": str(tmp_path / "lib/plugin.so"), "source": str(source), "mode": "0755", **me()}
    assert run_module("builder_files", tmp_path, files=[spec], parents=True)["changed"]
    target = tmp_path / "lib/plugin.so"
    assert target.read_bytes() == b"\x7fELF built\n" and oct(target.stat().st_mode & 0o777) == "0o755"
    assert not run_module("builder_files", tmp_path, files=[spec])["changed"]
    source.write_bytes(b"\x7fELF rebuilt\n")
    assert run_module("builder_files", tmp_path, files=[spec])["changed"] and target.read_bytes().endswith(b"rebuilt\n")
    missing = {**spec, "source": str(tmp_path / "not-built.so")}
    assert run_module("builder_files", tmp_path, check=True, files=[missing])["changed"]  # would be built first
    failed = run_module("builder_files", tmp_path, files=[missing])
    assert failed.get("failed") and "does not exist" in failed["msg"]
    both = run_module("builder_files", tmp_path, files=[{**spec, "content": "x"}])
    assert both.get("failed") and "mutually exclusive" in both["msg"]


def test_builder_state_reads_records_paths_and_files(tmp_path):
    (tmp_path / "opt/tool-1").mkdir(parents=True)
    (tmp_path / "opt/tool-1/.builder-sha256").write_text("ab" * 32 + "  tool-1.tar.gz\n")
    (tmp_path / "opt/other").mkdir()
    (tmp_path / "config.toml").write_text("[plugins]\n")
    state = run_module("builder_state", tmp_path, check=True, system=False, record_roots=[str(tmp_path / "opt")],
                       paths=[str(tmp_path / "opt"), str(tmp_path / "absent")],
                       read=[str(tmp_path / "config.toml"), str(tmp_path / "absent.toml")])
    assert not state["changed"] and state["installed"] == [] and state["enabled"] == []
    assert state["records"] == {str(tmp_path / "opt/tool-1"): "ab" * 32}
    assert state["paths"][str(tmp_path / "opt")]["isdir"] and state["paths"][str(tmp_path / "absent")] == {
        "exists": False}
    assert state["content"] == {str(tmp_path / "config.toml"): "[plugins]\n"}


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").exists(), reason="needs a dpkg system")
def test_builder_state_reads_the_dpkg_database(tmp_path):
    state = run_module("builder_state", tmp_path, check=True)
    assert "dpkg" in state["installed_names"] and any(p.startswith("dpkg=") for p in state["installed"])
    assert set(state["installed_names"]) <= set(state["known_names"]) and "root" in state["users"]
