"""Stack validation rules. Each rule names the image, the field and the fix."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterator

from builder.catalog import reference_data as ref
from builder.catalog.loader import Catalog, CatalogImage
from builder.catalog.schema import Image, Kind, Purpose, Sku
from builder.errors import Problem
from builder.versions import at_least, major_minor, parse
from builder.yamlio import shown

Rule = Callable[[CatalogImage, Image, Catalog], Iterator[Problem]]
RULES: list[tuple[str, str, Rule]] = []

# Azure's naming rules, from Microsoft Learn "Naming rules and restrictions for Azure resources"
# (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules; read from
# MicrosoftDocs/azure-docs articles/azure-resource-manager/management/resource-name-rules.md). ASCII only
# (re.ASCII, explicit classes, fullmatch so no trailing newline slips through).
# Microsoft.Compute/galleries: 1-80, alphanumerics, underscores and periods, start and end with alphanumeric
# (underscores: MicrosoftDocs/azure-docs pull 128302, from the portal's validation; the shipped catalog's gallery
# is ai_images).
GALLERY_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.]{0,78}[A-Za-z0-9])?", re.ASCII)
# Microsoft.Compute/galleries/images: 1-80, alphanumerics, underscores, hyphens and periods, start and end with
# alphanumeric.
DEFINITION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9])?", re.ASCII)
# Microsoft.Resources/resourcegroups: 1-90, underscores, hyphens, periods, parentheses and letters or digits
# (Char.IsLetterOrDigit), not ending with a period. We accept the ASCII letters and digits of that set only.
RESOURCE_GROUP_NAME = re.compile(r"[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]", re.ASCII)
# An image definition's publisher/offer/sku: the naming-rules article has no row for them; we hold them to the
# galleries/images row above (this project's choice, a subset of what Azure may accept).
IDENTIFIER_PART = DEFINITION_NAME
# Azure publishes no maximum regional replica count that we found; 100 is this project's bound.
MAX_REPLICAS = 100
NVIDIA_ONLY = ("nvidia_driver", "fabric_manager", "cuda", "cudnn", "nccl", "nccl_tests", "container_toolkit",
               "dcgm", "dcgm_exporter")
AMD_ONLY = ("rocm", "rccl")
FABRIC = ("doca_ofed", "hpcx")
OPEN_MODULES_REQUIRED = ("hopper", "blackwell")


def rule(rule_id: str, summary: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES.append((rule_id, summary, fn))
        return fn

    return register


def target_skus(image: Image, catalog: Catalog) -> list[tuple[str, Sku]]:
    return [(name, catalog.skus[name]) for name in image.target_skus if name in catalog.skus]


@rule("sku-known", "target SKUs and the build VM size exist in images/skus.yaml")
def _sku_known(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    for index, name in enumerate(m.target_skus):
        if name not in cat.skus:
            hint = difflib.get_close_matches(name, list(cat.skus), n=1)
            tip = f"did you mean '{hint[0]}'?" if hint else "add it to images/skus.yaml"
            yield img.problem(("target_skus", index), f"unknown SKU '{name}'; {tip}")
    if m.build.vm_size not in cat.skus:
        hint = difflib.get_close_matches(m.build.vm_size, list(cat.skus), n=1)
        tip = f"did you mean '{hint[0]}'?" if hint else "add it to images/skus.yaml"
        yield img.problem(("build", "vm_size"), f"unknown VM size '{m.build.vm_size}'; {tip}")


@rule("cuda-driver", "the CUDA toolkit's minimum driver is met (or its major's minor-version floor, on opt-in)")
def _cuda_driver(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    c = m.components
    if not c.cuda:
        return
    mm = major_minor(c.cuda.version)
    minimum = ref.cuda_min_driver(mm)
    if minimum is None:
        yield img.problem(("components", "cuda", "version"),
                          f"CUDA {mm} is not in the compatibility table (known: {', '.join(ref.known_cuda())}); "
                          "add its minimum driver to builder/data/cuda_driver.yaml")
        return
    if not c.nvidia_driver:
        yield img.problem(("components", "cuda"), "CUDA needs components.nvidia_driver; add a driver pin")
        return
    if c.cuda.minor_version_compat:
        floor = ref.cuda_minor_compat_driver(mm.split(".")[0]) or minimum
        if not at_least(c.nvidia_driver.version, floor):
            yield img.problem(("components", "nvidia_driver", "version"),
                              f"driver {c.nvidia_driver.version} is below {floor}, the floor for CUDA "
                              f"{mm.split('.')[0]}.x minor-version compatibility; raise the driver")
    elif not at_least(c.nvidia_driver.version, minimum):
        yield img.problem(("components", "nvidia_driver", "version"),
                          f"CUDA {c.cuda.version} needs driver >= {minimum}, found {c.nvidia_driver.version}; "
                          "raise the driver or set components.cuda.minor_version_compat: true")


@rule("driver-branch", "driver version belongs to its branch; branch not past end of life (warn within 90 days)")
def _driver_branch(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    drv = m.components.nvidia_driver
    if not drv:
        return
    if str(parse(drv.version)[0]) != drv.branch:
        yield img.problem(("components", "nvidia_driver", "version"),
                          f"version {drv.version} is not on branch R{drv.branch}; pick a {drv.branch}.x driver")
    info = ref.driver_branch(drv.branch)
    if info is None:
        yield img.problem(("components", "nvidia_driver", "branch"),
                          f"unknown driver branch R{drv.branch}; add it to builder/data/driver_branches.yaml")
        return
    eol = info["end_of_life"]
    today = ref.today()
    if today > eol:
        yield img.problem(("components", "nvidia_driver", "branch"),
                          f"driver branch R{drv.branch} reached end of life on {eol}; move to a supported "
                          "branch (R580 LTSB)")
    elif today >= eol - dt.timedelta(days=ref.eol_warn_days()):
        yield img.problem(("components", "nvidia_driver", "branch"),
                          f"driver branch R{drv.branch} reaches end of life on {eol}; plan the move", "warning")


@rule("fabric-manager", "Fabric Manager equals the driver version; required on NVSwitch SKUs, refused elsewhere")
def _fabric_manager(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    c = m.components
    nvswitch = [name for name, sku in target_skus(m, cat) if sku.nvswitch]
    if c.fabric_manager and not nvswitch:
        yield img.problem(("components", "fabric_manager"),
                          "Fabric Manager is only for NVSwitch SKUs and no target SKU has NVSwitch; remove it")
    if nvswitch and m.kind == Kind.gpu_nvidia and not c.fabric_manager:
        yield img.problem(("components",), f"target SKU {nvswitch[0]} has NVSwitch: add components.fabric_manager "
                                          "with the driver's exact version")
    if c.fabric_manager and c.nvidia_driver and c.fabric_manager.version != c.nvidia_driver.version:
        yield img.problem(("components", "fabric_manager", "version"),
                          f"Fabric Manager {c.fabric_manager.version} must equal the driver version "
                          f"{c.nvidia_driver.version} exactly")


@rule("cuda-libraries", "cuDNN and NCCL are built for the toolkit's CUDA major; NCCL's +cudaX.Y not newer")
def _cuda_libraries(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    c = m.components
    for lib in ("cudnn", "nccl"):
        if getattr(c, lib) and not c.cuda:
            yield img.problem(("components", lib), f"{lib} needs components.cuda")
    if not c.cuda:
        return
    major, minor = parse(c.cuda.version)[:2]
    if c.cudnn and int(c.cudnn.cuda) != major:
        yield img.problem(("components", "cudnn", "cuda"),
                          f"cuDNN build for CUDA {c.cudnn.cuda} does not match the toolkit's major {major}; "
                          f"use the cuda-{major} build")
    if c.nccl:
        built = re.search(r"\+cuda([0-9]+)\.([0-9]+)\Z", c.nccl.version, re.ASCII)
        nccl_major, nccl_minor = int(built.group(1)), int(built.group(2))
        if nccl_major != major:
            yield img.problem(("components", "nccl", "version"),
                              f"NCCL {c.nccl.version} is built for CUDA {nccl_major}, the toolkit is {major}.x; "
                              f"use a +cuda{major}.N build")
        elif nccl_minor > minor:
            yield img.problem(("components", "nccl", "version"),
                              f"NCCL {c.nccl.version} is built for a newer CUDA ({nccl_major}.{nccl_minor}) than "
                              f"the toolkit {major}.{minor}; use a build <= +cuda{major}.{minor}")


@rule("dcgm-exporter", "dcgm-exporter comes with DCGM, paired with the DCGM release its tag names (warning)")
def _dcgm_exporter(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    c = m.components
    if not c.dcgm_exporter:
        return
    if not c.dcgm:
        yield img.problem(("components", "dcgm_exporter"), "dcgm-exporter reads DCGM: add components.dcgm")
        return
    # "Run DCGM Exporter with the DCGM version paired with that exporter release. Mismatched combinations might
    # function ..." (docs.nvidia.com/datacenter/dcgm/latest/installation/install-dcgm-exporter.html); the tag
    # <dcgm>-<exporter> names the pair.
    paired = c.dcgm_exporter.version.split("-", 1)[0]
    dcgm = c.dcgm.version.split(":")[-1].split("-")[0]
    if paired != dcgm:
        yield img.problem(("components", "dcgm_exporter", "version"),
                          f"dcgm-exporter {c.dcgm_exporter.version} is paired with DCGM {paired}, the image has "
                          f"DCGM {dcgm}; NVIDIA supports only the paired release (use a {dcgm}-* tag when one "
                          "exists)", "warning")


@rule("hpcx", "HPC-X matches the CUDA major and the DOCA-OFED release")
def _hpcx(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    c = m.components
    if not c.hpcx:
        return
    if c.cuda and (c.hpcx.cuda is None or int(c.hpcx.cuda) != parse(c.cuda.version)[0]):
        yield img.problem(("components", "hpcx", "cuda"),
                          f"HPC-X build for CUDA {c.hpcx.cuda} does not match the toolkit's major "
                          f"{parse(c.cuda.version)[0]}; use the cuda{parse(c.cuda.version)[0]} tarball")
    # An image without CUDA may carry a CUDA build: no x86_64 HPC-X without -cudaNN is published, and Azure's
    # MI300X image uses the cuda12 build (Azure/azhpc-images versions.json@8e9d055fb9e1 hpcx_amd).
    if not c.doca_ofed:
        yield img.problem(("components", "hpcx"), "HPC-X needs components.doca_ofed")
    elif c.hpcx.doca_ofed is not None and major_minor(c.doca_ofed.version) != c.hpcx.doca_ofed:
        yield img.problem(("components", "hpcx", "doca_ofed"),
                          f"HPC-X is built for DOCA-OFED {c.hpcx.doca_ofed}, the image has "
                          f"{c.doca_ofed.version}; align them")
    expected = hpcx_tarball(c.hpcx.version, c.hpcx.doca_ofed is not None, m.os.value, c.hpcx.cuda)
    found = c.hpcx.download.url.rsplit("/", 1)[-1]
    if found != expected:
        yield img.problem(("components", "hpcx", "download", "url"),
                          f"the tarball {found} is not the build this entry describes: expected {expected} "
                          "(hpcx-v<version>-gcc-<doca_ofed|mlnx_ofed>-<os>-cuda<N>-x86_64.tbz)")


def hpcx_tarball(version: str, doca: bool, os_name: str, cuda: str | None) -> str:
    """The vendor's file name of an x86_64 HPC-X build (Azure/azhpc-images versions.json@8e9d055fb9e1 hpcx,
    hpcx_amd: e.g. hpcx-v2.25.1-gcc-doca_ofed-ubuntu22.04-cuda13-x86_64.tbz)."""
    distro = {"ubuntu2204": "ubuntu22.04", "ubuntu2404": "ubuntu24.04"}.get(os_name, os_name)
    flavour = "doca_ofed" if doca else "mlnx_ofed"
    return f"hpcx-v{version}-gcc-{flavour}-{distro}{f'-cuda{cuda}' if cuda else ''}-x86_64.tbz"


@rule("kind", "AMD images carry ROCm not CUDA; CPU images carry no GPU stack; SKUs match the kind")
def _kind(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    c = m.components
    present = [name for name in type(c).model_fields if getattr(c, name) is not None]
    forbidden = {Kind.gpu_amd: NVIDIA_ONLY, Kind.cpu: NVIDIA_ONLY + AMD_ONLY, Kind.gpu_nvidia: AMD_ONLY}[m.kind]
    for name in present:
        if name in forbidden:
            yield img.problem(("components", name), f"{name} does not belong on a {m.kind.value} image; remove it")
    if m.kind == Kind.gpu_nvidia and not c.nvidia_driver:
        yield img.problem(("components",), "a gpu-nvidia image needs components.nvidia_driver")
    if m.kind == Kind.gpu_amd and not c.rocm:
        yield img.problem(("components",), "a gpu-amd image needs components.rocm")
    want = {Kind.gpu_nvidia: "nvidia", Kind.gpu_amd: "amd", Kind.cpu: None}[m.kind]
    for index, name in enumerate(m.target_skus):
        sku = cat.skus.get(name)
        if sku and sku.gpu_vendor != want:
            found = f"{sku.gpu_vendor} GPUs" if sku.gpu_vendor else "no GPU"
            yield img.problem(("target_skus", index), f"{name} has {found}; a {m.kind.value} image cannot target it")


@rule("fabric-stack", "InfiniBand/MPI stack only when a target SKU has InfiniBand")
def _fabric_stack(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    if any(sku.infiniband for _, sku in target_skus(m, cat)):
        return
    for name in FABRIC:
        if getattr(m.components, name) is not None:
            yield img.problem(("components", name), f"{name} needs an InfiniBand target SKU; none has one: remove it")


@rule("open-modules", "open kernel modules on Hopper and newer GPUs")
def _open_modules(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    drv = m.components.nvidia_driver
    if not drv or drv.flavor == "open":
        return
    for name, sku in target_skus(m, cat):
        if sku.gpu_architecture in OPEN_MODULES_REQUIRED:
            yield img.problem(("components", "nvidia_driver", "flavor"),
                              f"{name} ({sku.gpu_architecture}) needs the open kernel modules; set flavor: open")
            return


@rule("purpose", "inference images avoid InfiniBand SKUs; CPU training on memory-, inference on compute-optimized")
def _purpose(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    want_cpu = {Purpose.train: "memory-optimized", Purpose.infer: "compute-optimized"}[m.purpose]
    for index, name in enumerate(m.target_skus):
        sku = cat.skus.get(name)
        if sku is None:
            continue
        if m.purpose == Purpose.infer and sku.infiniband:
            yield img.problem(("target_skus", index), f"{name} has InfiniBand; inference images must not target "
                                                      "InfiniBand SKUs (use an NC size)")
        if m.kind == Kind.cpu and sku.category != want_cpu:
            yield img.problem(("target_skus", index), f"{name} is {sku.category}; CPU {m.purpose.value} images "
                                                      f"target {want_cpu} sizes")


# Components whose kernel modules DKMS builds on the build VM (each package and its source): Secure Boot then
# refuses them, since DKMS signs with a key made there that no deployed VM has enrolled (dkms 3.0.10
# prepare_signing; builder.verify.probe.MOK_CERTIFICATES).
DKMS_MODULES = {
    "nvidia_driver": ("nvidia-dkms-{branch}-open", "the CUDA repository's, builder/data/feeds/cuda-ubuntu2404.yaml"),
    "doca_ofed": ("mlnx-ofed-kernel-dkms", "Mellanox/doca-driver-build Ubuntu_Dockerfile:104-109,153@445df1e8b7db"),
    "rocm": ("amdgpu-dkms", "builder/data/feeds/amdgpu-ubuntu2204.yaml"),
}
SECURE_BOOT_FIX = ("set gallery.features.security_type to Standard (TrustedLaunchSupported images must then be "
                   "deployed with Secure Boot off), or leave the component out")
# Ubuntu's prebuilt modules, signed by Canonical's kernel key (Azure/az-cgpu-onboarding
# src/step-1-install-gpu-driver.sh@83b8f307f930 installs them with the userspace below on linux-azure).
SIGNED_USERSPACE = "nvidia-driver-{branch}-server-open"
SIGNED_MODULES = "linux-modules-nvidia-{branch}-server-open-azure"
SIGNED_OSES = ("ubuntu2204", "ubuntu2404")  # Ubuntu's archive only


def _signed_prebuilt(img: CatalogImage, m: Image) -> Iterator[Problem]:
    """``modules: signed-prebuilt`` needs Ubuntu, the open flavour and recorded packages (builder/data/feeds/
    ubuntu-<os>.yaml): the userspace at the catalog's release and the linux-azure module package."""
    from builder.stack.records import for_package

    drv = m.components.nvidia_driver
    field = ("components", "nvidia_driver", "modules")
    if m.os.value not in SIGNED_OSES:
        yield img.problem(field, f"signed-prebuilt modules come from Ubuntu's archive; {m.os.value} has none: use "
                          f"an Ubuntu base ({', '.join(SIGNED_OSES)}) or modules: dkms")
        return
    if drv.flavor != "open":
        yield img.problem(field, "Ubuntu's prebuilt signed modules are the open flavour "
                          f"({SIGNED_MODULES.format(branch=drv.branch)}): set flavor: open")
        return
    userspace, modules = SIGNED_USERSPACE.format(branch=drv.branch), SIGNED_MODULES.format(branch=drv.branch)
    missing = []
    if not any(r.upstream == drv.version for r in for_package("ubuntu", m.os.value, userspace)):
        missing.append(f"{userspace} {drv.version}-*")
    if not for_package("ubuntu", m.os.value, modules):
        missing.append(modules)
    if missing:
        yield img.problem(field, f"no recorded {' or '.join(missing)} for {m.os.value} in Ubuntu's archive: Ubuntu "
                          f"builds its signed modules against its own driver release, which must be the catalog's "
                          f"version; add the records with their source to builder/data/feeds/ubuntu-{m.os.value}.yaml "
                          "(docs/recorded-feeds.md), or pin a version recorded there")


