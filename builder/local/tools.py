"""Running external tools with output appended to a log; failures become ``OperationError`` naming the log."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from builder.errors import OperationError


def run(command: Sequence[str], log: Path, what: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``command``; stdout and stderr go to ``log``; a non-zero exit raises with the log's path."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(str(c) for c in command)}\n".encode())
        out.flush()
        result = subprocess.run([str(c) for c in command], stdout=out, stderr=subprocess.STDOUT, check=False,
                                **kwargs)
    if result.returncode != 0:
        raise OperationError(f"{what or command[0]} failed (exit {result.returncode})", log)
    return result


def output(command: Sequence[str], **kwargs) -> str:
    """Stdout of a command that must succeed (short queries such as ``dpkg-query``)."""
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise OperationError(f"{command[0]} failed (exit {result.returncode}): {result.stderr.strip()[:500]}")
    return result.stdout


def remove(path: Path) -> None:
    """Unmount anything left under ``path``, then delete it without crossing into other file systems."""
    from builder.rootfs import unmount_all

    if not path.exists() and not path.is_symlink():
        return
    unmount_all(path)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False, capture_output=True)
