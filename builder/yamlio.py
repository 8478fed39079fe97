"""YAML loading that keeps the line of every key, for ``file:line`` messages.

Catalog files are untrusted input: only regular files are read, at most ``MAX_BYTES`` of them, and a document
may expand to at most ``MAX_NODES`` nodes (aliases counted each time they are used) and ``MAX_DEPTH`` levels.
docs/security-catalog.md lists the attacks these bounds refuse.
"""

from __future__ import annotations

import os
import stat
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

MAX_BYTES = 1024 * 1024  # the largest shipped catalog file (skus.yaml) is under 20 KiB
MAX_NODES = 100_000  # nodes after alias expansion; the shipped catalog's largest file has 751
MAX_DEPTH = 64  # nesting levels; the shipped catalog nests at most 4
SHOWN_CHARS = 60  # how much of a value a message echoes


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters so a hostile value cannot flood a message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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


def read_text(file: Path, limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of the regular file ``file``; refuse FIFOs, devices, oversize files and bad encodings.

    Opened non-blocking, so a FIFO cannot hang the open; its type is checked on the open descriptor (no
    check-then-open race); at most ``limit`` + 1 bytes are read, so a link to /dev/zero cannot exhaust memory.
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=file) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError("not a regular file (a FIFO, device or directory is never read)", file=file)
        if info.st_size > limit:
            raise InputError(f"file too large: {info.st_size} bytes, the limit is {limit}", file=file)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=file) from None
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise InputError(f"file too large: over {limit} bytes", file=file)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 text: byte {raw[exc.start]:#04x} cannot be decoded", file=file, line=line
        ) from None


def load_mapping(file: Path, text: str | None = None, what: str = "document") -> LocatedDoc:
    """Parse ``file`` as one YAML mapping; raise InputError with file:line on any problem."""
    if text is None:
        text = read_text(file)
    if len(text) > MAX_BYTES:
        raise InputError(f"document too large: over {MAX_BYTES} characters", file=file)
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
        data = _Builder(loader, file, lines).build(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"YAML syntax error: {_cut(problem)}", file=file, line=line) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        raise InputError(
            f"YAML error: {_cut(exc.reason)} (character {exc.character!r})", file=file, line=line
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML error: {_cut(str(exc))}", file=file) from None
    finally:
        loader.dispose()
    return LocatedDoc(file=file, data=data, lines=lines)


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class _Builder:
    """Constructs Python data from a composed node graph, counting every node it expands (aliases included)."""

    def __init__(self, loader: Any, file: Path, lines: dict) -> None:
        self.loader = loader
        self.file = file
        self.lines = lines
        self.count = 0
        self.active: set[int] = set()  # ids of the collection nodes being built: an alias to one is a cycle

    def build(self, node: yaml.Node) -> Any:
        return self._node(node, ())

    def _fail(self, node: yaml.Node, message: str, path: tuple = ()) -> InputError:
        field = ".".join(str(p) for p in path)[:120] or None
        line = self.lines.get(path) or node.start_mark.line + 1  # the key's line: an alias's target is elsewhere
        return InputError(message, file=self.file, line=line, field=field)

    def _node(self, node: yaml.Node, path: tuple) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(
                node, f"document too large: over {MAX_NODES} nodes once aliases are expanded (an alias bomb?)", path
            )
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if len(path) >= MAX_DEPTH:
            raise self._fail(node, f"nested deeper than {MAX_DEPTH} levels", path)
        if id(node) in self.active:
            raise self._fail(node, "an alias refers to a node that contains it (a recursive alias)", path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return self._sequence(node, path)
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: tuple) -> Any:
        """The scalar's value; a malformed one (a timestamp such as 2026-02-30) is an InputError at its line."""
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            raise self._fail(node, f"invalid value {shown(node.value)}: {_cut(str(exc))}", path) from None

    def _mapping(self, node: yaml.MappingNode, path: tuple) -> dict:
        if any(key.tag == "tag:yaml.org,2002:merge" for key, _ in node.value):
            raise self._fail(node, "merge keys ('<<') are not supported; write the keys out", path)
        result: dict = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError("keys must be plain scalars", file=self.file, line=line)
            key = self._scalar(key_node, (*path, key_node.value[:40]))
            if not isinstance(key, str | int | float | bool):
                raise InputError("keys must be plain scalars", file=self.file, line=line)
            key = str(key)
            key_path = (*path, key)
            if key in result:
                raise InputError(
                    f"duplicate key {shown(key)} (first on line {self.lines[key_path]})",
                    file=self.file,
                    line=line,
                    field=".".join(str(p) for p in key_path)[:120],
                )
            self.lines[key_path] = line
            result[key] = self._node(value_node, key_path)
        return result

    def _sequence(self, node: yaml.SequenceNode, path: tuple) -> list:
        items = []
        for index, item in enumerate(node.value):
            self.lines[(*path, index)] = item.start_mark.line + 1
            items.append(self._node(item, (*path, index)))
        return items


def dump(data: Any) -> str:
    """Plain block-style YAML, keys in insertion order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120)
