"""Local record of published versions per image (``<state>/registry.json``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class LocalRegistry:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "registry.json"

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"images": {}}
        return json.loads(self.path.read_text(encoding="utf-8"))

    def versions(self, image: str) -> list[str]:
        return list(self.load()["images"].get(image, {}))

    def record(self, image: str, version: str, entry: dict[str, Any]) -> None:
        data = self.load()
        data["images"].setdefault(image, {})[version] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".registry.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, default=str)
        os.replace(tmp, self.path)
