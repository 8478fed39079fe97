"""Parse ``packer -machine-readable`` output (``timestamp,target,type,data...``) line by line into events.

Packer escapes commas in data as ``%!(PACKER_COMMA)`` and newlines as ``\\n``; every field is unescaped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COMMA = "%!(PACKER_COMMA)"


@dataclass(frozen=True)
class Event:
    """One machine-readable record. ``kind``: say, message, error, artifact, build-error, error-count, other."""

    kind: str
    text: str = ""
    target: str = ""
    timestamp: int = 0
    data: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "target": self.target, "timestamp": self.timestamp}


@dataclass
class Artifact:
    """One artifact Packer reported: builder id, artifact id (the image id on Azure), description, files."""

    target: str
    index: int
    builder_id: str = ""
    id: str = ""
    string: str = ""
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "index": self.index, "builder_id": self.builder_id, "id": self.id,
                "string": self.string, "files": list(self.files)}


def unescape(value: str) -> str:
    return value.replace(COMMA, ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_line(line: str) -> Event | None:
    """One line of machine-readable output -> Event; ``None`` for a line that is not in that format."""
    parts = line.rstrip("\r\n").split(",")
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    timestamp, target, kind = int(parts[0]), parts[1], parts[2]
    data = tuple(unescape(p) for p in parts[3:])
    if kind == "ui" and data:
        ui_kind = data[0] if data[0] in ("say", "message", "error") else "message"
        return Event(ui_kind, ",".join(data[1:]).strip("\n"), target, timestamp, data)
    if kind == "artifact":
        return Event("artifact", ",".join(data), target, timestamp, data)
    if kind == "error":
        return Event("build-error", ",".join(data), target, timestamp, data)
    if kind == "error-count":
        return Event("error-count", data[0] if data else "0", target, timestamp, data)
    return Event("other", ",".join(data), target, timestamp, (kind, *data))


class ArtifactCollector:
    """Assembles ``artifact`` events (``N,builder-id,...``, ``N,id,...``, ``N,file,I,path``, ``N,end``)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, int], Artifact] = {}

    def add(self, event: Event) -> None:
        if event.kind != "artifact" or len(event.data) < 2 or not event.data[0].isdigit():
            return
        index, key, values = int(event.data[0]), event.data[1], event.data[2:]
        item = self._items.setdefault((event.target, index), Artifact(event.target, index))
        if key == "builder-id":
            item.builder_id = ",".join(values)
        elif key == "id":
            item.id = ",".join(values)
        elif key == "string":
            item.string = ",".join(values)
        elif key == "file" and len(values) >= 2:
            item.files.append(",".join(values[1:]))

    @property
    def artifacts(self) -> list[Artifact]:
        return [self._items[k] for k in sorted(self._items)]
