"""File digests: one helper for SBOM tags, build manifests and cache keys."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (disks are gigabytes)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# Never build inputs, wherever they sit in a hashed tree: interpreter caches, editor backups, Ansible retry files
# and anything hidden (``.git``, ``.pytest_cache``, swap files).
CACHE_DIRS = ("__pycache__",)
CACHE_SUFFIXES = (".pyc", ".pyo", ".retry", "~", ".orig", ".rej")


def is_cache(rel: PurePosixPath) -> bool:
    """Whether a repository-relative path is a cache or scratch file rather than an input."""
    return (any(part.startswith(".") or part in CACHE_DIRS for part in rel.parts)
            or rel.name.endswith(CACHE_SUFFIXES))


def input_files(repo: Path, prefixes: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``(repo-relative POSIX path, file)`` of every input file under ``prefixes`` (folders end with ``/``, or
    single files), sorted by that path, caches left out (``is_cache``). Symbolic links count as the file they
    name; a prefix that does not exist contributes nothing."""
    found: dict[str, Path] = {}
    for prefix in prefixes:
        root = repo / prefix
        files = (p for p in root.rglob("*")) if root.is_dir() else iter([root])
        for path in files:
            if not path.is_file():
                continue
            rel = PurePosixPath(path.relative_to(repo).as_posix())
            if not is_cache(rel):
                found[str(rel)] = path
    return sorted(found.items())


def files_digest(repo: Path, prefixes: tuple[str, ...]) -> str:
    """sha256 over the sorted repo-relative paths and the SHA-256 of the contents of ``input_files``: the same
    for a copy of the tree at another absolute path, whatever the files' order on disk, times, owners or
    modes."""
    h = hashlib.sha256()
    for rel, path in input_files(repo, prefixes):
        h.update(f"{rel}\0{sha256_file(path)}\n".encode())
    return h.hexdigest()
