"""The public feed table: the vendors' apt repositories and release downloads, and how a feed setting maps them.

A feed setting is ``upstream`` (the vendors' own URLs), a mirror base URL that keeps the vendors' layout under
``<base>/<host>/<path>`` (the layout apt-mirror and aptly produce), or ``stand-in`` (the local test feed, which
uses the mirror layout under its own root).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from builder.errors import InputError
from builder.stack.packages import Package

# Per-OS names the vendor repositories use.
CUDA_DISTRO = {"ubuntu2204": "ubuntu2204", "ubuntu2404": "ubuntu2404", "debian12": "debian12"}
DOCA_DISTRO = {"ubuntu2204": "ubuntu22.04", "ubuntu2404": "ubuntu24.04", "debian12": "debian12"}
# ROCm publishes Ubuntu suites only; Debian 12 uses the jammy packages (AMD's documented route).
ROCM_SUITE = {"ubuntu2204": "jammy", "ubuntu2404": "noble", "debian12": "jammy"}
OSES = tuple(CUDA_DISTRO)


@dataclass(frozen=True)
class FeedSpec:
    """One vendor apt repository: URL templates (``{cuda_distro}``, ``{doca_version}`` ...), suite, components."""

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
DEB_FEEDS = ("enroot",)


def mirror_url(url: str, package_feed: str) -> str:
    """``url`` as served by ``package_feed``: unchanged upstream, else ``<base>/<host>/<path>``."""
    if package_feed == "upstream":
        return url
    parts = urlsplit(url)
    return f"{package_feed.rstrip('/')}/{parts.netloc}{parts.path}"


def check_feed(feed: str) -> None:
    """InputError unless ``feed`` is ``upstream``, ``stand-in`` or a mirror base URL."""
    if feed in ("upstream", "stand-in"):
        return
    scheme = urlsplit(feed).scheme
    if scheme not in ("http", "https", "file") or (not urlsplit(feed).path and scheme == "file"):
        raise InputError(f"invalid value {feed!r}: expected upstream, stand-in or a mirror base URL "
                         "(http://, https:// or file://)", field="--feed")


def path_markers() -> dict[str, str]:
    """The path prefix of each vendor apt repository; mirrors keep that layout, so it identifies the feed."""
    return {name: urlsplit(spec.repo).path.split("{")[0] for name, spec in FEEDS.items()}


def apt_feeds(components: dict[str, Any], packages: dict[str, list[Package]], os_name: str,
              base: str) -> dict[str, Any]:
    """The feeds the pinned ``packages`` come from, as the playbook configures them (``builder_feeds``)."""
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
        url = mirror_url(spec.repo.format(**context), base)
        feeds[name] = {
            "kind": "apt",
            "url": url,
            "key_url": mirror_url(spec.key.format(**context), base),
            "keyring": f"/etc/apt/keyrings/builder-{name}.asc",
            "suite": spec.suite.format(**context),
            "components": list(spec.components),
            "pin_origin": urlsplit(url).hostname if spec.pin_origin else None,
        }
    return feeds


def downloads(components: dict[str, Any], base: str, overrides: dict[str, dict] | None = None) -> dict[str, Any]:
    """``component -> {url, sha256, filename}`` of every pinned download, as ``base`` serves it; ``overrides``
    (upstream URL -> ``{url, sha256}``) replace an entry, as the stand-in feed does with its own tarballs."""
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
