"""Which images must rebuild: a GitHub Actions matrix from the catalog and a git ref.

With ``--changed-since REF`` an image is in the matrix when its inputs digest (``builder.packer.chain``) in the
working tree differs from its digest at REF: the catalog and shared inputs at REF are extracted with ``git
archive`` and hashed the same way. So an edit that changes no image (a ``description``, a comment, an ``extends``
chain spelled differently) rebuilds nothing, and any edit that changes what is built rebuilds exactly the images it
reaches. Where the catalog at REF cannot be compared (it is outside the repository, or today's builder cannot load
it), the matrix falls back to the changed files: an image whose catalog files, the SKU table or a shared input
changed.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from builder.catalog.loader import Catalog, load_catalog
from builder.errors import BuilderError, InputError
from builder.paths import SHARED_INPUTS


class Changes(list):
    """The files changed since ``ref`` (repo-relative), with the ref and the repository's top folder, so that
    ``build_matrix`` can compare inputs digests instead of file names."""

    def __init__(self, files: list[str], ref: str, top: Path) -> None:
        super().__init__(files)
        self.ref = ref
        self.top = top


def _git(args: list[str], cwd: Path | None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, cwd=cwd, check=False, **kwargs)


def changed_files(ref: str, cwd: Path | None = None) -> Changes:
    result = _git(["diff", "--name-only", "--end-of-options", f"{ref}...HEAD"], cwd, text=True)
    if result.returncode != 0:
        raise InputError(f"git cannot compare with '{ref}': {result.stderr.strip() or 'unknown ref'}",
                         field="--changed-since")
    tracked = _git(["diff", "--name-only", "HEAD"], cwd, text=True)
    top = _git(["rev-parse", "--show-toplevel"], cwd, text=True).stdout.strip()
    return Changes(sorted(set(result.stdout.split()) | set(tracked.stdout.split())), ref,
                   Path(top) if top else Path(cwd or Path.cwd()))


def extract_inputs(ref: str, top: Path, paths: list[str], dest: Path) -> None:
    """The files under ``paths`` (repo-relative; folders end with ``/``) as committed at ``ref``, into ``dest``."""
    listed = _git(["ls-tree", "-r", "--name-only", "-z", "--end-of-options", ref, "--", *paths], top)
    if listed.returncode != 0:
        raise InputError(f"git cannot list '{ref}': {listed.stderr.decode(errors='replace').strip()}",
                         field="--changed-since")
    files = [f for f in listed.stdout.decode().split("\0") if f]
    present = [p for p in paths if any(f == p.rstrip("/") or f.startswith(p.rstrip("/") + "/") for f in files)]
    if not present:
        return
    with tempfile.TemporaryFile() as archive:
        result = subprocess.run(["git", "archive", "--format=tar", ref, "--", *present], stdout=archive,
                                stderr=subprocess.PIPE, cwd=top, check=False)
        if result.returncode != 0:
            raise InputError(f"git cannot archive '{ref}': {result.stderr.decode(errors='replace').strip()}",
                             field="--changed-since")
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(dest, filter="data")


def changed_images(catalog: Catalog, ref: str, top: Path) -> set[str] | None:
    """Buildable images of ``catalog`` whose inputs digest differs from the one at ``ref`` (new images included);
    None when the catalog at ``ref`` cannot be compared (outside the repository, or not loadable)."""
    from builder.packer.chain import catalog_digests, inputs_digest, shared_inputs_digest

    try:
        rel = PurePosixPath(catalog.root.resolve().relative_to(top.resolve()).as_posix())
    except ValueError:
        return None
    now = catalog_digests(catalog, top)
    with tempfile.TemporaryDirectory(prefix="builder-matrix-") as tmp:
        old_repo = Path(tmp)
        extract_inputs(ref, top, [f"{rel}/", *SHARED_INPUTS], old_repo)
        try:
            old = load_catalog(old_repo / rel)
        except BuilderError:
            return None
        old_shared = shared_inputs_digest(old_repo)
        changed = set()
        for name, digest in now.items():
            try:
                before = inputs_digest(old, name, old_repo, old_shared) if name in old.images else None
            except BuilderError:  # abstract or unknown there
                before = None
            if before != digest:
                changed.add(name)
    return changed


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
    """The matrix of buildable images (``names`` only, when given). ``changed``: None for every image; the
    ``Changes`` of ``changed_files`` for the images whose inputs digest changed; a plain list of changed files for
    the images those files reach (the fallback)."""
    include = []
    by_digest = changed_images(catalog, changed.ref, changed.top) if isinstance(changed, Changes) else None
    shared_changed = changed is not None and any(f.startswith(SHARED_INPUTS) for f in changed)
    for image in sorted(catalog.buildable(), key=lambda i: i.name):
        if names and image.name not in names:
            continue
        if by_digest is not None:
            if image.name not in by_digest:
                continue
        elif changed is not None and not shared_changed and not (image_inputs(catalog, image.name) & set(changed)):
            continue
        m = image.model
        include.append({"image": image.name, "os": m.os.value, "kind": m.kind.value, "purpose": m.purpose.value,
                        "build_vm_size": m.build.vm_size, "target_sku": m.target_skus[0],
                        "hardware_tests": "hardware" in m.tests.suites})
    return {"include": include}
