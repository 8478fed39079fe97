"""One build per image at a time: an ``flock`` on ``<state>/locks/<image>.lock`` held for the whole build."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType

from builder.errors import OperationError


class BuildLock:
    """Exclusive, non-blocking; released by the kernel if the process dies, so no stale locks."""

    def __init__(self, state_dir: Path, image: str, build_id: str) -> None:
        self.path = state_dir / "locks" / f"{image}.lock"
        self.image = image
        self.build_id = build_id
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            os.close(fd)
            who = (f" (build {holder.get('build_id')}, pid {holder.get('pid')}, started "
                   f"{time.strftime('%H:%M:%S', time.localtime(holder.get('since', 0)))})") if holder else ""
            raise OperationError(f"another build of {self.image} is running{who}; wait for it to finish or stop it "
                                 f"(lock: {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"build_id": self.build_id, "pid": os.getpid(), "since": time.time()}).encode())
        self._fd = fd

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
