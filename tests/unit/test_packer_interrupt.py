"""A forwarded interrupt reaches a provisioner process that lost the first one (issue 18, "Under load").

A shell that has just forked its next command hands the group's SIGINT to the child with its own handler
still installed; the child's ``exec`` discards it and the command runs to its end while Packer waits (the
driver test waited the whole ``sleep``). The stand-in Packer below reproduces that deterministically: its
provisioner shell swallows the first SIGINT and dies only of a second one; Packer itself, as the real one,
waits for its provisioner after an interrupt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from builder.packer import driver

FAKE_PACKER = r"""
import signal, subprocess, sys
signal.signal(signal.SIGINT, lambda *a: print("ui,error,Cancelling build after receiving interrupt", flush=True))
shell = subprocess.Popen(["/bin/sh", "-c", "trap 'trap - INT' INT; echo started; while :; do sleep 0.1; done"])
sys.exit(1 if shell.wait() else 0)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_reaches_a_provisioner_that_lost_the_first_one(tmp_path, monkeypatch, sig):
    assert threading.current_thread() is threading.main_thread()
    watchdog_fired = threading.Event()
    procs: list[int] = []

    def on_event(event: driver.Event) -> None:
        if event.text.endswith("started") and not procs:
            procs.append(1)
            os.kill(os.getpid(), sig)  # the driver's handler forwards it to Packer's process group

    def watchdog() -> None:  # today's driver never repeats the interrupt: end the run so the test can fail
        watchdog_fired.set()
        os.killpg(group[0], signal.SIGKILL)

    group: list[int] = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        group.append(proc.pid)
        return proc

    timer = threading.Timer(30, watchdog)
    timer.daemon = True
    timer.start()
    monkeypatch.setattr(driver.subprocess, "Popen", popen)
    try:
        with pytest.raises(driver.PackerInterrupted):
            driver.stream([sys.executable, "-c", FAKE_PACKER], on_event=on_event, cwd=tmp_path)
    finally:
        timer.cancel()
    assert procs and not watchdog_fired.is_set(), "the provisioner kept running: the interrupt was never repeated"


def test_interrupted_packer_is_killed_after_the_grace_period(tmp_path):
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('started', flush=True)\n"
        "time.sleep(600)\n"
    )
    started = time.monotonic()

    def on_event(event: driver.Event) -> None:
        if event.text == "started":
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(driver.PackerInterrupted):
        driver.stream([sys.executable, "-c", stubborn], on_event=on_event, cwd=tmp_path, grace=3)
    assert time.monotonic() - started < 300  # the grace period ended it, not the 600 s sleep
