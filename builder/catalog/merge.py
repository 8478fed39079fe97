"""Inheritance: deep-merge mappings, replace lists, ``null`` deletes; provenance per key path."""

from __future__ import annotations

from typing import Any

Origin = tuple[str, int]  # (file, line)
OWN_KEYS = ("name", "abstract", "extends")  # never inherited


def merge(
    parent: dict[str, Any],
    parent_origin: dict[tuple, Origin],
    child: dict[str, Any],
    child_origin: dict[tuple, Origin],
    path: tuple = (),
) -> tuple[dict[str, Any], dict[tuple, Origin]]:
    """Return the child laid over the parent and the origin of every key path in the result."""
    result = dict(parent)
    origin = {p: o for p, o in parent_origin.items() if p[: len(path)] == path}
    for key, value in child.items():
        key_path = (*path, key)
        if value is None:
            result.pop(key, None)
            origin = {p: o for p, o in origin.items() if p[: len(key_path)] != key_path}
            continue
        inherited = result.get(key)
        if isinstance(value, dict) and isinstance(inherited, dict):
            sub, sub_origin = merge(inherited, origin, value, child_origin, key_path)
            result[key] = sub
            origin = {p: o for p, o in origin.items() if p[: len(key_path)] != key_path}
            origin.update(sub_origin)
            origin[key_path] = child_origin.get(key_path, origin.get(key_path, ("", 1)))
        else:
            result[key] = value
            origin = {p: o for p, o in origin.items() if p[: len(key_path)] != key_path}
            origin.update({p: o for p, o in child_origin.items() if p[: len(key_path)] == key_path})
    return result, origin


def strip_nulls(data: Any) -> Any:
    """Drop keys whose value is ``null`` (a delete with nothing to delete)."""
    if isinstance(data, dict):
        return {k: strip_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [strip_nulls(v) for v in data]
    return data
