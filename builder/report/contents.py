"""What a build contains, as its files record it: component versions and SBOM packages of a local build folder
or an Azure build folder (``builder.report.data`` for this build, ``builder.report.changes`` for the previous)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

AZURE_FOLDER = re.compile(r"(?P<image>.+)-(?P<version>\d+\.\d+\.\d+)-(?P<stamp>\d{8}T\d{6})")
# The file names builder.render, builder.packer.azure and builder.packer.render write (a test keeps them equal;
# imported by name they would load the Packer driver for every local report).
VARS_FILE = "ansible-vars.yml"  # builder.render.VARS_FILE
PACKER_LOG = "packer-build.log"  # builder.packer.azure.BUILD_LOG
SBOM_FILE = "sbom.cdx.json"  # builder.packer.render.SBOM_FILE


class _VarsLoader(yaml.SafeLoader):
    """Reads a rendered variables file: ``!unsafe`` strings (builder.render) as plain strings."""


_VarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def read_json(path: Path, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name}: not readable ({exc})")
        return None


def rendered_components(path: Path, notes: list[str]) -> dict[str, str]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_VarsLoader)  # a SafeLoader
    except (OSError, yaml.YAMLError) as exc:
        notes.append(f"{path.name}: not readable ({exc})")
        return {}
    manifest = data.get("builder_image_manifest") if isinstance(data, dict) else None
    comps = manifest.get("components") if isinstance(manifest, dict) else None
    return {str(k): str(v) for k, v in comps.items()} if isinstance(comps, dict) else {}


def sbom_packages(path: Path) -> dict[str, str]:
    """``name -> version`` of every component of a CycloneDX JSON SBOM (dpkg packages and downloads), as
    ``builder diff`` reads it (``builder.diff.sbom_packages``, a command backend this module may not import)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise ValueError("not a CycloneDX SBOM (bomFormat is not 'CycloneDX')")
    return {str(c["name"]): str(c.get("version", "")) for c in doc.get("components") or []
            if isinstance(c, dict) and c.get("name")}


def read_sbom(path: Path | None, notes: list[str]) -> tuple[dict[str, str] | None, str]:
    """The SBOM's packages and its file name, or (None, "") without one; an unreadable one becomes a note."""
    if path is None or not path.is_file():
        return None, ""
    try:
        return sbom_packages(path), path.name
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name}: not readable ({exc})")
        return None, ""


def rebase(recorded: Path | str, folder: Path) -> Callable[[str | Path], Path]:
    """Map a path the record names inside its recorded build folder to the same file in ``folder`` (where the
    record is now: a state folder copied, moved or downloaded as an artifact); other paths stay as they are."""
    recorded = Path(recorded)

    def here(path: str | Path) -> Path:
        path = Path(path)
        try:
            return folder / path.relative_to(recorded)
        except ValueError:
            return path

    return here


def local_contents(folder: Path, artifacts: dict[str, Path], notes: list[str]) -> tuple[dict, str, dict | None, str]:
    """(components, where from, packages or None, where from) of a local build folder (``artifacts`` rebased)."""
    components: dict[str, str] = {}
    source = ""
    manifest = artifacts.get("manifest") or folder / "manifest.json"
    if manifest.is_file():
        data = read_json(manifest, notes)
        if isinstance(data, dict) and isinstance(data.get("components"), dict):
            components, source = {str(k): str(v) for k, v in data["components"].items()}, manifest.name
    if not source and (folder / "render" / VARS_FILE).is_file():
        components = rendered_components(folder / "render" / VARS_FILE, notes)
        source = f"render/{VARS_FILE} (the catalog's pins: the build has written no manifest.json)"
    sboms = [artifacts["sbom"]] if artifacts.get("sbom") else sorted(folder.glob("*.cdx.json"))
    packages, package_source = read_sbom(sboms[0] if sboms else None, notes)
    return components, source, packages, package_source


def azure_contents(folder: Path, notes: list[str]) -> tuple[dict, str, dict | None, str]:
    from builder.stack import tags as T

    components: dict[str, str] = {}
    source = ""
    manifest = folder / "packer-manifest.json"
    if manifest.is_file():
        data = read_json(manifest, notes)
        builds = data.get("builds") if isinstance(data, dict) else None
        custom = builds[-1].get("custom_data") if isinstance(builds, list) and builds and isinstance(
            builds[-1], dict) else None
        if isinstance(custom, dict):
            components = T.components_from_tags({str(k): str(v) for k, v in custom.items()})
            source = "packer-manifest.json (the gallery version's component tags)"
    if not source and (folder / VARS_FILE).is_file():
        components = rendered_components(folder / VARS_FILE, notes)
        source = f"{VARS_FILE} (the catalog's pins: Packer wrote no manifest)"
    packages, package_source = read_sbom(folder / SBOM_FILE if (folder / SBOM_FILE).is_file() else None, notes)
    return components, source, packages, package_source