@rule("secure-boot", "a TrustedLaunch image carries no DKMS-built kernel module (a warning on TrustedLaunchSupported)")
def _secure_boot(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    drv = m.components.nvidia_driver
    if drv is not None and drv.modules == "signed-prebuilt":
        yield from _signed_prebuilt(img, m)
    security = m.gallery.features.security_type
    if security == "Standard":
        return
    severity = "error" if security == "TrustedLaunch" else "warning"
    for name, (package, source) in DKMS_MODULES.items():
        component = getattr(m.components, name, None)
        if component is None or (name == "nvidia_driver" and component.modules == "signed-prebuilt"):
            continue
        package = package.format(branch=getattr(component, "branch", None) or "<branch>")
        fix = SECURE_BOOT_FIX
        if name == "nvidia_driver":
            fix = (f"set components.nvidia_driver.modules: signed-prebuilt (Ubuntu's "
                   f"{SIGNED_MODULES.format(branch=component.branch)}, signed by Canonical; docs/secure-boot.md), "
                   f"or {SECURE_BOOT_FIX}")
        yield img.problem(("components", name), f"{name} builds its kernel modules with DKMS ({package}, {source}); "
                          f"Secure Boot ({security}) refuses modules signed on the build VM: {fix}", severity)


@rule("build-vm", "the build runs on a size without GPUs (hardware validation runs on the target sizes)")
def _build_vm(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    sku = cat.skus.get(m.build.vm_size)
    if sku is not None and sku.category == "gpu":
        yield img.problem(("build", "vm_size"), f"{m.build.vm_size} is a GPU size; no build step needs a GPU "
                          "(hardware checks run on the target sizes): use a general-purpose size such as the "
                          "catalog's default in base-dsvm.yaml")


@rule("gallery", "gallery/definition names, known regions, replica counts >= 1, EOL in the future")
def _gallery(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    g = m.gallery
    yield from _gallery_names(img, m)
    if not g.target_regions:
        yield img.problem(("gallery", "target_regions"), "at least one target region is required")
    seen: set[str] = set()
    for index, region in enumerate(g.target_regions):
        short = ref.normalise_region(region.name)
        if short is None:
            hint = difflib.get_close_matches(region.name.lower(), list(ref.regions()), n=1)
            tip = f"; did you mean '{hint[0]}'?" if hint else ""
            yield img.problem(("gallery", "target_regions", index, "name"), f"unknown region '{region.name}'{tip}")
        elif short in seen:
            yield img.problem(("gallery", "target_regions", index, "name"), f"region '{region.name}' listed twice")
        seen.add(short or region.name)
        if not 1 <= region.replicas <= MAX_REPLICAS:
            yield img.problem(("gallery", "target_regions", index, "replicas"),
                              f"replica count must be >= 1 and <= {MAX_REPLICAS}, found {region.replicas}")
    if ref.normalise_region(m.build.region) is None:
        yield img.problem(("build", "region"), f"unknown region '{m.build.region}'")
    if g.end_of_life_date and g.end_of_life_date <= ref.today():
        yield img.problem(("gallery", "end_of_life_date"), f"end of life {g.end_of_life_date} is in the past")


def _gallery_names(img: CatalogImage, m: Image) -> Iterator[Problem]:
    """Resource group, gallery, definition and identifier names follow Azure's naming rules (see above)."""
    g = m.gallery
    checks = [
        (("gallery", "resource_group"), g.resource_group, RESOURCE_GROUP_NAME,
         "resource group", "1-90 letters, digits, '_', '-', '.', '(' or ')', not ending with '.'"),
        (("gallery", "gallery"), g.gallery, GALLERY_NAME,
         "gallery", "1-80 letters, digits, '_' or '.', starting and ending with a letter or digit"),
        (("gallery", "definition"), g.definition, DEFINITION_NAME,
         "definition", "1-80 letters, digits, '_', '-' or '.', starting and ending with a letter or digit"),
    ]
    checks += [(("gallery", "identifier", part), getattr(g.identifier, part), IDENTIFIER_PART, f"identifier {part}",
                "1-80 letters, digits, '_', '-' or '.', starting and ending with a letter or digit")
               for part in ("publisher", "offer", "sku")]
    for path, value, pattern, what, rule_text in checks:
        if not pattern.fullmatch(value):
            yield img.problem(path, f"{what} name {shown(value)} is invalid: {rule_text} (Azure naming rules)")
    network = m.build.virtual_network
    if network and not RESOURCE_GROUP_NAME.fullmatch(network.resource_group):
        yield img.problem(("build", "virtual_network", "resource_group"),
                          f"resource group name {shown(network.resource_group)} is invalid: 1-90 letters, digits, "
                          "'_', '-', '.', '(' or ')', not ending with '.' (Azure naming rules)")


@rule("base", "a catalog base image exists, is buildable and runs the same OS")
def _base(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    if m.base.image is None:
        return
    parent = cat.images.get(m.base.image)
    if parent is None:
        hint = difflib.get_close_matches(m.base.image, list(cat.images), n=1)
        tip = f"; did you mean '{hint[0]}'?" if hint else ""
        yield img.problem(("base", "image"), f"unknown base image '{m.base.image}'{tip}")
    elif parent.abstract:
        yield img.problem(("base", "image"), f"base image '{m.base.image}' is abstract; pick a buildable image")
    elif parent.model and parent.model.os != m.os:
        yield img.problem(("base", "image"), f"base image '{m.base.image}' runs {parent.model.os.value}, this image "
                                             f"{m.os.value}")
    elif m.base.image == m.name:
        yield img.problem(("base", "image"), "an image cannot be its own base")


def check_image(image: CatalogImage, catalog: Catalog) -> list[Problem]:
    if image.model is None or image.abstract:
        return []
    return [p for _, _, fn in RULES for p in fn(image, image.model, catalog)]


def check_catalog(catalog: Catalog, names: list[str] | None = None) -> list[Problem]:
    images = [catalog.get(n) for n in names] if names else catalog.buildable()
    return [p for image in images for p in check_image(image, catalog)]


VERSION_NAME = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)", re.ASCII)  # fullmatch: no Unicode digits, no "\n"


def check_version_name(version: str) -> str | None:
    """None when ``version`` is a valid gallery version (Major.Minor.Patch, each 0..2^31-1); else the reason."""
    match = VERSION_NAME.fullmatch(version) if isinstance(version, str) else None
    if not match:
        return f"{shown(version)} is not Major.Minor.Patch (for example 2026.1129.0)"
    if any(int(part) > 2_147_483_647 for part in match.groups()):
        return f"{shown(version)} has a part above 2,147,483,647"
    return None


@rule("pins-recorded", "pinned package versions agree with the recorded repository facts and the base")
def _pins_recorded(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    """Refuse a pin the records contradict (the repository carries that release only under other versions),
    unless the base image carries exactly that version; name pins no record confirms (a warning: unknown is not
    absent). Sources: builder/data/feeds, builder/data/bases."""
    from builder.stack import from_image
    from builder.stack.bases import profile_for
    from builder.stack.records import for_package, upstream_of

    market = m.base.marketplace
    profile = profile_for(market.publisher, market.offer, market.sku) if market else None
    unconfirmed = []
    for component, group in from_image(m).packages.items():
        for pkg in group:
            if pkg.feed == "enroot":  # release .deb files: no index, each needs its own recorded sha256
                if not (m.components.enroot and pkg.name in m.components.enroot.debs):
                    unconfirmed.append(f"{pkg.name}={pkg.version} (.deb sha256: none published)")
                continue
            found = for_package(pkg.feed, m.os.value, pkg.name)
            if pkg.exact and any(r.version == pkg.version for r in found):
                continue
            carried = profile.package(pkg.name) if profile else None
            if carried and carried.get("version") and pkg.matches(str(carried["version"])):
                continue
            others = [] if not pkg.exact else [r for r in found if r.upstream == upstream_of(pkg.version)]
            if others:
                versions = ", ".join(r.version for r in others)
                where = f"; the base {market.offer}:{market.sku} does not carry it either" if profile else ""
                yield img.problem(("components", component, "version"),
                                  f"the {pkg.feed} repository for {m.os.value} carries {pkg.name} "
                                  f"{upstream_of(pkg.version)} as {versions}, not {pkg.version}{where} "
                                  f"(recorded from: {others[0].source.split(';')[0][:200]}); pin a version it carries")
            else:
                unconfirmed.append(f"{pkg.name}={pkg.version}")
    if unconfirmed:
        yield img.problem(("components",), f"no recorded fact confirms {len(unconfirmed)} pin(s) for {m.os.value}: "
                          f"{', '.join(unconfirmed[:8])}{' ...' if len(unconfirmed) > 8 else ''} (record them with "
                          "their source in builder/data/feeds, docs/recorded-feeds.md)", severity="warning")


@rule("base-downgrade", "no pin is older than the version the base image already carries")
def _base_downgrade(img: CatalogImage, m: Image, cat: Catalog) -> Iterator[Problem]:
    """A pin below what the base carries forces a downgrade on the real base (ubuntu-hpc 24.04 carries driver
    580.173.02 and DCGM 1:4.6.0-1). Compared per package: the pinned upstream version with the profile's
    (exact version where recorded, else its ``upstream``). Source: builder/data/bases."""
    from debian.debian_support import Version

    from builder.stack import from_image
    from builder.stack.bases import profile_for
    from builder.stack.records import upstream_of

    market = m.base.marketplace
    profile = profile_for(market.publisher, market.offer, market.sku) if market else None
    if profile is None:
        return
    for component, group in from_image(m).packages.items():
        for pkg in group:
            carried = profile.package(pkg.name)
            if not carried:
                continue
            if carried.get("version") and pkg.exact:
                older = Version(pkg.version) < Version(str(carried["version"]))
                has = str(carried["version"])
            elif carried.get("upstream") or carried.get("version"):
                has = str(carried.get("upstream") or upstream_of(str(carried["version"])))
                older = Version(upstream_of(pkg.version).replace("*", "0")) < Version(has)
            else:
                continue
            if older:
                yield img.problem(("components", component, "version"),
                                  f"{pkg.name} {pkg.version} would downgrade the base: {market.offer}:{market.sku} "
                                  f"carries {has} ({profile.cite(carried.get('source'))[:160]}); pin it or newer")
