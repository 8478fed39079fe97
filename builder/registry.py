"""Local record of published versions per image (``<state>/registry.json``).

Every change is a read-modify-write under an exclusive ``fcntl.flock`` on ``registry.json.lock`` (so parallel
publishes and builds lose no entry), written whole to a temporary file and renamed over the old one with
``os.replace`` (a reader never sees half a file). A registry that is not valid JSON of the expected shape is an
InputError naming the file (exit 2), never a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from builder.errors import InputError


class LocalRegistry:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "registry.json"
        self.lock_path = state_dir / "registry.json.lock"

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"images": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(
                f"the local registry is not readable JSON ({exc}); repair it or move it away", file=self.path
            ) from None
        images = data.get("images") if isinstance(data, dict) else None
        if not isinstance(images, dict) or not all(isinstance(v, dict) for v in images.values()):
            raise InputError(
                'the local registry is not {"images": {IMAGE: {VERSION: {...}}}}; repair it or move it away',
                file=self.path,
            )
        return data

    def versions(self, image: str) -> list[str]:
        """Every version recorded for ``image`` (yanked ones too: their numbers stay taken)."""
        return list(self.load()["images"].get(image, {}))

    def entry(self, image: str, version: str) -> dict[str, Any] | None:
        """The recorded entry of one version, or None."""
        entry = self.load()["images"].get(image, {}).get(version)
        return entry if isinstance(entry, dict) else None

    def live_versions(self, image: str) -> list[str]:
        """The recorded versions of ``image`` that were not yanked (what a deployment may still use)."""
        return [v for v, entry in self.load()["images"].get(image, {}).items() if not entry.get("yanked")]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's exclusive lock (other processes' ``record`` calls wait)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def record(self, image: str, version: str, entry: dict[str, Any]) -> None:
        with self.locked():
            data = self.load()
            data["images"].setdefault(image, {})[version] = entry
            write_atomic(self.path, json.dumps(data, indent=2, default=str))

    def update(self, image: str, version: str, **fields: Any) -> bool:
        """Set ``fields`` on a recorded version (a field set to None is removed); False when not recorded here."""
        with self.locked():
            data = self.load()
            entry = data["images"].get(image, {}).get(version)
            if not isinstance(entry, dict):
                return False
            for key, value in fields.items():
                if value is None:
                    entry.pop(key, None)
                else:
                    entry[key] = value
            write_atomic(self.path, json.dumps(data, indent=2, default=str))
            return True

    def forget(self, image: str, versions: list[str]) -> list[str]:
        """Remove ``versions`` of ``image`` (deleted from the gallery); returns those that were recorded."""
        with self.locked():
            data = self.load()
            recorded = data["images"].get(image, {})
            gone = [v for v in versions if v in recorded]
            if gone:
                for version in gone:
                    del recorded[version]
                if not recorded:
                    del data["images"][image]
                write_atomic(self.path, json.dumps(data, indent=2, default=str))
            return gone


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk and rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
