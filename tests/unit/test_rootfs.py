"""Base root filesystem selection (no debootstrap run here; the integration tests build one)."""

from __future__ import annotations

import pytest

from builder import rootfs
from builder.errors import InputError


def test_debian_base_needs_no_reachability_check():
    spec = rootfs.resolve_spec("debian12", check=lambda mirror, suite: pytest.fail("no check for debian"))
    assert (spec.os, spec.suite) == ("debian12", "bookworm")
    assert "linux-image-cloud-amd64" in spec.packages and "waagent" in spec.packages and "python3" in spec.packages


def test_unreachable_archive_falls_back_to_debian_with_a_notice(monkeypatch, tmp_path):
    keyring = tmp_path / "ubuntu.gpg"
    keyring.write_text("k")
    monkeypatch.setitem(rootfs.KEYRINGS, "ubuntu2204", str(keyring))
    notices: list[str] = []
    spec = rootfs.resolve_spec("ubuntu2204", notice=notices.append, check=lambda mirror, suite: False)
    assert spec.os == "debian12"
    assert notices and "unreachable" in notices[0] and "debian12 variables" in notices[0]
    reachable = rootfs.resolve_spec("ubuntu2204", notice=notices.append, check=lambda mirror, suite: True)
    assert (reachable.os, reachable.suite) == ("ubuntu2204", "jammy")
    assert "walinuxagent" in reachable.packages and "linux-image-azure" in reachable.packages


def test_missing_keyring_falls_back(monkeypatch, tmp_path):
    monkeypatch.setitem(rootfs.KEYRINGS, "ubuntu2404", str(tmp_path / "missing.gpg"))
    notices: list[str] = []
    spec = rootfs.resolve_spec("ubuntu2404", notice=notices.append, check=lambda mirror, suite: True)
    assert spec.os == "debian12" and "no archive keyring" in notices[0]


def test_cache_key_changes_with_inputs():
    a = rootfs.BaseSpec("debian12", "bookworm", "http://deb.debian.org/debian", ("python3",))
    b = rootfs.BaseSpec("debian12", "bookworm", "http://mirror.example/debian", ("python3",))
    assert a.key != b.key and a.key == rootfs.BaseSpec(*a.__dict__.values()).key


def test_unknown_os():
    with pytest.raises(InputError, match="unknown OS 'centos7'"):
        rootfs.resolve_spec("centos7")


def test_not_root_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(rootfs.os, "geteuid", lambda: 1000)
    with pytest.raises(InputError, match="need root"):
        rootfs.require_tools("debootstrap")


def test_missing_tool_names_the_install(monkeypatch):
    monkeypatch.setattr(rootfs.os, "geteuid", lambda: 0)
    with pytest.raises(InputError, match="apt-get install no-such-tool-xyz"):
        rootfs.require_tools("no-such-tool-xyz")
