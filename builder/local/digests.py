"""SHA-256 of build artifacts, the large ones computed in a background thread while later phases run."""

from __future__ import annotations

import threading
from pathlib import Path

from builder.hashing import sha256_file


class _Digest(threading.Thread):
    """SHA-256 of a file in a background thread (hashlib releases the GIL): the manifest needs the VHD's digest
    and the boot test, which only reads the VHD, leaves a core free for it."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True, name=f"sha256 {path.name}")
        self.path = path
        self.value = ""
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = sha256_file(self.path)
        except BaseException as exc:  # re-raised where the digest is needed
            self.error = exc

    def result(self) -> str:
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


class Digests:
    """Artifact digests: ``start(path)`` hashes a file that will not change in the background; ``sha256(path)``
    returns its digest (waiting for it), or hashes any other file now."""

    def __init__(self) -> None:
        self._running: dict[str, _Digest] = {}

    def start(self, path: Path) -> None:
        self._running[str(path)] = _Digest(path)

    def sha256(self, path: Path) -> str:
        digest = self._running.get(str(path))
        return digest.result() if digest is not None else sha256_file(path)
