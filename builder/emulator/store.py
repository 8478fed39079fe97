"""Emulator state: ARM resources and long-running operations, persisted as JSON in the state folder."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


class Store:
    """Resources keyed by lower-cased ARM id, operations by id; every change is written atomically."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATE_FILE
        self.lock = threading.RLock()
        self.resources: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.resources = data.get("resources", {})
            self.operations = data.get("operations", {})

    @staticmethod
    def key(resource_id: str) -> str:
        return resource_id.rstrip("/").lower()

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(self.key(resource_id))

    def put(self, resource: dict[str, Any]) -> None:
        self.resources[self.key(resource["id"])] = resource

    def delete(self, resource_id: str) -> None:
        self.resources.pop(self.key(resource_id), None)

    def children(self, parent_id: str, kind: str) -> list[dict[str, Any]]:
        """Direct children ``parent/kind/<name>`` in insertion order."""
        prefix = f"{self.key(parent_id)}/{kind.lower()}/"
        return [r for k, r in self.resources.items() if k.startswith(prefix) and "/" not in k[len(prefix):]]

    def descendants(self, parent_id: str) -> list[str]:
        prefix = self.key(parent_id) + "/"
        return [k for k in self.resources if k.startswith(prefix)]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"resources": self.resources, "operations": self.operations}, handle, indent=1)
        os.replace(tmp, self.path)
