"""``builder outdated``: which images need a rebuild.

- Marketplace bases: the newest marketplace image version (SDK ``virtual_machine_images.list`` in the image's
  build region) against the catalog's pinned version, or, for ``latest``, against the base version recorded on
  the image's current gallery version (tag ``builder.base_version``).
- Layered bases (``base.image``): the parent's current gallery version against the recorded base version; when
  none is recorded, a parent published after the image's current version means the image is behind.
- Components: each pinned apt package against the newest version of the same package in its feed's
  ``Packages`` index (same major version and same ``+`` build flavour, e.g. ``+cuda13.0``).
"""

from __future__ import annotations

import gzip
import lzma
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.catalog.loader import Catalog
from builder.catalog.schema import Image
from builder.stack import resolve
from builder.stack.feeds import check_feed
from builder.stack.tags import BASE_VERSION as BASE_VERSION_TAG
from builder.versioning import numeric_key

ARCH = "amd64"
INDEX_NAMES = ("Packages.xz", "Packages.gz", "Packages")


@dataclass
class Finding:
    """Something newer than what the image was built with; ``rebuild`` marks what triggers a rebuild."""

    image: str
    kind: str  # base | layered-base | component
    subject: str
    current: str
    latest: str
    rebuild: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def images(self) -> list[str]:
        return sorted({f.image for f in self.findings if f.rebuild})

    def note(self, image: str, message: str) -> None:
        self.notes.append({"image": image, "message": message})

    def error(self, image: str, message: str) -> None:
        self.errors.append({"image": image, "message": message})

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "findings": [f.as_dict() for f in self.findings], "notes": self.notes,
                "errors": self.errors}


# ---------------------------------------------------------------- versions


def deb_newer(candidate: str, pinned: str) -> bool:
    from debian.debian_support import Version

    return Version(candidate) > Version(pinned)


def _flavour(version: str) -> str:
    return version.split("+", 1)[1] if "+" in version else ""


def _major(version: str) -> str:
    return version.split(":")[-1].split(".")[0]


def _version(text: str):
    from debian.debian_support import Version

    return Version(text)


def same_line(candidate: str, pinned: str) -> bool:
    """Same epoch-less major version and the same ``+`` build flavour: a release of the pinned line."""
    return _major(candidate) == _major(pinned) and _flavour(candidate) == _flavour(pinned)


# ---------------------------------------------------------------- apt feeds


def fetch_index(url: str, timeout: float = 60) -> dict[str, list[str]]:
    """``package -> [versions]`` for ``ARCH``/``all`` from the first of Packages.xz/.gz/plain under ``url``."""
    from debian.deb822 import Packages

    last: Exception | None = None
    for name in INDEX_NAMES:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/{name}", timeout=timeout) as response:
                raw = response.read()
        except (urllib.error.URLError, OSError) as exc:
            last = exc
            continue
        data = lzma.decompress(raw) if name.endswith(".xz") else gzip.decompress(raw) if name.endswith(".gz") else raw
        index: dict[str, list[str]] = {}
        for para in Packages.iter_paragraphs(data.decode("utf-8", "replace").splitlines(keepends=True)):
            if para.get("Package") and para.get("Version") and para.get("Architecture", ARCH) in (ARCH, "all"):
                index.setdefault(para["Package"], []).append(para["Version"])
        return index
    raise OSError(f"no Packages index under {url} ({last})")


def default_cache_dir() -> Path:
    """$BUILDER_CACHE if set (as click's envvar reads it for the other commands' --cache-dir), else DEFAULT_CACHE."""
    from builder.paths import DEFAULT_CACHE

    return Path(os.environ["BUILDER_CACHE"]) if os.environ.get("BUILDER_CACHE") else DEFAULT_CACHE


def index_urls(feed: dict[str, Any]) -> list[str]:
    """Where an apt feed (a ``Stack.feeds`` entry) keeps its Packages indexes."""
    if feed.get("suite", "/") == "/":
        return [feed["url"]]
    base = feed["url"].rstrip("/")
    return [f"{base}/dists/{feed['suite']}/{c}/binary-{ARCH}" for c in feed.get("components") or ["main"]]


