"""The stand-in feed as a local build sees it: at a stable per-image path, ``/run/builder/feeds/<image>``.

The stand-in feed lives in ``<cache>/standin/<digest>/root`` and its digest covers every catalog pin, so its
path changes whenever any pin does. Layer snapshots keep the apt sources earlier layers wrote; with the real
path, a snapshot reused after a top-layer pin change would point at the previous feed. So the variables name
the feed at a stable path inside the tree (outside the folders generalize empties: ``/tmp``, ``/var/tmp``), and
each converge bind-mounts this build's own feed folder there (``converge(feed_sources=...)``). Nothing on the
host is shared: two builds of one image with different pins (other checkouts, other state folders) at the same
time each see their own feed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog
    from builder.standin import Feed

FEED_PATH = Path("/run/builder/feeds")


def stable_standin(catalog: Catalog, image: str, cache_dir: Path) -> tuple[Feed, dict[Path, Path]]:
    """The stand-in feed for ``catalog`` (built on a cache miss) addressed at ``/run/builder/feeds/<image>``,
    and the bind mount that serves it there: ``{path in the tree: host folder}``."""
    from builder.standin import ensure_feed

    feed = ensure_feed(catalog, cache_dir)
    inside = FEED_PATH / image
    old, new = feed.url, f"file://{inside}"
    downloads = {key: {**value, "url": value["url"].replace(old, new, 1)} for key, value in feed.downloads.items()}
    return dataclasses.replace(feed, url=new, downloads=downloads), {inside: feed.root.resolve()}
