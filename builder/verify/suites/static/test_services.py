"""Services the stack installs are enabled (not started: a build host or chroot has no GPU)."""

from __future__ import annotations

import pytest

from builder.verify import probe
from builder.verify.suites.conftest import load

# systemd unit each catalog component ships (vendor names; the component list comes from the catalog).
UNITS = {
    "nvidia_driver": "nvidia-persistenced.service",
    "fabric_manager": "nvidia-fabricmanager.service",
    "dcgm": "nvidia-dcgm.service",
    "dcgm_exporter": "dcgm-exporter.service",
    "node_exporter": "node_exporter.service",
    "doca_ofed": "openibd.service",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "unit" in metafunc.fixturenames:
        components = load(metafunc.config)["components"]
        units = [unit for component, unit in UNITS.items() if component in components]
        metafunc.parametrize("unit", units, ids=[u.removesuffix(".service") for u in units])


def test_enabled(unit, host, check):
    check.equal("enabled", probe.unit_state(host, unit))


def test_sku_tuning(expect, host, check):
    """The first-boot tuning oneshot is enabled and knows every target size of the image (and no other)."""
    import json

    state = probe.unit_state(host, "builder-sku-tuning.service")
    text = probe.read(host, "/etc/builder/sku-tuning.json")
    try:
        sizes = sorted(json.loads(text)["skus"]) if text else "no /etc/builder/sku-tuning.json"
    except (ValueError, KeyError, TypeError):
        sizes = "unparsable /etc/builder/sku-tuning.json"
    check.equal(f"enabled, sizes {sorted(expect['target_skus'])}", f"{state}, sizes {sizes}")
