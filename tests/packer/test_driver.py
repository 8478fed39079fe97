"""The Packer driver against real Packer (null builder, shell-local provisioners)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.errors import OperationError
from builder.packer import driver
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # drives the packer binary


def test_success_streams_unescaped_events_and_logs(packer_path, null_template, tmp_path):
    template = null_template("success")
    events = []
    log = tmp_path / "build.log"
    cmd = driver.build_command(packer_path, template, variables={"message": "hi there"})
    result = driver.stream(cmd, on_event=events.append, log=log, cwd=tmp_path)
    assert result.ok and result.returncode == 0 and not result.errors
    messages = [e.text for e in events if e.kind in ("message", "say")]  # 1.6.6: message; current Packer: say
    assert any(m.endswith("null.test: hi there") for m in messages)
    assert any(m.endswith("one, two, three") for m in messages)  # %!(PACKER_COMMA) unescaped
    assert any(e.kind == "say" and "finished" in e.text for e in events)
    assert result.artifact_id() == "Null"
    assert "-machine-readable" in log.read_text() and "null.test: hi there" in log.read_text()


def test_failure_reports_error_and_no_artifact(packer_path, null_template, tmp_path):
    result = driver.stream(driver.build_command(packer_path, null_template("failure")), cwd=tmp_path)
    assert not result.ok and result.returncode != 0
    assert any("non-zero exit status: 3" in e for e in result.errors)
    assert result.artifact_id() is None


def test_abort_on_error_is_passed_through(packer_path, null_template, tmp_path):
    cmd = driver.build_command(packer_path, null_template("failure"), on_error="abort")
    assert "-on-error=abort" in cmd
    assert driver.stream(cmd, cwd=tmp_path).returncode != 0


def test_artifact_extraction(packer_path, null_template, tmp_path):
    out = tmp_path / "disk.img"
    result = driver.stream(driver.build_command(packer_path, null_template("artifact"),
                                                variables={"file": str(out)}), cwd=tmp_path)
    assert result.ok and out.read_text() == "disk\n"
    by_builder = {a.builder_id: a for a in result.artifacts}
    assert by_builder["packer.post-processor.artifice"].files == [str(out)]
    assert by_builder["fnoeding.null"].id == "Null"
    assert result.artifact_id() == "Null"  # the builder's artifact, not the post-processor's


def test_long_output_streams_while_packer_runs(packer_path, null_template, tmp_path):
    lines = 20000
    seen: list[tuple[float, str]] = []
    result = driver.stream(driver.build_command(packer_path, null_template("stream"),
                                                variables={"lines": str(lines)}),
                           on_event=lambda e: seen.append((time.monotonic(), e.text)), cwd=tmp_path)
    finished = time.monotonic()
    assert result.ok
    first = next(t for t, text in seen if text.endswith(": first"))
    assert finished - first > 1.5, "events must arrive as Packer prints them, not when it exits"
    body = [text.split(": ", 1)[1] for _, text in seen if ": line " in text]
    assert body == [f"line {i}, of output" for i in range(1, lines + 1)]


def test_timeout_interrupts_packer(packer_path, null_template, tmp_path):
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    result = driver.stream(driver.build_command(packer_path, null_template("sleep"),
                                                variables={"pid_file": str(pid_file)}), timeout=2, cwd=tmp_path)
    assert result.timed_out and not result.ok
    assert time.monotonic() - started < 300  # far below the 600 s sleep: the timeout, not the script, ended it
    _assert_gone(int(pid_file.read_text()))


CHILD = """
import sys
from pathlib import Path
from builder.packer import driver
try:
    driver.stream(sys.argv[1:], on_event=lambda e: print(e.kind, e.text, flush=True))
except driver.PackerInterrupted as exc:
    print("interrupted:", exc, flush=True)
    sys.exit(exc.exit_code)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_is_forwarded_and_exits_130(packer_path, null_template, tmp_path, sig):
    pid_file = tmp_path / "pid"
    cmd = driver.build_command(packer_path, null_template("sleep"), variables={"pid_file": str(pid_file)})
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *cmd], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "started" in line:
            break
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        rest, _ = proc.communicate(timeout=300)  # margin for a loaded 2-core machine; the sleep is 600 s
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate()
        pytest.fail("the build did not stop within 300 s of the signal:\n" + "".join(lines) + rest)
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    assert time.monotonic() - started < 300
    assert "Cancelling build after receiving interrupt" in output and "never" not in output
    _assert_gone(int(pid_file.read_text()))


def _assert_gone(pid: int) -> None:
    for _ in range(1200):  # up to 120 s: Packer reaps the shell itself, slowly on a loaded 2-core machine
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"the provisioner's shell {pid} outlived the build")


def test_find_packer_version_check(packer_path):
    found = driver.find_packer("1.0.0", packer_path)
    assert found.path == packer_path and driver.parse_version(found.version)
    with pytest.raises(OperationError, match=r"is too old: this template needs >= 99\.0\.0; install Packer"):
        driver.find_packer("99.0.0", packer_path)


def test_find_packer_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PACKER", raising=False)
    with pytest.raises(OperationError, match="packer not found; install Packer"):
        driver.find_packer("1.0.0")
    with pytest.raises(OperationError, match="packer not found"):
        driver.find_packer("1.0.0", str(tmp_path / "nope"))


def test_validate_good_and_bad_template(packer_path, null_template, tmp_path):
    driver.run_checked(driver.validate_command(packer_path, null_template("success")), cwd=tmp_path)
    bad = tmp_path / "bad.pkr.hcl"
    bad.write_text('source "null" "x" {\n  no_such_option = 1\n}\nbuild {\n  sources = ["source.null.x"]\n}\n')
    with pytest.raises(OperationError, match=r"`packer validate` failed") as caught:
        driver.run_checked(driver.validate_command(packer_path, bad), cwd=tmp_path)
    assert "no_such_option" in str(caught.value)


def test_bad_on_error_is_input_error():
    from builder.errors import InputError

    with pytest.raises(InputError, match="--on-error: invalid value 'ask'"):
        driver.build_command("packer", Path("x"), on_error="ask")


def test_templates_are_packer_fmt_clean(packer_path):
    for template in sorted((REPO / "tests" / "packer" / "templates").glob("*.pkr.hcl")):
        proc = subprocess.run([packer_path, "fmt", "-check", str(template)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{template.name}: {proc.stdout}{proc.stderr}"
