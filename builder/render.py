"""Render the Ansible variables for one catalog image: everything ``ansible/image.yml`` needs.

The catalog is the only source: components and their pins, apt packages (``builder.packages``), SKU facts
(``images/skus.yaml``), package feeds and tarball downloads. Feeds derive from one ``package_feed`` setting:
``upstream`` (the vendors' repositories), a mirror base URL that keeps the vendors' layout under
``<base>/<host>/<path>`` (the layout apt-mirror and aptly produce), or ``stand-in`` (the local test feed).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from builder.errors import InputError
from builder.layers import FINAL_ROLES, LAYERS
from builder.packages import packages_for

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog
    from builder.standin import Feed

TARGETS = ("local", "azure")
VARS_FILE = "ansible-vars.yml"
DEFAULT_CACHE = Path("/var/tmp/builder-cache")

# Per-OS names the vendor repositories use.
CUDA_DISTRO = {"ubuntu2204": "ubuntu2204", "ubuntu2404": "ubuntu2404", "debian12": "debian12"}
DOCA_DISTRO = {"ubuntu2204": "ubuntu22.04", "ubuntu2404": "ubuntu24.04", "debian12": "debian12"}
# ROCm publishes Ubuntu suites only; Debian 12 uses the jammy packages (AMD's documented route).
ROCM_SUITE = {"ubuntu2204": "jammy", "ubuntu2404": "noble", "debian12": "jammy"}


@dataclass(frozen=True)
class FeedSpec:
    """One vendor apt repository: URL templates (``{distro}``, ``{version}`` ...), suite and components."""

    repo: str
    key: str
    suite: str = "/"  # "/" = a flat repository (CUDA, container toolkit, DOCA)
    components: tuple[str, ...] = ()
    pin_origin: str | None = None


FEEDS: dict[str, FeedSpec] = {
    "cuda": FeedSpec("https://developer.download.nvidia.com/compute/cuda/repos/{cuda_distro}/x86_64/",
                     "https://developer.download.nvidia.com/compute/cuda/repos/{cuda_distro}/x86_64/3bf863cc.pub"),
    "container-toolkit": FeedSpec("https://nvidia.github.io/libnvidia-container/stable/deb/amd64/",
                                  "https://nvidia.github.io/libnvidia-container/gpgkey"),
    "doca": FeedSpec("https://linux.mellanox.com/public/repo/doca/{doca_version}/{doca_distro}/x86_64/",
                     "https://linux.mellanox.com/public/repo/doca/GPG-KEY-Mellanox.pub"),
    "amdgpu": FeedSpec("https://repo.radeon.com/amdgpu/{rocm_version}/ubuntu", "https://repo.radeon.com/rocm/rocm.gpg.key",
                       "{rocm_suite}", ("main",), "repo.radeon.com"),
    "rocm": FeedSpec("https://repo.radeon.com/rocm/apt/{rocm_version}", "https://repo.radeon.com/rocm/rocm.gpg.key",
                     "{rocm_suite}", ("main",), "repo.radeon.com"),
}
# Enroot ships release .deb files, not an apt repository.
ENROOT_DEB = "https://github.com/NVIDIA/enroot/releases/download/v{upstream}/{name}_{version}_amd64.deb"


def mirror_url(url: str, package_feed: str) -> str:
    """``url`` as served by ``package_feed``: unchanged upstream, else ``<base>/<host>/<path>``."""
    if package_feed == "upstream":
        return url
    parts = urlsplit(url)
    return f"{package_feed.rstrip('/')}/{parts.netloc}{parts.path}"


def _check_feed(feed: str) -> None:
    if feed in ("upstream", "stand-in"):
        return
    scheme = urlsplit(feed).scheme
    if scheme not in ("http", "https", "file") or (not urlsplit(feed).path and scheme == "file"):
        raise InputError(f"invalid value {feed!r}: expected upstream, stand-in or a mirror base URL "
                         "(http://, https:// or file://)", field="--feed")


def _feeds(components: dict[str, Any], packages: dict[str, list], os_name: str, base: str) -> dict[str, Any]:
    used = {p.feed for group in packages.values() for p in group}
    context = {
        "cuda_distro": CUDA_DISTRO[os_name], "doca_distro": DOCA_DISTRO[os_name], "rocm_suite": ROCM_SUITE[os_name],
        "doca_version": components.get("doca_ofed", {}).get("version", ""),
        "rocm_version": components.get("rocm", {}).get("version", ""),
    }
    feeds: dict[str, Any] = {}
    for name in sorted(used):
        if name == "enroot":
            feeds[name] = {"kind": "deb", "debs": {
                p.name: mirror_url(ENROOT_DEB.format(upstream=p.version.split("-")[0], name=p.name,
                                                     version=p.version), base)
                for p in packages["enroot"]}}
            continue
        spec = FEEDS[name]
        feeds[name] = {
            "kind": "apt",
            "url": mirror_url(spec.repo.format(**context), base),
            "key_url": mirror_url(spec.key.format(**context), base),
            "keyring": f"/etc/apt/keyrings/builder-{name}.asc",
            "suite": spec.suite.format(**context),
            "components": list(spec.components),
            "pin_origin": urlsplit(mirror_url(spec.repo.format(**context), base)).hostname if spec.pin_origin else None,
        }
    return feeds


def _downloads(components: dict[str, Any], base: str, overrides: dict[str, dict] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in sorted(components.items()):
        download = spec.get("download")
        if not download:
            continue
        found = (overrides or {}).get(download["url"])
        entry = ({"url": found["url"], "sha256": found["sha256"]} if found
                 else {"url": mirror_url(download["url"], base), "sha256": download["sha256"]})
        entry["filename"] = Path(urlsplit(entry["url"]).path).name
        out[name] = entry
    return out


def _sku_facts(catalog: Catalog, skus: list[str]) -> dict[str, Any]:
    facts = {}
    for sku in skus:
        model = catalog.skus.get(sku)
        if model is None:
            raise InputError(f"target SKU '{sku}' is not in skus.yaml", file=catalog.root / "skus.yaml", field=sku)
        facts[sku] = model.model_dump(mode="json", exclude_none=True)
    return facts


def git_commit(repo: Path | None = None) -> str:
    """The checkout's commit (``unknown`` outside a git checkout)."""
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=repo or Path(__file__).resolve().parent.parent)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def ansible_vars(catalog: Catalog, image_name: str, target: str = "local", feed: str | Feed = "upstream",
                 os_override: str | None = None, *, image_version: str = "0.0.0-dev", commit: str | None = None,
                 cache_dir: Path | None = None) -> dict[str, Any]:
    """Everything the playbook needs for ``image_name``, derived from the catalog."""
    if target not in TARGETS:
        raise InputError(f"invalid value {target!r}: expected one of {', '.join(TARGETS)}", field="--target")
    image = catalog.model(image_name)
    os_name = os_override or image.os.value
    if os_name not in CUDA_DISTRO:
        raise InputError(f"unknown OS '{os_name}' (known: {', '.join(CUDA_DISTRO)})", field="os")
    overrides = None
    if not isinstance(feed, str):
        base, overrides, feed_name = feed.url, feed.downloads, "stand-in"
    elif feed == "stand-in":
        from builder.standin import ensure_feed

        standin = ensure_feed(catalog, cache_dir or DEFAULT_CACHE)
        base, overrides, feed_name = standin.url, standin.downloads, "stand-in"
    else:
        _check_feed(feed)
        base, feed_name = feed, feed
    components = image.components.model_dump(mode="json", exclude_none=True)
    packages = packages_for(components)
    skus = _sku_facts(catalog, image.target_skus)
    vendors = sorted({f["gpu_vendor"] for f in skus.values() if f.get("gpu_vendor")})
    return {
        "builder_image": image.name,
        "builder_image_version": image_version,
        "builder_git_commit": commit or git_commit(),
        "builder_target": target,
        "builder_os": os_name,
        "builder_catalog_os": image.os.value,
        "builder_kind": image.kind.value,
        "builder_purpose": image.purpose.value,
        "builder_components": components,
        "builder_packages": {name: [p.as_dict() for p in group] for name, group in packages.items()},
        "builder_target_skus": list(image.target_skus),
        "builder_skus": skus,
        "builder_has_nvswitch": any(f.get("nvswitch") for f in skus.values()),
        "builder_has_infiniband": any(f.get("infiniband") for f in skus.values()),
        "builder_gpu_vendor": vendors[0] if len(vendors) == 1 else ("none" if not vendors else "mixed"),
        "package_feed": feed_name,
        "package_feed_base": base,
        "builder_feeds": _feeds(components, packages, os_name, base),
        "builder_downloads": _downloads(components, base, overrides),
        "builder_layers": {layer.name: list(layer.roles) for layer in LAYERS},
        "builder_final_roles": list(FINAL_ROLES),
    }


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def write_render(catalog: Catalog, image_name: str, target: str, out_dir: Path, feed: str | Feed = "upstream",
                 **options: Any) -> list[Path]:
    """Write the variables file (and Packer files for ``azure`` when that module exists) into ``out_dir``."""
    data = ansible_vars(catalog, image_name, target, feed, **options)
    out_dir.mkdir(parents=True, exist_ok=True)
    import yaml

    path = out_dir / VARS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Rendered by `builder render` from the catalog; do not edit.\n"
                   + yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False, width=200))
    tmp.replace(path)
    written = [path]
    if target == "azure" and _has_module("builder.packer.render"):
        from builder.packer.render import write_packer_files

        written += list(write_packer_files(catalog, image_name, out_dir) or [])
    return written
