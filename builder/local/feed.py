"""The stand-in feed as a local build sees it: at a stable per-image path, ``/run/builder/feeds/<image>``.

The stand-in feed lives in ``<cache>/standin/<digest>/root`` and its digest covers every catalog pin, so its
path changes whenever any pin does. Layer snapshots keep the apt sources earlier layers wrote; with the real
path, a snapshot reused after a top-layer pin change would point at the previous feed. A stable symlink
(replaced atomically; one build per image at a time holds the lock) keeps those sources valid, and keeps
the bind mount the converge makes for it out of the folders generalize empties (``/tmp``, ``/var/tmp``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog
    from builder.standin import Feed

FEED_LINKS = Path("/run/builder/feeds")


def stable_standin(catalog: Catalog, image: str, cache_dir: Path, links: Path = FEED_LINKS) -> Feed:
    """The stand-in feed for ``catalog`` (built on a cache miss), addressed through ``links/<image>``."""
    from builder.standin import ensure_feed

    feed = ensure_feed(catalog, cache_dir)
    links.mkdir(parents=True, exist_ok=True)
    link = links / image
    tmp = links / f".{image}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(feed.root.resolve())
    os.replace(tmp, link)
    old, new = feed.url, f"file://{link}"
    downloads = {key: {**value, "url": value["url"].replace(old, new, 1)} for key, value in feed.downloads.items()}
    return dataclasses.replace(feed, url=new, downloads=downloads)
