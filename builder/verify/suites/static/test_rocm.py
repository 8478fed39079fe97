"""ROCm wiring on AMD images: /opt/rocm, boot sysctl, device-node permissions, amdgpu at boot."""

from __future__ import annotations

import re

import pytest

from builder.verify import probe


@pytest.fixture(autouse=True)
def _rocm_only(expect) -> None:
    if "rocm" not in expect["components"]:
        pytest.skip("image has no rocm")


def test_rocm_home(expect, host, check):
    home = f"/opt/rocm-{expect['components']['rocm']['version']}"
    found = host.run("readlink -f /opt/rocm").stdout.strip() or "no /opt/rocm"
    check.equal(home, found)


def test_sysctl(expect, host, check):
    wanted = expect["rocm_sysctl"]
    if not wanted:
        pytest.skip("the rocm role sets no kernel parameters")
    values = probe.sysctl_files(host)
    check.equal(wanted, {key: values.get(key, "unset") for key in wanted})


def test_device_nodes(expect, host, check):
    mode = expect["rocm_device_mode"]
    rules = probe.glob_text(host, "/etc/udev/rules.d/*.rules")
    found = sorted({f"{m.group(1)} {m.group(2)}" for text in rules.values() for line in text.splitlines()
                    if (m := re.search(r'KERNEL=="(kfd|renderD\*)".*MODE="(\d+)"', line))})
    check.equal([f"kfd {mode}", f"renderD* {mode}"], found)


def test_amdgpu_at_boot(host, check):
    check.that("amdgpu" in probe.modules_at_boot(host), "amdgpu in /etc/modules-load.d",
               sorted(probe.modules_at_boot(host)) or "(none)")
