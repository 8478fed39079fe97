"""Vendor packages present at the versions ``builder/stack/packages.py`` pins for the catalog stack, and held."""

from __future__ import annotations

import re

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
    """Installed at the pinned version (a pin may be an apt version glob: any build of exactly that release),
    and on hold so apt upgrades cannot move it."""
    hold = package["hold"]
    found = dpkg.get(package["name"])
    expected = f"{package['name']}={package['version']}" + (" held" if hold else "")
    pinned = (found is not None and found.installed and (found.held or not hold)
              and re.match(package["pattern"], f"{package['name']}={found.version}") is not None)
    check.equal(expected, expected if pinned else describe(package["name"], found, hold))


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


# The versioned packages of a driver branch (names as in NVIDIA's CUDA repository for Ubuntu 24.04,
# builder/data/feeds/cuda-ubuntu2404.yaml S1): nvidia-open / cuda-drivers depend >= on them, so without the
# pinning package read first apt installs the newest build of the branch (Azure/azhpc-images
# components/install_nvidiagpudriver.sh@03540340a4be installs the pinning package in its own apt run first).
# Ubuntu's own -server branches (the signed-prebuilt mode) add "-server" before "-open"
# (builder/data/feeds/ubuntu-ubuntu2204.yaml S1: Azure/az-cgpu-onboarding src/driver-package-list.txt@38bf23ce9500).
DRIVER_BRANCH_PACKAGE = re.compile(r"^(nvidia-driver|nvidia-dkms|nvidia-kernel-source|nvidia-kernel-common|"
                                   r"nvidia-utils|nvidia-compute-utils|libnvidia-compute)-\d+(-server)?(-open)?$")


def test_driver_branch_packages_are_the_pinned_release(expect, dpkg, check):
    """Every installed package of the driver branch is the catalog's driver release, not a newer build."""
    if "nvidia_driver" not in expect["components"]:
        pytest.skip("image has no nvidia_driver")
    release = expect["components"]["nvidia_driver"]["version"]
    found = {name: upstream(item) for name, item in sorted(dpkg.items())
             if item.installed and DRIVER_BRANCH_PACKAGE.match(name)}
    check.equal({name: release for name in found}, found)
