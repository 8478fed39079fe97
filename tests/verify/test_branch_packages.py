"""Which installed packages the driver-branch check compares with the catalog's driver release."""

from __future__ import annotations

import pytest

from builder.verify.suites.static.test_packages import DRIVER_BRANCH_PACKAGE


# NVIDIA's CUDA repository names (builder/data/feeds/cuda-ubuntu2404.yaml S1) and Ubuntu's -server names of the
# signed-prebuilt mode (builder/data/feeds/ubuntu-ubuntu2204.yaml S1: Azure/az-cgpu-onboarding
# src/driver-package-list.txt@38bf23ce9500).
@pytest.mark.parametrize("name", [
    "nvidia-driver-580-open", "nvidia-dkms-580-open", "libnvidia-compute-580", "nvidia-utils-580",
    "nvidia-driver-535-server-open", "nvidia-dkms-535-server-open", "nvidia-utils-535-server",
    "libnvidia-compute-535-server", "nvidia-kernel-common-535-server", "nvidia-compute-utils-535-server",
])
def test_branch_packages_of_both_archives_are_checked(name):
    assert DRIVER_BRANCH_PACKAGE.match(name)


@pytest.mark.parametrize("name", [
    "nvidia-fabricmanager-580", "nvidia-open", "cuda-drivers", "nvidia-container-toolkit",
    "linux-modules-nvidia-535-server-open-azure",  # versioned by the kernel, not the driver
])
def test_other_packages_are_not(name):
    assert not DRIVER_BRANCH_PACKAGE.match(name)
