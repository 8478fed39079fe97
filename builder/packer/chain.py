"""Layered builds: the inputs digest of each link of an image's base chain and whether it needs rebuilding.

A link's digest covers what changes the image and nothing else: its resolved catalog entry without the fields that
only document or arrange it (``NOT_IMAGE_FIELDS``: ``description``; ``extends`` and ``abstract``, whose effect is
already in the resolved values), the facts of its SKUs (target sizes and the build size), every shared build input
file (``builder.paths.SHARED_INPUTS``: Ansible content, the Packer template, recorded data, the renderers, ...;
hashed as sorted repo-relative paths and contents, caches left out: ``builder.hashing.files_digest``), a Packer
template the catalog carries itself, and the digest of the link below it. It is stamped on the image as the
``builder.inputs_digest`` tag; a link needs rebuilding when its digest differs from the tag of its latest published
version, and ``builder matrix --changed-since`` lists the images whose digest differs from the one at that ref.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.catalog.loader import Catalog
from builder.hashing import files_digest
from builder.paths import REPO, SHARED_INPUTS
from builder.stack import tags as T

# name -> (latest published version, its digest tag or None); None when the image was never published.
PublishedLookup = Callable[[str], tuple[str, str | None] | None]


@dataclass(frozen=True)
class Link:
    image: str
    digest: str
    base: str  # what this link is built on: "marketplace ...", "gallery ...", "image <name>"
    published_version: str | None = None
    published_digest: str | None = None
    status: str = "unknown"  # rebuild | up-to-date | unknown (no gallery record to compare with)

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "digest": self.digest, "base": self.base,
                "published_version": self.published_version, "published_digest": self.published_digest,
                "status": self.status}


# Catalog fields that never change what is built: documentation, and how the entry is arranged (the resolved
# values of an ``extends`` chain are hashed, not the chain; a buildable image is never abstract).
NOT_IMAGE_FIELDS = frozenset({"description", "extends", "abstract"})


def shared_inputs_digest(repo: Path = REPO) -> str:
    """sha256 over the repo-relative paths and contents of every shared build input file under ``repo``."""
    return files_digest(repo, SHARED_INPUTS)


def inputs_digest(catalog: Catalog, name: str, repo: Path = REPO, shared: str | None = None) -> str:
    """The inputs digest of catalog image ``name`` (includes the digests of the images below it).

    ``shared``: ``shared_inputs_digest(repo)`` when the caller has it already (it reads every shared file)."""
    return _digest(catalog, name, repo, (), shared if shared is not None else shared_inputs_digest(repo))


def catalog_digests(catalog: Catalog, repo: Path = REPO) -> dict[str, str]:
    """The inputs digest of every buildable image of ``catalog``, by name."""
    shared = shared_inputs_digest(repo)
    return {image.name: inputs_digest(catalog, image.name, repo, shared)
            for image in sorted(catalog.buildable(), key=lambda i: i.name)}


def _own_template(catalog: Catalog, repo: Path) -> str:
    """Digest of the catalog's own ``packer/`` folder (builder.packer.render.template_dir), "" when it has none."""
    own = catalog.root / "packer"
    if not own.is_dir() or own.resolve() == (repo / "images" / "packer").resolve():
        return ""
    return files_digest(catalog.root, ("packer/",))


def _digest(catalog: Catalog, name: str, repo: Path, seen: tuple[str, ...], shared: str) -> str:
    model = catalog.model(name)
    data = model.model_dump(mode="json", exclude=set(NOT_IMAGE_FIELDS))
    skus = {s: catalog.skus[s].model_dump(mode="json") for s in sorted({*model.target_skus, model.build.vm_size})
            if s in catalog.skus}
    below = ""
    if model.base.image and model.base.image not in seen:
        below = _digest(catalog, model.base.image, repo, (*seen, name), shared)
    payload = json.dumps({"image": data, "skus": skus, "shared": shared, "template": _own_template(catalog, repo),
                          "base": below}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def describe(catalog: Catalog, name: str) -> str:
    base = catalog.model(name).base
    if base.image:
        return f"image {base.image}"
    if base.gallery_image_id:
        return f"gallery {base.gallery_image_id}"
    m = base.marketplace
    return f"marketplace {m.publisher}:{m.offer}:{m.sku}:{m.version}" if m else "-"


def chain(catalog: Catalog, name: str) -> list[str]:
    """The bottom link first: ``[gpu-base, ndh100-train-layered]``."""
    links = [name]
    current = catalog.model(name)
    while current.base.image and current.base.image not in links:
        links.append(current.base.image)
        current = catalog.model(current.base.image)
    return list(reversed(links))


def chain_status(catalog: Catalog, name: str, published: PublishedLookup | None = None,
                 repo: Path = REPO) -> list[Link]:
    """Every link of ``name``'s chain, bottom first, with its digest and rebuild status.

    ``published`` is None when no gallery is configured: every status is then ``unknown``. A link never
    published, or whose latest version carries another digest, is ``rebuild``.
    """
    out = []
    shared = shared_inputs_digest(repo)
    for link in chain(catalog, name):
        digest = inputs_digest(catalog, link, repo, shared)
        found = published(link) if published else None
        if published is None:
            status = "unknown"
        elif found is None or found[1] != digest:
            status = "rebuild"
        else:
            status = "up-to-date"
        out.append(Link(link, digest, describe(catalog, link), found[0] if found else None,
                        found[1] if found else None, status))
    return out


def gallery_lookup(catalog: Catalog, settings: Any) -> PublishedLookup:
    """Latest published version of each image in its gallery definition and its digest tag.

    "Published": provisioning succeeded and not yanked (staged versions count: they were built from those
    inputs). A missing gallery or definition means never published.
    """
    from azure.core.exceptions import ResourceNotFoundError

    from builder.azure.clients import compute_client
    from builder.azure.errors import arm_errors
    from builder.versioning import sort_key

    compute = compute_client(settings)

    def lookup(name: str) -> tuple[str, str | None] | None:
        g = catalog.model(name).gallery
        with arm_errors(f"listing versions of {g.gallery}/{g.definition}"):
            try:
                items = [v.as_dict() for v in compute.gallery_image_versions.list_by_gallery_image(
                    g.resource_group, g.gallery, g.definition)]
            except ResourceNotFoundError:
                return None
        done = [i for i in items if (i.get("properties") or {}).get("provisioningState") == "Succeeded"
                and T.YANKED not in (i.get("tags") or {})]
        if not done:
            return None
        latest = max(done, key=lambda i: sort_key(i["name"]))
        return latest["name"], (latest.get("tags") or {}).get(T.INPUTS_DIGEST)

    return lookup


def lookup_from_env(catalog: Catalog, env: dict[str, str] | None = None) -> PublishedLookup | None:
    """A gallery lookup when Azure is configured (``AZURE_SUBSCRIPTION_ID``), else None (status unknown)."""
    env = dict(os.environ if env is None else env)
    if not env.get("AZURE_SUBSCRIPTION_ID", "").strip():
        return None
    from builder.azure.settings import settings_from_env

    return gallery_lookup(catalog, settings_from_env(env))
