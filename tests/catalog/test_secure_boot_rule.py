"""Rules `secure-boot` and `build-vm`: a TrustedLaunch image carries no DKMS-built kernel module (Secure Boot
refuses what DKMS signs with a key made on the build VM), and no build step runs on a GPU size."""

from __future__ import annotations

import pytest

from tests.catalog.helpers import edit, problems

TRUSTED = {"gallery.features": {"security_type": "TrustedLaunch"}}


def _secure_boot(catalog_dir, image: str, severity: str = "error") -> dict[str, str]:
    return {p.field: p.message for p in problems(catalog_dir, image)
            if "Secure Boot" in p.message and p.severity == severity}


def test_standard_images_are_not_concerned(catalog_copy):
    assert _secure_boot(catalog_copy, "ndh100-train") == {}


def test_cpu_image_may_be_trusted_launch(catalog_copy):
    edit(catalog_copy, "cpu-infer.yaml", TRUSTED)
    assert _secure_boot(catalog_copy, "cpu-infer") == {}


def test_trusted_launch_refuses_each_dkms_component_and_says_what_to_change(catalog_copy):
    edit(catalog_copy, "ndh100-train.yaml", TRUSTED)
    found = _secure_boot(catalog_copy, "ndh100-train")
    assert set(found) == {"components.nvidia_driver", "components.doca_ofed"}
    assert "nvidia-dkms-580-open" in found["components.nvidia_driver"]
    assert "gallery.features.security_type" in found["components.nvidia_driver"]
    assert "mlnx-ofed-kernel-dkms" in found["components.doca_ofed"]


def test_trusted_launch_refuses_amdgpu(catalog_copy):
    edit(catalog_copy, "ndmi300x-train.yaml", TRUSTED)
    found = _secure_boot(catalog_copy, "ndmi300x-train")
    assert set(found) == {"components.rocm", "components.doca_ofed"}
    assert "amdgpu-dkms" in found["components.rocm"]


def test_trusted_launch_supported_warns(catalog_copy):
    edit(catalog_copy, "ndh100-train.yaml", {"gallery.features": {"security_type": "TrustedLaunchSupported"}})
    assert _secure_boot(catalog_copy, "ndh100-train") == {}
    assert set(_secure_boot(catalog_copy, "ndh100-train", "warning")) == {"components.nvidia_driver",
                                                                          "components.doca_ofed"}


@pytest.mark.parametrize("size", ["Standard_NC24ads_A100_v4", "Standard_ND96isr_H100_v5"])
def test_build_vm_is_never_a_gpu_size(catalog_copy, size):
    edit(catalog_copy, "base-dsvm.yaml", {"build.vm_size": size})
    found = [p for p in problems(catalog_copy, "cpu-infer") if p.field == "build.vm_size"]
    assert len(found) == 1 and "GPU size" in found[0].message, found
