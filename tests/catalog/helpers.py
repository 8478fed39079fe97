"""Helpers to edit a copy of the catalog in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from builder.catalog.loader import Catalog, load_catalog
from builder.catalog.rules import check_catalog
from builder.errors import Problem


def edit(catalog_dir: Path, file: str, changes: dict[str, Any]) -> None:
    """Deep-set ``changes`` (dotted keys -> value; value None deletes) in ``catalog_dir/file``."""
    path = catalog_dir / file
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def problems(catalog_dir: Path, image: str | None = None) -> list[Problem]:
    catalog: Catalog = load_catalog(catalog_dir)
    return check_catalog(catalog, [image] if image else None)


def errors_for(catalog_dir: Path, image: str, field_prefix: str) -> list[Problem]:
    found = problems(catalog_dir, image)
    return [p for p in found if p.severity == "error" and (p.field or "").startswith(field_prefix)]
