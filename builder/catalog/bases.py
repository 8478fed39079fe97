"""What an image is built on: its base described in words, and the chain of catalog images below it."""

from __future__ import annotations

from builder.catalog.loader import Catalog
from builder.catalog.schema import Image


def base_chain(catalog: Catalog, image: Image) -> list[str]:
    """This image, then each catalog image it is layered on (``base.image``)."""
    chain = [image.name]
    current = image
    while current.base.image and current.base.image not in chain:
        chain.append(current.base.image)
        parent = catalog.images.get(current.base.image)
        if parent is None or parent.model is None:
            break
        current = parent.model
    return chain


def describe_base(image: Image) -> str:
    base = image.base
    if base.marketplace:
        m = base.marketplace
        plan = f" (plan {m.plan.publisher}/{m.plan.product}/{m.plan.name})" if m.plan else ""
        return f"marketplace {m.publisher}:{m.offer}:{m.sku}:{m.version}{plan}"
    if base.gallery_image_id:
        return f"gallery {base.gallery_image_id}"
    return f"catalog image {base.image} (its latest gallery version)"
