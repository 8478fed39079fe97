"""Pydantic models of a catalog image and of the SKU table. Unknown keys are errors.

Patterns are ASCII only ([0-9], never the Unicode-aware \\d); booleans are strict (the string "false" is an error,
not true); floats must be finite (no .nan or .inf).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, model_validator

Version = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)+$")]
DebVersion = Annotated[str, StringConstraints(pattern=r"^([0-9]+:)?[0-9][0-9A-Za-z.+~-]*$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class OS(StrEnum):
    ubuntu2204 = "ubuntu2204"
    ubuntu2404 = "ubuntu2404"
    debian12 = "debian12"


class Purpose(StrEnum):
    train = "train"
    infer = "infer"


class Kind(StrEnum):
    gpu_nvidia = "gpu-nvidia"
    gpu_amd = "gpu-amd"
    cpu = "cpu"


class StorageAccountType(StrEnum):
    standard_lrs = "Standard_LRS"
    standard_zrs = "Standard_ZRS"
    premium_lrs = "Premium_LRS"
    premiumv2_lrs = "PremiumV2_LRS"


# ---------------------------------------------------------------- base


class PurchasePlan(Strict):
    name: str
    product: str
    publisher: str


class MarketplaceBase(Strict):
    publisher: str
    offer: str
    sku: str
    version: Annotated[str, StringConstraints(pattern=r"^(latest|[0-9]+\.[0-9]+\.[0-9]+)$")]
    plan: PurchasePlan | None = None


class Base(Strict):
    """Exactly one of: a marketplace image, a gallery image version id, another catalog image."""

    marketplace: MarketplaceBase | None = None
    gallery_image_id: Annotated[str, StringConstraints(pattern=r"^/subscriptions/.+/galleries/.+")] | None = None
    image: Name | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Base:
        chosen = [k for k in ("marketplace", "gallery_image_id", "image") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of marketplace, gallery_image_id, image (null the inherited one to replace it)"
            )
        return self


# ---------------------------------------------------------------- build


class VirtualNetwork(Strict):
    """An existing VNet/subnet for the Azure build VM (private IP only)."""

    resource_group: str
    name: str
    subnet: str


class BuildSettings(Strict):
    region: str
    vm_size: str
    os_disk_gb: Annotated[int, Field(ge=30, le=4096)] = 128
    spot: StrictBool = False
    timeout_minutes: Annotated[int, Field(ge=10, le=960)] = 180
    virtual_network: VirtualNetwork | None = None


# ---------------------------------------------------------------- components


class Download(Strict):
    """A file fetched during the build: where from, its SHA-256, and where that checksum was read (a URL, or
    ``owner/repo path@commit``) — a checksum without a source is an invented fact."""

    url: str
    sha256: Sha256
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

    @model_validator(mode="after")
    def _not_a_placeholder(self) -> Download:
        if len(set(self.sha256)) == 1:
            raise ValueError(f"sha256 is a placeholder ({self.sha256[:8]}...): record the vendor's value and its "
                             "source")
        return self


class NvidiaDriver(Strict):
    """``modules``: where the kernel modules come from: ``dkms`` (built on the build VM from the CUDA repository's
    packages) or ``signed-prebuilt`` (Ubuntu's signed ``linux-modules-nvidia-<branch>-server-open-<flavour>`` for
    the linux-azure kernel, with the userspace ``nvidia-driver-<branch>-server-open``; for Secure Boot,
    docs/secure-boot.md)."""

    branch: Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")]
    version: Version
    flavor: Literal["open", "proprietary"] = "open"
    modules: Literal["dkms", "signed-prebuilt"] = "dkms"


class Pinned(Strict):
    version: DebVersion


class FabricManager(Strict):
    version: Version


class DocaOfed(Strict):
    """``version``: the DOCA release (names the repository folder); ``package_version``: the ``doca-ofed`` meta
    package's Debian version in that repository (e.g. 3.2.1-044000), where recorded."""

    version: Version
    package_version: DebVersion | None = None


class Cuda(Strict):
    version: Version
    minor_version_compat: StrictBool = False


class Cudnn(Strict):
    version: Version
    cuda: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")]


class Nccl(Strict):
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+\+cuda[0-9]+\.[0-9]+$")]


class DownloadedTool(Strict):
    version: DebVersion
    download: Download


class DcgmExporter(Strict):
    """``version``: the release tag, ``<DCGM version>-<exporter version>`` (NVIDIA tags the tested pair; its apt
    package ``datacenter-gpu-manager-exporter`` is versioned by the exporter part)."""

    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+\.[0-9]+\.[0-9]+$")]


class Checksum(Strict):
    sha256: Sha256
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Enroot(Strict):
    """``debs``: the release ``.deb`` files' checksums (package name -> sha256 and where it was read). NVIDIA
    publishes none; without them an upstream build refuses to install the files unverified."""

    version: Version
    debs: dict[str, Checksum] = Field(default_factory=dict)


class Pyxis(DownloadedTool):
    """``slurm``: the Slurm release (major.minor) the clusters that run this image deploy. Pyxis must be compiled
    against that release (NVIDIA/pyxis README); the image loads it ``required`` only when it was."""

    slurm: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+$")] | None = None


