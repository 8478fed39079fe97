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


def test_amdgpu_at_boot(expect, host, check):
    """amdgpu is kept out of early boot and loaded by a unit once the GPUs are visible, as Azure's MI300X image
    does (the rocm role's defaults): blacklisted, the unit enabled, its loader unloading the modules named and
    loading amdgpu with the options. A modules-load.d entry for a deny-listed module loads nothing."""
    loader = expect["rocm_amdgpu"]
    _, skipped = probe.loaded_at_boot(host)
    blacklisted = probe.blacklisted_modules(host)
    state = probe.unit_state(host, loader["unit"])
    script = probe.read(host, loader["loader"]) or ""
    wanted = [f"modprobe -r {name}" for name in loader["unload_first"]] + [f"modprobe amdgpu {loader['options']}"]
    found = {
        "blacklisted": blacklisted is not None and "amdgpu" in blacklisted,
        loader["unit"]: state,
        loader["loader"]: [line for line in wanted if line in script] if script else "missing",
        "deny-listed in modules-load.d (skipped at boot)": sorted(skipped),
    }
    expected = {"blacklisted": True, loader["unit"]: "enabled", loader["loader"]: wanted,
                "deny-listed in modules-load.d (skipped at boot)": []}
    check.equal(expected, found)
