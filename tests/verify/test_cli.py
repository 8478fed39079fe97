"""``builder verify``: bad input exits 2 with one located message and no traceback."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("args", "message"), [
    (("ndh100-trai", "--connection", "local"), "did you mean 'ndh100-train'"),
    (("nvidia-base", "--connection", "local"), "abstract"),
    (("ndh100-train", "--connection", "chroot", "--host", "/nonexistent"), "/nonexistent: --host: not a root"),
    (("ndh100-train", "--connection", "chroot"), "--host is required"),
    (("ndh100-train", "--connection", "ssh"), "--host is required"),
    (("ndh100-train", "--connection", "local", "--select", "everything"), "--select: unknown selection"),
    (("ndh100-train", "--connection", "local", "--skus", "Standard_ND96isr_H100_v6"),
     "skus.yaml: --skus: unknown VM size"),
    (("ndh100-train", "--connection", "telnet"), "Invalid value for '--connection'"),
    (("ndh100-train", "--connection", "local", "--suite", "hardware", "--select", "hygiene"), "no checks selected"),
])
def test_bad_input_exit_2(run_cli, args, message):
    result = run_cli("verify", *args)
    assert result.code == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_input_writes_nothing(run_cli, tmp_path):
    junit, out = tmp_path / "j.xml", tmp_path / "r.json"
    result = run_cli("verify", "ndh100-train", "--connection", "local", "--skus", "nope", "--junit", str(junit),
                     "--json", str(out))
    assert result.code == 2 and not junit.exists() and not out.exists()


def test_help_lists_the_options(run_cli):
    result = run_cli("verify", "--help")
    assert result.code == 0
    for option in ("--connection", "--host", "--suite", "--select", "--skus", "--junit", "--json"):
        assert option in result.stdout


def test_static_checks_refuse_a_non_root_login(run_cli, tmp_path):
    """As a normal user /root is unreadable and hygiene would pass vacuously: every static check fails instead."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    (fake / "id").chmod(0o755)
    result = run_cli("verify", "cpu-infer", "--connection", "local", "--select", "hygiene", "-q",
                     env={"PATH": f"{fake}:/usr/bin:/bin"})
    assert result.code == 1
    assert "expected root on the host" in result.stdout and "0 passed" in result.stdout


def test_local_connection_refuses_a_host(run_cli):
    """``--connection local`` checks this machine: a --host there would be silently ignored (issue 16)."""
    result = run_cli("verify", "cpu-infer", "--connection", "local", "--host", "gpu-node-7")
    assert result.code == 2 and "--host" in result.stderr and "Traceback" not in result.stderr
