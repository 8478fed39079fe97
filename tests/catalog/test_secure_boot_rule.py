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
    assert "set components.nvidia_driver.modules: signed-prebuilt" in found["components.nvidia_driver"]
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


SIGNED = {"components.nvidia_driver.modules": "signed-prebuilt"}
MODULES = "components.nvidia_driver.modules"


def _driver_errors(catalog_dir, image: str) -> dict[str, str]:
    return {p.field: p.message for p in problems(catalog_dir, image)
            if p.severity == "error" and (p.field or "").startswith("components.nvidia_driver")}


def test_signed_prebuilt_replaces_the_dkms_refusal_but_needs_recorded_packages(catalog_copy):
    """The catalog's 580.126.16 is the CUDA repository's release; no record shows Ubuntu's signed modules or
    userspace at it, so validate refuses the mode, naming the records and where they go."""
    edit(catalog_copy, "ndh100-train.yaml", {**TRUSTED, **SIGNED})
    found = _secure_boot(catalog_copy, "ndh100-train")
    assert set(found) == {"components.doca_ofed"}  # DOCA-OFED's DKMS modules still block Secure Boot
    message = _driver_errors(catalog_copy, "ndh100-train")[MODULES]
    assert "nvidia-driver-580-server-open 580.126.16-*" in message, message
    assert "linux-modules-nvidia-580-server-open-azure" in message, message
    assert "builder/data/feeds/ubuntu-ubuntu2204.yaml" in message, message


def test_signed_prebuilt_with_recorded_packages_passes_secure_boot(catalog_copy):
    """Ubuntu 22.04's 535.129.03 userspace and linux-azure module package are recorded (builder/data/feeds/
    ubuntu-ubuntu2204.yaml): a TrustedLaunch inference image without DOCA-OFED then has no Secure Boot error."""
    edit(catalog_copy, "nca100-infer.yaml", {**TRUSTED, **SIGNED, "components.nvidia_driver.branch": "535",
                                             "components.nvidia_driver.version": "535.129.03"})
    assert _secure_boot(catalog_copy, "nca100-infer") == {}
    assert MODULES not in _driver_errors(catalog_copy, "nca100-infer")


@pytest.mark.parametrize("change, words", [
    ({"os": "debian12"}, ["Ubuntu's archive", "debian12"]),
    ({"components.nvidia_driver.flavor": "proprietary"}, ["open flavour", "flavor: open"]),
])
def test_signed_prebuilt_needs_ubuntu_and_the_open_flavour(catalog_copy, change, words):
    edit(catalog_copy, "nca100-infer.yaml", {**SIGNED, **change})
    message = _driver_errors(catalog_copy, "nca100-infer").get(MODULES, "")
    assert all(word in message for word in words), message


def test_validate_refuses_signed_prebuilt_without_records_exit_2(run_cli, catalog_copy):
    edit(catalog_copy, "ndh100-train.yaml", SIGNED)
    result = run_cli("--catalog", str(catalog_copy), "validate", "ndh100-train")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert f"{MODULES}: no recorded nvidia-driver-580-server-open 580.126.16-*" in result.stderr, result.stderr


@pytest.mark.parametrize("size", ["Standard_NC24ads_A100_v4", "Standard_ND96isr_H100_v5"])
def test_build_vm_is_never_a_gpu_size(catalog_copy, size):
    edit(catalog_copy, "base-dsvm.yaml", {"build.vm_size": size})
    found = [p for p in problems(catalog_copy, "cpu-infer") if p.field == "build.vm_size"]
    assert len(found) == 1 and "GPU size" in found[0].message, found
