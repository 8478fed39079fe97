"""Inheritance: deep-merge mappings, replace lists, ``null`` deletes; provenance per key path.

Linear in the size of the documents: the result is built in one walk, and each of its key paths takes its
origin from the one document that set it (the quadratic filtering of every origin per key is gone).
"""

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
    origin: dict[tuple, Origin] = {}
    return _merge(parent, parent_origin, child, child_origin, path, origin), origin


def _merge(parent: dict, parent_origin: dict, child: dict, child_origin: dict, path: tuple, origin: dict) -> dict:
    result: dict = {}
    for key, value in parent.items():
        if key not in child:
            result[key] = value
            _copy(value, (*path, key), parent_origin, origin)
    for key, value in child.items():
        key_path = (*path, key)
        inherited = parent.get(key)
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(inherited, dict):
            result[key] = _merge(inherited, parent_origin, value, child_origin, key_path, origin)
            origin[key_path] = child_origin.get(key_path, parent_origin.get(key_path, ("", 1)))
        else:
            result[key] = value
            _copy(value, key_path, child_origin, origin)
    return _ordered(result, parent, child)


def _ordered(result: dict, parent: dict, child: dict) -> dict:
    """Keys in the order the old merge gave: the parent's first, then the child's new ones."""
    order = [k for k in parent if k in result] + [k for k in child if k in result and k not in parent]
    return {k: result[k] for k in order}


def _copy(value: Any, path: tuple, source: dict[tuple, Origin], origin: dict[tuple, Origin]) -> None:
    """Record ``source``'s origin for ``path`` and every key path inside ``value``."""
    stack = [(value, path)]
    while stack:
        current, where = stack.pop()
        if where in source:
            origin[where] = source[where]
        if isinstance(current, dict):
            stack.extend((v, (*where, k)) for k, v in current.items())
        elif isinstance(current, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(current))


def strip_nulls(data: Any) -> Any:
    """Drop keys whose value is ``null`` (a delete with nothing to delete)."""
    if isinstance(data, dict):
        return {k: strip_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [strip_nulls(v) for v in data]
    return data
