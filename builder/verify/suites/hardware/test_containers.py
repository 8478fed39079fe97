"""A container started through the NVIDIA runtime sees every GPU."""

from __future__ import annotations

import pytest


def test_gpus_visible(gpus, expect, vendor, host, check):
    if vendor != "nvidia" or "container_toolkit" not in expect["components"]:
        pytest.skip("image has no NVIDIA container toolkit")
    image = expect["container_image"]
    result = host.run(f"docker run --rm --gpus all {image} nvidia-smi -L 2>&1")
    seen = [line for line in result.stdout.splitlines() if line.startswith("GPU ")]
    found = f"{len(seen)} GPU(s)" if result.rc == 0 else f"exit {result.rc}: {result.stdout.strip()[-200:]}"
    check.equal(f"{len(gpus)} GPU(s)", found)
