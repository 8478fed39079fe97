"""Small helpers the hardware checks share (kept out of conftest so the check modules can import them)."""

from __future__ import annotations

import os
import shlex
from typing import Any

import pytest

# Azure's health checks give the whole NHC run 500 s (Azure/azurehpc-health-checks run-health-checks.sh:42
# `TIMEOUT=500`@0e0a1ac26a64): no single command of this suite may take longer than all of theirs together.
# A hung tool (an all-reduce waiting on a dead NVLink, dcgmi on a wedged GPU) would otherwise hold the GPU VM
# until the release job's own timeout. BUILDER_VERIFY_COMMAND_TIMEOUT (seconds) overrides it.
COMMAND_TIMEOUT_S = 500
TIMEOUT_ENV = "BUILDER_VERIFY_COMMAND_TIMEOUT"


def needs(health: dict, key: str) -> Any:
    """The size's setting for one check; skip when Azure's health checks do not run that check there."""
    value = health.get(key)
    if not value:
        pytest.skip(f"Azure's health checks do not run '{key}' on this size ({health['source']})")
    return value


def tool(host: Any, name: str) -> str:
    """The tool's path on the host; skip when the image does not carry it."""
    result = host.run(f"command -v {shlex.quote(name)}")
    if result.rc != 0:
        pytest.skip(f"{name} is not installed on this image")
    return result.stdout.strip()


def gpu_health(nvsmi_q: tuple) -> list:
    """The parsed ``nvidia-smi -q`` GPUs, or fail with why they could not be read."""
    gpus, error = nvsmi_q
    if error == "NVIDIA-only check":
        pytest.skip(error)
    if error:
        pytest.fail(f"expected nvidia-smi -q output, found {error}")
    return gpus


def command_timeout() -> int:
    """Seconds one hardware command may run: BUILDER_VERIFY_COMMAND_TIMEOUT, else COMMAND_TIMEOUT_S."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return COMMAND_TIMEOUT_S
    if not raw.isdigit() or int(raw) < 1:
        pytest.fail(f"{TIMEOUT_ENV}={raw!r}: expected a whole number of seconds, at least 1")
    return int(raw)


class BoundedHost:
    """The testinfra host, with every ``run`` under coreutils ``timeout``: a command that runs past the limit is
    killed (KILL 10 s after TERM) and its check fails saying so, instead of holding the VM."""

    def __init__(self, host: Any, seconds: int) -> None:
        self._host = host
        self.seconds = seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    def run(self, command: str, *args: str, **kwargs: Any) -> Any:
        line = self._host.backend.quote(command, *args)
        result = self._host.run(f"timeout -k 10 {self.seconds} /bin/sh -c {shlex.quote(line)}", **kwargs)
        if result.rc in (124, 137):
            pytest.fail(f"`{line}` ran past {self.seconds} s and was stopped ({TIMEOUT_ENV} sets the limit)")
        return result
