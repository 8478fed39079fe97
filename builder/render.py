"""Render the Ansible variables for one catalog image: everything ``ansible/image.yml`` needs.

Every value comes from the image's ``Stack`` (``builder.stack``): components and their pins, apt packages,
SKU facts, package feeds and downloads, the in-image manifest. Feeds derive from one ``package_feed`` setting
(``builder.stack.feeds``): ``upstream``, a mirror base URL, or ``stand-in`` (the local test feed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.errors import InputError
from builder.paths import DEFAULT_CACHE, git_commit
from builder.stack import resolve
from builder.stack.feeds import CUDA_DISTRO, check_feed
from builder.stack.layers import FINAL_ROLES, LAYERS

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog
    from builder.standin import Feed

TARGETS = ("local", "azure")
VARS_FILE = "ansible-vars.yml"


def ansible_vars(catalog: Catalog, image_name: str, target: str = "local", feed: str | Feed = "upstream",
                 os_override: str | None = None, *, image_version: str = "0.0.0-dev", commit: str | None = None,
                 cache_dir: Path | None = None) -> dict[str, Any]:
    """Everything the playbook needs for ``image_name``, derived from the catalog."""
    if target not in TARGETS:
        raise InputError(f"invalid value {target!r}: expected one of {', '.join(TARGETS)}", field="--target")
    stack = resolve(catalog, image_name, strict_skus=True)
    os_name = os_override or stack.os
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
        check_feed(feed)
        base, feed_name = feed, feed
    commit = commit or git_commit()
    feeds = stack.feeds(base, os_name)
    if overrides is not None:  # the stand-in feed: its own .debs, checked against their own checksums
        _standin_deb_checksums(feeds, feed if not isinstance(feed, str) else standin)
    return {
        "builder_image": stack.image,
        "builder_image_version": image_version,
        "builder_git_commit": commit,
        "builder_target": target,
        "builder_os": os_name,
        "builder_catalog_os": stack.os,
        "builder_kind": stack.kind,
        "builder_purpose": stack.purpose,
        "builder_components": stack.specs,
        "builder_packages": {name: [p.as_dict() for p in group] for name, group in stack.packages.items()},
        "builder_target_skus": list(stack.target_skus),
        "builder_skus": stack.skus,
        "builder_has_nvswitch": stack.has_nvswitch,
        "builder_has_infiniband": stack.has_infiniband,
        "builder_gpu_vendor": stack.gpu_vendor,
        "package_feed": feed_name,
        "package_feed_base": base,
        "builder_feeds": feeds,
        "builder_downloads": stack.downloads(base, overrides),
        "builder_layers": {layer.name: list(layer.roles) for layer in LAYERS},
        "builder_final_roles": list(FINAL_ROLES),
        "builder_image_manifest": stack.manifest(version=image_version, git_commit=commit, os_name=os_name,
                                                 target=target, package_feed=feed_name),
    }


def _standin_deb_checksums(feeds: dict[str, Any], standin: Feed) -> None:
    from builder.hashing import sha256_file
    from builder.stack.feeds import STANDIN_SOURCE

    for spec in feeds.values():
        if spec.get("kind") != "deb":
            continue
        for name, url in spec["debs"].items():
            local = standin.root / url.removeprefix(standin.url).lstrip("/")
            spec["checksums"][name] = {"sha256": sha256_file(local), "source": STANDIN_SOURCE}


def write_render(catalog: Catalog, image_name: str, target: str, out_dir: Path, feed: str | Feed = "upstream",
                 **options: Any) -> list[Path]:
    """Write the variables file (and, for ``azure``, the Packer files) into ``out_dir``."""
    import yaml

    data = ansible_vars(catalog, image_name, target, feed, **options)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / VARS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Rendered by `builder render` from the catalog; do not edit.\n"
                   + yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False, width=200))
    tmp.replace(path)
    written = [path]
    if target == "azure":
        from builder.packer.render import write_packer_files

        written += list(write_packer_files(catalog, image_name, out_dir) or [])
    return written
