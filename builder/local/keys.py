"""Layer cache keys: a digest of everything that affects each layer's root filesystem.

A layer's key chains its parent's key with: its roles' files (``builder.stack.layers``; a test checks the
playbook's tags against it), the playbook and the shared Ansible files (helper roles such as ``package_feed``,
config), the rendered variables that are not per-component (OS, SKU facts, feed kind ...), and the pins,
packages, downloads and feeds of its own components. Per-build values (image version, git commit) are left out unless
the layer's roles use them (then that layer is rebuilt every time, rightly: it bakes them in). The role that
bakes them (``image_manifest``) has its own playbook tag, run after the layers and never snapshotted, so every
layer is reusable. Changing only a top-layer pin (e.g. dcgm-exporter) keeps every lower layer's key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from builder.paths import ANSIBLE_DIR
from builder.stack.layers import FINAL_ROLES, LAYERS, MANIFEST_ROLE, Layer

KEY_LAYOUT_VERSION = "3"  # bump when the way snapshots are made changes (2: stable stand-in feed path; 3: overlay
# diffs, so snapshots of an older builder never share a key with these)
PER_BUILD = ("builder_image_version", "builder_git_commit", "builder_image_manifest")
PER_COMPONENT = ("builder_components", "builder_packages", "builder_downloads", "builder_feeds")


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _uses_per_build(role_dir: Path) -> bool:
    for file in role_dir.rglob("*"):
        if file.is_file() and not file.is_symlink():
            text = file.read_bytes()
            if any(name.encode() in text for name in PER_BUILD):
                return True
    return False


def tree_digest(path: Path, skip: tuple[str, ...] = ()) -> str:
    """Digest of the files (relative names and contents) under ``path``; empty when it does not exist."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    if not path.is_dir():
        return h.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()):
        rel = file.relative_to(path)
        if any(rel.parts[:len(Path(s).parts)] == Path(s).parts for s in skip) or "__pycache__" in rel.parts:
            continue
        h.update(str(rel).encode() + b"\0")
        h.update((f"-> {file.readlink()}".encode() if file.is_symlink() else file.read_bytes()) + b"\0")
    return h.hexdigest()


def layer_inputs(layer: Layer, variables: dict[str, Any], ansible_dir: Path,
                 layers: tuple[Layer, ...] = LAYERS) -> dict[str, Any]:
    """What goes into one layer's key (besides the parent key), readable for the manifest and cache ls."""
    components = variables.get("builder_components", {})
    packages = variables.get("builder_packages", {})
    downloads = variables.get("builder_downloads", {})
    mine = [c for c in layer.components if c in components]
    feeds_used = sorted({p["feed"] for c in mine for p in packages.get(c, [])})
    shared = {k: v for k, v in variables.items() if k not in PER_BUILD and k not in PER_COMPONENT}
    roles = list(layer.roles)
    assigned = {f"roles/{r}" for r in [*(r for known in layers for r in known.roles), MANIFEST_ROLE, *FINAL_ROLES]}
    if any(_uses_per_build(ansible_dir / "roles" / role) for role in roles):
        shared.update({k: variables.get(k) for k in PER_BUILD})
    return {
        "layer": layer.name,
        "roles": {role: tree_digest(ansible_dir / "roles" / role) for role in roles},
        "ansible": tree_digest(ansible_dir, skip=tuple(sorted(assigned))),
        "shared_vars": _digest(shared),
        "components": {c: components[c] for c in mine},
        "packages": {c: packages.get(c, []) for c in mine},
        "downloads": {c: downloads[c] for c in mine if c in downloads},
        "feeds": {f: variables.get("builder_feeds", {}).get(f) for f in feeds_used},
    }


def feed_neutral(variables: dict[str, Any]) -> dict[str, Any]:
    """``variables`` with the feed's base URL replaced by a stable token.

    The stand-in feed lives under a folder named by a digest of every catalog pin, so its URL changes with
    any pin; what a layer gets from it is already keyed by that layer's own packages, plus the feed
    generator's code and manifest (in the token). A mirror or upstream feed keeps its URL as the token.
    """
    base = variables.get("package_feed_base")
    if not base:
        return variables
    neutral = json.loads(json.dumps(variables, default=str).replace(base, "@FEED@"))
    if variables.get("package_feed") == "stand-in":
        from builder import standin

        neutral["package_feed_base"] = "stand-in:" + _digest(tree_digest(Path(standin.__file__)),
                                                             tree_digest(standin.MANIFEST))
        for download in neutral.get("builder_downloads", {}).values():
            # A stand-in tarball is made from the generator (in the token) and the component's pin (in the
            # layer's components); its checksum differs between feed builds (archive timestamps).
            download.pop("sha256", None)
        for feed in neutral.get("builder_feeds", {}).values():
            for checksum in (feed.get("checksums") or {}).values():  # stand-in release .debs, likewise
                checksum.pop("sha256", None)
    else:
        neutral["package_feed_base"] = base
    return neutral


def per_build_layers(variables: dict[str, Any], ansible_dir: Path = ANSIBLE_DIR,
                     layers: tuple[Layer, ...] = LAYERS) -> set[str]:
    """Layers whose roles bake per-build values in: their snapshots could never be reused."""
    return {layer.name for layer in layers
            if any(_uses_per_build(ansible_dir / "roles" / role) for role in layer.roles)}


def layer_keys(base_key: str, variables: dict[str, Any], ansible_dir: Path = ANSIBLE_DIR,
               layers: tuple[Layer, ...] = LAYERS) -> list[tuple[str, str]]:
    """``[(layer name, key)]`` in build order; each key covers its parent's."""
    keys = []
    variables = feed_neutral(variables)
    parent = _digest(KEY_LAYOUT_VERSION, "base", base_key)
    for layer in layers:
        parent = _digest(parent, layer_inputs(layer, variables, ansible_dir, layers))
        keys.append((layer.name, parent[:20]))
    return keys


def inputs_digest(base_key: str, variables: dict[str, Any], ansible_dir: Path = ANSIBLE_DIR) -> str:
    """One digest of every build input (layers plus the roles outside them: manifest, generalize), for the build
    manifest."""
    top = layer_keys(base_key, variables, ansible_dir)[-1][1]
    variables = feed_neutral(variables)
    outside = sorted({MANIFEST_ROLE, *FINAL_ROLES})
    return _digest(top, *(tree_digest(ansible_dir / "roles" / role) for role in outside),
                   {k: v for k, v in variables.items() if k not in PER_BUILD})