class Hpcx(Strict):
    """``cuda``: the CUDA major the build is for (x86_64 builds all name one); ``doca_ofed``: the DOCA-OFED
    release of a ``doca_ofed`` build, or None for an ``mlnx_ofed`` build."""

    version: Version
    cuda: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")] | None = None
    doca_ofed: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+$")] | None = None
    download: Download


class Components(Strict):
    nvidia_driver: NvidiaDriver | None = None
    fabric_manager: FabricManager | None = None
    cuda: Cuda | None = None
    cudnn: Cudnn | None = None
    nccl: Nccl | None = None
    nccl_tests: DownloadedTool | None = None
    container_toolkit: Pinned | None = None
    doca_ofed: DocaOfed | None = None
    hpcx: Hpcx | None = None
    openmpi: DownloadedTool | None = None
    dcgm: Pinned | None = None
    dcgm_exporter: DcgmExporter | None = None
    node_exporter: DownloadedTool | None = None
    enroot: Enroot | None = None
    pyxis: Pyxis | None = None
    rocm: FabricManager | None = None
    rccl: FabricManager | None = None


# ---------------------------------------------------------------- gallery


class Identifier(Strict):
    publisher: str
    offer: str
    sku: str


class Features(Strict):
    accelerated_networking: StrictBool = True
    disk_controller_types: list[Literal["SCSI", "NVMe"]] = ["SCSI", "NVMe"]
    security_type: Literal["Standard", "TrustedLaunchSupported", "TrustedLaunch"] = "Standard"


class TargetRegion(Strict):
    name: str
    replicas: Annotated[int, Field(strict=True)] = 1
    storage_account_type: StorageAccountType | None = None


class Staging(Strict):
    exclude_from_latest: StrictBool = True


class Gallery(Strict):
    resource_group: str
    gallery: str
    definition: str
    identifier: Identifier
    hyper_v_generation: Literal["V1", "V2"] = "V2"
    architecture: Literal["x64", "Arm64"] = "x64"
    features: Features = Features()
    target_regions: list[TargetRegion]
    storage_account_type: StorageAccountType = StorageAccountType.standard_lrs
    replication_mode: Literal["Full", "Shallow"] = "Full"
    end_of_life_days: Annotated[int, Field(ge=1, le=3650)] = 365
    end_of_life_date: dt.date | None = None
    staging: Staging = Staging()


# ---------------------------------------------------------------- tests


class Tests(Strict):
    suites: list[Literal["static", "hardware"]] = ["static", "hardware"]
    extra_checks: list[str] = []


# ---------------------------------------------------------------- image


class Image(Strict):
    """A fully resolved (inheritance applied) catalog image."""

    name: Name
    description: str
    abstract: StrictBool = False
    extends: str | None = None
    os: OS
    purpose: Purpose
    kind: Kind
    base: Base
    target_skus: list[str] = Field(min_length=1)
    build: BuildSettings
    components: Components = Components()
    gallery: Gallery
    tests: Tests = Tests()


class PartialImage(BaseModel):
    """Abstract images are only checked for the keys they set."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Name
    description: str | None = None
    abstract: StrictBool = True
    extends: str | None = None
    os: OS | None = None
    purpose: Purpose | None = None
    kind: Kind | None = None
    base: dict | None = None
    target_skus: list[str] | None = None
    build: dict | None = None
    components: dict | None = None
    gallery: dict | None = None
    tests: dict | None = None


# ---------------------------------------------------------------- SKU table


class InfiniBand(Strict):
    ports: Annotated[int, Field(ge=1)]
    rate_gbps: Annotated[int, Field(ge=1)]


class Sku(Strict):
    """Hardware facts and expectations for one Azure VM size."""

    category: Literal["gpu", "memory-optimized", "compute-optimized", "general-purpose"]
    vcpus: Annotated[int, Field(ge=1)]
    memory_gib: Annotated[int, Field(ge=1)]
    gpu_vendor: Literal["nvidia", "amd"] | None = None
    gpu_count: Annotated[int, Field(ge=0)] = 0
    gpu_model: str | None = None
    gpu_architecture: Literal["turing", "ampere", "ada", "hopper", "blackwell", "cdna3"] | None = None
    gpu_memory_gib: Annotated[int, Field(ge=0)] = 0
    nvswitch: StrictBool = False
    infiniband: InfiniBand | None = None
    allreduce_busbw_gbps: Annotated[float, Field(gt=0)] | None = None
    # Azure's NCCL topology family of the size: its file is /opt/microsoft/<family>-topo.xml where the image
    # carries it (ubuntu-hpc does; Azure/azhpc-images components/setup_sku_customizations.sh:27-36@67a1b094eeed).
    topology_family: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$")] | None = None
    accelerated_networking: StrictBool = True
    local_nvme_disks: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _gpu_facts(self) -> Sku:
        if self.gpu_count and not (self.gpu_vendor and self.gpu_model and self.gpu_architecture):
            raise ValueError("a GPU size needs gpu_vendor, gpu_model and gpu_architecture")
        if not self.gpu_count and (self.gpu_vendor or self.nvswitch):
            raise ValueError("gpu_vendor/nvswitch set on a size with gpu_count 0")
        return self
