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
    "node_exporter": "prometheus-node-exporter.service",
    "doca_ofed": "openibd.service",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "unit" in metafunc.fixturenames:
        components = load(metafunc.config)["components"]
        units = [unit for component, unit in UNITS.items() if component in components]
        metafunc.parametrize("unit", units, ids=[u.removesuffix(".service") for u in units])


def test_enabled(unit, host, check):
    check.equal("enabled", probe.unit_state(host, unit))