def check_components(catalog: Catalog, image: Image, feed: str, report: Report,
                     fetch: Callable[[str], dict[str, list[str]]] = fetch_index,
                     cache: dict[str, Any] | None = None, cache_dir: Path | None = None) -> None:
    """Findings for pinned packages that have a newer release of the same line in their feed.

    ``--feed stand-in`` reads the stand-in feed from ``cache_dir``, else $BUILDER_CACHE, else the default cache: where
    ``builder build``/``patch`` (``--cache-dir``, envvar BUILDER_CACHE) put it."""
    cache = {} if cache is None else cache
    stack = resolve(catalog, image.name)
    check_feed(feed)
    if feed == "stand-in":
        from builder.standin import ensure_feed

        feed = ensure_feed(catalog, cache_dir or default_cache_dir()).url
    feeds = stack.feeds(feed)
    failed: set[str] = set()
    for component, packages in stack.packages.items():
        for package in packages:
            spec = feeds.get(package.feed)
            if spec is None or spec.get("kind") != "apt":
                continue  # release .deb files (enroot) have no index to compare with
            versions: list[str] = []
            for url in index_urls(spec):
                if url not in cache:
                    try:
                        cache[url] = fetch(url)
                    except OSError as exc:
                        cache[url] = exc
                if isinstance(cache[url], Exception):
                    if url not in failed:
                        failed.add(url)
                        report.error(image.name, f"feed {package.feed}: {cache[url]}")
                    continue
                versions += cache[url].get(package.name, [])
            pinned = max((v for v in versions if package.matches(v)), key=_version, default=package.version)
            if "*" in pinned:  # a glob the feed carries no build of: compare with the release it names
                pinned = pinned.replace("*", "0")
            newer = [v for v in versions if same_line(v, pinned) and deb_newer(v, pinned)]
            if newer:
                from debian.debian_support import Version

                best = max(newer, key=Version)
                report.findings.append(Finding(image.name, "component", f"{component} ({package.name})",
                                               package.version, best))


# ---------------------------------------------------------------- bases (Azure)


def current_version(life) -> Any | None:
    """The image's version that ``latest`` resolves to (VersionInfo), or None (also: never published)."""
    from azure.core.exceptions import ResourceNotFoundError

    d = life.dest
    try:
        life.compute.gallery_images.get(d.resource_group, d.gallery, d.definition)
    except ResourceNotFoundError:
        return None
    return next((v for v in life.versions() if v.latest), None)


def check_marketplace(image: Image, compute, life, report: Report) -> None:
    m = image.base.marketplace
    items = compute.virtual_machine_images.list(image.build.region, m.publisher, m.offer, m.sku)
    names = [i.name for i in items]
    if not names:
        report.error(image.name, f"marketplace {m.publisher}:{m.offer}:{m.sku} lists no versions")
        return
    newest = max(names, key=numeric_key)
    subject = f"{m.publisher}:{m.offer}:{m.sku}"
    if m.version != "latest":
        if numeric_key(newest) > numeric_key(m.version):
            report.findings.append(Finding(image.name, "base", subject, m.version, newest))
        return
    ours = current_version(life)
    if ours is None:
        report.note(image.name, "no live gallery version yet: nothing to compare the marketplace base with")
        return
    built_on = ours.tags.get(BASE_VERSION_TAG)
    if not built_on:
        report.note(image.name, f"{ours.version} records no {BASE_VERSION_TAG}: newest base is {newest}")
    elif numeric_key(newest) > numeric_key(built_on):
        report.findings.append(Finding(image.name, "base", subject, built_on, newest))


def check_layered(image: Image, life, parent_life, report: Report) -> None:
    parent = current_version(parent_life)
    ours = current_version(life)
    if parent is None:
        report.note(image.name, f"base image {image.base.image} has no live gallery version")
        return
    if ours is None:
        report.note(image.name, "no live gallery version yet: nothing to compare the base image with")
        return
    built_on = ours.tags.get(BASE_VERSION_TAG)
    if built_on:
        if numeric_key(parent.version) > numeric_key(built_on):
            report.findings.append(Finding(image.name, "layered-base", image.base.image, built_on, parent.version))
    elif (parent.published_date or "") > (ours.published_date or ""):
        report.findings.append(Finding(image.name, "layered-base", image.base.image,
                                       f"(built before {parent.version})", parent.version))


def check_bases(catalog: Catalog, names: list[str], settings, report: Report) -> None:
    """Marketplace and layered-base findings through the SDK (one compute client for all images)."""
    from builder.azure.clients import compute_client
    from builder.azure.lifecycle import Lifecycle
    from builder.errors import BuilderError

    compute = compute_client(settings)
    for name in names:
        image = catalog.model(name)
        try:
            life = Lifecycle(catalog, name, settings)
            if image.base.marketplace:
                check_marketplace(image, compute, life, report)
            elif image.base.image:
                check_layered(image, life, Lifecycle(catalog, image.base.image, settings), report)
            else:
                report.note(name, "base is a fixed gallery image id: nothing to compare")
        except BuilderError as exc:
            report.error(name, str(exc))
        except Exception as exc:  # an SDK/HTTP failure for one image must not hide the others
            from azure.core.exceptions import AzureError

            if not isinstance(exc, AzureError):
                raise
            report.error(name, f"{type(exc).__name__}: {exc}".splitlines()[0])
