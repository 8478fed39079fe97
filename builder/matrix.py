"""Which images must rebuild: a GitHub Actions matrix from the catalog and a git diff."""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

from builder.catalog.loader import Catalog
from builder.errors import InputError
from builder.paths import SHARED_INPUTS


def changed_files(ref: str, cwd: Path | None = None) -> list[str]:
    result = subprocess.run(["git", "diff", "--name-only", f"{ref}...HEAD"], capture_output=True, text=True,
                            cwd=cwd, check=False)
    if result.returncode != 0:
        raise InputError(f"git cannot compare with '{ref}': {result.stderr.strip() or 'unknown ref'}",
                         field="--changed-since")
    tracked = subprocess.run(["git", "diff", "--name-only", "HEAD"], capture_output=True, text=True, cwd=cwd,
                             check=False)
    return sorted(set(result.stdout.split()) | set(tracked.stdout.split()))


def image_inputs(catalog: Catalog, name: str, seen: set[str] | None = None) -> set[str]:
    """Repository-relative paths an image's build depends on (its file chain, SKU table, base images)."""
    seen = seen or set()
    seen.add(name)
    image = catalog.images[name]
    files = {_rel(catalog.images[n].file) for n in image.chain}
    files.add(_rel(catalog.root / "skus.yaml"))
    base = image.data.get("base", {}).get("image")
    if base and base in catalog.images and base not in seen:
        files |= image_inputs(catalog, base, seen)
    return files


def _rel(path: Path) -> str:
    try:
        return str(PurePosixPath(path.resolve().relative_to(Path.cwd().resolve())))
    except ValueError:
        return str(PurePosixPath(path))


def build_matrix(catalog: Catalog, changed: list[str] | None, names: list[str] | None = None) -> dict:
    include = []
    shared_changed = changed is not None and any(f.startswith(SHARED_INPUTS) for f in changed)
    for image in sorted(catalog.buildable(), key=lambda i: i.name):
        if names and image.name not in names:
            continue
        if changed is not None and not shared_changed and not (image_inputs(catalog, image.name) & set(changed)):
            continue
        m = image.model
        include.append({"image": image.name, "os": m.os.value, "kind": m.kind.value, "purpose": m.purpose.value,
                        "build_vm_size": m.build.vm_size, "target_sku": m.target_skus[0],
                        "hardware_tests": "hardware" in m.tests.suites})
    return {"include": include}
