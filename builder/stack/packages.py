"""Which apt packages carry each catalog component, at which version.

One table serves the Ansible variables (install and hold) and the verification suite (present, pinned,
held), so a package name or version pattern is written once. Versions derive from the catalog pins.

Where the catalog pins only the upstream version, the Debian revision is not made up: the table gives an apt
version glob (``580.126.16-*``: any build of exactly that release, as NVIDIA's pinning package and apt-get
accept), and ``builder.stack.records.exact_versions`` replaces it by the one version the recorded repository
facts carry for the image's OS (``580.126.16-1ubuntu1``), with the record's source.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

# The base OS's own archive (Ubuntu main/restricted): configured by the base, not by a package feed.
DISTRO_FEED = "ubuntu"


@dataclass(frozen=True)
class Package:
    """An apt package pinned to one release, and the apt feed that serves it.

    ``version``: an exact apt version, or an apt version glob (``*``) where no record gives the exact string;
    ``source``: where an exact version string comes from ("" when the catalog pins it itself, or it is a glob).
    """

    name: str
    version: str
    feed: str
    hold: bool = True
    source: str = ""

    @property
    def exact(self) -> bool:
        return "*" not in self.version

    def matches(self, version: str) -> bool:
        """Whether an installed or offered ``version`` is this pin."""
        return fnmatch.fnmatchcase(version, self.version)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "feed": self.feed, "hold": self.hold,
                "pattern": "^" + _regex(f"{self.name}={self.version}") + "$", "source": self.source}


def _regex(glob: str) -> str:
    """An apt version glob as a regular expression (only ``*`` is special), for Ansible's ``match`` test."""
    import re

    return ".*".join(re.escape(part) for part in glob.split("*"))


def rocm_digits(version: str) -> str:
    """ROCm's build number in its packages' versions: ``6.4.4`` -> ``60404`` (the jammy/noble scheme
    ``<component>.<rocm digits>-<build>~22.04``, builder/data/feeds/rocm-ubuntu2204.yaml S2)."""
    major, minor, patch = [*str(version).split("."), "0", "0"][:3]
    return f"{int(major)}{int(minor):02d}{int(patch):02d}"


def _cuda_parts(components: dict[str, Any]) -> tuple[str, str]:
    version = str(components["cuda"]["version"])
    major, minor = version.split(".")[:2]
    return major, minor


def _driver(c: dict[str, Any]) -> list[Package]:
    drv = c["nvidia_driver"]
    version = drv["version"]
    # The pinning package names its release; public records disagree on its revision
    # (builder/data/feeds/extras.yaml, unknown).
    if drv.get("modules", "dkms") == "signed-prebuilt":
        # Ubuntu's userspace for its prebuilt signed modules (Azure/az-cgpu-onboarding
        # src/step-1-install-gpu-driver.sh@83b8f307f930); the module package follows the kernel flavour, which the
        # role reads on the build VM. "ubuntu": the base's own archive (restricted), no feed to configure.
        return [Package(f"nvidia-driver-{drv['branch']}-server-open", f"{version}-*", DISTRO_FEED)]
    pinning = Package(f"nvidia-driver-pinning-{version}", f"{version}-*", "cuda")
    if drv.get("flavor", "open") == "open":
        return [pinning, Package("nvidia-open", f"{version}-*", "cuda")]
    return [pinning, Package("cuda-drivers", f"{version}-*", "cuda")]


def _fabric_manager(c: dict[str, Any]) -> list[Package]:
    version = c["fabric_manager"]["version"]
    branch = int(version.split(".")[0])
    name = "nvidia-fabricmanager" if branch >= 580 else f"nvidia-fabricmanager-{branch}"
    return [Package(name, f"{version}-*", "cuda")]


def _cuda(c: dict[str, Any]) -> list[Package]:
    major, minor = _cuda_parts(c)
    return [Package(f"cuda-toolkit-{major}-{minor}", f"{c['cuda']['version']}-*", "cuda")]


def _cudnn(c: dict[str, Any]) -> list[Package]:
    cudnn = c["cudnn"]
    major = str(cudnn["cuda"]).split(".")[0]
    version = f"{cudnn['version']}-*"
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


def _dcgm_exporter(c: dict[str, Any]) -> list[Package]:
    # NVIDIA ships the exporter as datacenter-gpu-manager-exporter in the CUDA repository, "versioned by the exporter
    # version" (docs.nvidia.com/datacenter/dcgm/latest/installation/install-dcgm-exporter.html): tag 4.4.1-4.6.0 is
    # 4.6.0-1 (Azure/AgentBaker parts/common/components.json@d97ea047ccd5, beside DCGM 1:4.4.1-1). The revision of
    # other releases is not recorded: a glob.
    exporter = str(c["dcgm_exporter"]["version"]).split("-", 1)[1]
    return [Package("datacenter-gpu-manager-exporter", f"{exporter}-*", "cuda")]


def _doca_ofed(c: dict[str, Any]) -> list[Package]:
    doca = c["doca_ofed"]
    return [Package("doca-ofed", doca.get("package_version") or f"{doca['version']}-*", "doca")]


def _enroot(c: dict[str, Any]) -> list[Package]:
    # Release asset names enroot_<ver>-1_amd64.deb / enroot+caps_<ver>-1_amd64.deb (NVIDIA/enroot
    # doc/installation.md@033c502d34c8).
    version = f"{c['enroot']['version']}-1"
    return [Package("enroot", version, "enroot"), Package("enroot+caps", version, "enroot")]


def _rocm(c: dict[str, Any]) -> list[Package]:
    version = str(c["rocm"]["version"])
    digits = rocm_digits(version)
    # amdgpu-dkms carries the kernel driver's own version: 1:<driver>.<rocm digits>-<build>.<os> (amdgpu records S1).
    return [Package("amdgpu-dkms", f"1:*.{digits}-*", "amdgpu"), Package("rocm", f"{version}.{digits}-*", "rocm")]


def _rccl(c: dict[str, Any]) -> list[Package]:
    digits = rocm_digits(str(c["rocm"]["version"])) if c.get("rocm") else "*"
    return [Package("rccl", f"{c['rccl']['version']}.{digits}-*", "rocm")]


PACKAGE_TABLE = {
    "nvidia_driver": _driver,
    "fabric_manager": _fabric_manager,
    "cuda": _cuda,
    "cudnn": _cudnn,
    "nccl": _nccl,
    "container_toolkit": _container_toolkit,
    "dcgm": _dcgm,
    "dcgm_exporter": _dcgm_exporter,
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
