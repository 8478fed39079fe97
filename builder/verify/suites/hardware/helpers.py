"""Small helpers the hardware checks share (kept out of conftest so the check modules can import them)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest


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
