"""Which apt packages carry each catalog component, at which version.

One table serves the Ansible variables (install and hold) and the verification suite (present, pinned,
held), so a package name or version pattern is written once. Versions derive from the catalog pins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Package:
    """An apt package pinned to an exact version, and the apt feed that serves it."""

    name: str
    version: str
    feed: str
    hold: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "feed": self.feed, "hold": self.hold}


def _cuda_parts(components: dict[str, Any]) -> tuple[str, str]:
    version = str(components["cuda"]["version"])
    major, minor = version.split(".")[:2]
    return major, minor


def _driver(c: dict[str, Any]) -> list[Package]:
    drv = c["nvidia_driver"]
    version = drv["version"]
    pinning = Package(f"nvidia-driver-pinning-{version}", f"{version}-1", "cuda")
    if drv.get("flavor", "open") == "open":
        return [pinning, Package("nvidia-open", f"{version}-1", "cuda")]
    return [pinning, Package("cuda-drivers", f"{version}-1", "cuda")]


def _fabric_manager(c: dict[str, Any]) -> list[Package]:
    version = c["fabric_manager"]["version"]
    branch = int(version.split(".")[0])
    name = "nvidia-fabricmanager" if branch >= 580 else f"nvidia-fabricmanager-{branch}"
    return [Package(name, f"{version}-1", "cuda")]


def _cuda(c: dict[str, Any]) -> list[Package]:
    major, minor = _cuda_parts(c)
    return [Package(f"cuda-toolkit-{major}-{minor}", f"{c['cuda']['version']}-1", "cuda")]


def _cudnn(c: dict[str, Any]) -> list[Package]:
    cudnn = c["cudnn"]
    major = str(cudnn["cuda"]).split(".")[0]
    version = f"{cudnn['version']}-1"
    return [
        Package(f"libcudnn9-cuda-{major}", version, "cuda"),
        Package(f"libcudnn9-dev-cuda-{major}", version, "cuda"),
    ]


def _nccl(c: dict[str, Any]) -> list[Package]:
    version = c["nccl"]["version"]
    return [Package("libnccl2", version, "cuda"), Package("libnccl-dev", version, "cuda")]


def _container_toolkit(c: dict[str, Any]) -> list[Package]:
    version = c["container_toolkit"]["version"]
    names = ("libnvidia-container1", "libnvidia-container-tools", "nvidia-container-toolkit-base",
             "nvidia-container-toolkit")
    return [Package(name, version, "container-toolkit") for name in names]


def _dcgm(c: dict[str, Any]) -> list[Package]:
    version = c["dcgm"]["version"]
    major = str(version).split(":")[-1].split(".")[0]
    packages = [Package(f"datacenter-gpu-manager-{major}-core", version, "cuda")]
    if "cuda" in c:
        cuda_major, _ = _cuda_parts(c)
        packages.append(Package(f"datacenter-gpu-manager-{major}-cuda{cuda_major}", version, "cuda"))
    return packages


def _doca_ofed(c: dict[str, Any]) -> list[Package]:
    doca = c["doca_ofed"]
    return [Package("doca-ofed", doca.get("package_version") or f"{doca['version']}-1", "doca")]


def _enroot(c: dict[str, Any]) -> list[Package]:
    version = f"{c['enroot']['version']}-1"
    return [Package("enroot", version, "enroot"), Package("enroot+caps", version, "enroot")]


def _rocm(c: dict[str, Any]) -> list[Package]:
    version = c["rocm"]["version"]
    return [Package("amdgpu-dkms", f"{version}-1", "amdgpu"), Package("rocm", f"{version}-1", "rocm")]


def _rccl(c: dict[str, Any]) -> list[Package]:
    return [Package("rccl", f"{c['rccl']['version']}-1", "rocm")]


PACKAGE_TABLE = {
    "nvidia_driver": _driver,
    "fabric_manager": _fabric_manager,
    "cuda": _cuda,
    "cudnn": _cudnn,
    "nccl": _nccl,
    "container_toolkit": _container_toolkit,
    "dcgm": _dcgm,
    "doca_ofed": _doca_ofed,
    "enroot": _enroot,
    "rocm": _rocm,
    "rccl": _rccl,
}


def packages_for(components: dict[str, Any]) -> dict[str, list[Package]]:
    """Packages per component present in ``components`` (a resolved catalog mapping)."""
    return {
        name: PACKAGE_TABLE[name](components)
        for name in PACKAGE_TABLE
        if components.get(name) is not None
    }
