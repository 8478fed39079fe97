"""YAML loading that keeps the line of every key, for ``file:line`` messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from builder.errors import InputError

try:  # the C loader is several times faster; fall back when libyaml is missing
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

Path_ = tuple  # a key path such as ("components", "cuda", "version")


@dataclass
class LocatedDoc:
    """A parsed YAML mapping with the source line of every key path."""

    file: Path
    data: dict[str, Any]
    lines: dict[tuple, int]

    def line_of(self, path: tuple) -> int:
        """Line of the deepest known prefix of ``path`` (1 when nothing matches)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line:
                return line
        return 1


def load_mapping(file: Path, text: str | None = None, what: str = "document") -> LocatedDoc:
    """Parse ``file`` as one YAML mapping; raise InputError with file:line on any problem."""
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=file) from None
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text", file=file) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(f"empty file: expected a YAML mapping ({what})", file=file, line=1)
        if not isinstance(node, yaml.MappingNode):
            kind = {"ScalarNode": "a scalar", "SequenceNode": "a list"}.get(type(node).__name__, "not a mapping")
            raise InputError(
                f"the document is {kind}; expected a mapping of keys ({what})",
                file=file,
                line=node.start_mark.line + 1,
            )
        lines: dict[tuple, int] = {}
        data = _construct(loader, node, (), lines, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"YAML syntax error: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {exc}", file=file) from None
    finally:
        loader.dispose()
    return LocatedDoc(file=file, data=data, lines=lines)


def _construct(loader: Any, node: yaml.Node, path: tuple, lines: dict, file: Path) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool):
                raise InputError("keys must be plain scalars", file=file, line=line)
            key = str(key)
            if key in result:
                raise InputError(
                    f"duplicate key '{key}' (first on line {lines[(*path, key)]})",
                    file=file,
                    line=line,
                    field=".".join(str(p) for p in (*path, key)),
                )
            lines[(*path, key)] = line
            result[key] = _construct(loader, value_node, (*path, key), lines, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_construct(loader, item, (*path, index), lines, file))
        return items
    return loader.construct_object(node, deep=True)


def dump(data: Any) -> str:
    """Plain block-style YAML, keys in insertion order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120)
