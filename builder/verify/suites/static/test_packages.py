"""Vendor packages present at the versions ``builder/stack/packages.py`` pins for the catalog stack, and held."""

from __future__ import annotations

import pytest

from builder.verify import probe
from builder.verify.suites.conftest import load


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "package" in metafunc.fixturenames:
        packages = load(metafunc.config)["packages"]
        metafunc.parametrize("package", packages, ids=[p["name"] for p in packages])


@pytest.fixture(scope="module")
def dpkg(host):
    return probe.dpkg_status(host)


def describe(name: str, found: probe.Installed | None, with_hold: bool) -> str:
    if found is None or not found.installed:
        return f"{name} not installed"
    return f"{name}={found.version}" + ((" held" if found.held else " not held") if with_hold else "")


def upstream(found: probe.Installed | None) -> str:
    """``1:4.5.2-1`` -> ``4.5.2``."""
    return found.version.split(":")[-1].rsplit("-", 1)[0] if found and found.installed else "not installed"


def test_pinned(package, dpkg, check):
    """Installed at exactly the pinned version, and on hold so apt upgrades cannot move it."""
    hold = package["hold"]
    expected = f"{package['name']}={package['version']}" + (" held" if hold else "")
    check.equal(expected, describe(package["name"], dpkg.get(package["name"]), hold))


def test_fabric_manager_matches_driver(expect, dpkg, check):
    """Fabric Manager must be exactly the driver's version or GPUs on NVSwitch systems never initialise."""
    if "fabric_manager" not in expect["components"]:
        pytest.skip("image has no fabric_manager")
    by_component = {p["component"]: p for p in expect["packages"]}
    manager = dpkg.get(by_component["fabric_manager"]["name"])
    driver = dpkg.get(by_component["nvidia_driver"]["name"]) if "nvidia_driver" in by_component else None
    driver_version = expect["components"]["nvidia_driver"]["version"]
    found = f"fabric manager {upstream(manager)}, driver {upstream(driver)}"
    check.equal(f"fabric manager {driver_version}, driver {driver_version}", found)
