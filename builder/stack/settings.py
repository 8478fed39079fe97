"""Role settings the static suite checks: values a role sets on every image (limits, sysctl, ROCm device
mode), read from the role's documented defaults (``ansible/roles/<role>/defaults/main.yml``), the single place
they are written.

Where the roles are not beside the package (the Azure build VM runs verification from an installed copy), the
verification bundle carries them as ``role-settings.json`` (``write`` / ``load``); a missing source is an error,
never a silently skipped check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.errors import InputError
from builder.paths import ROLES_DIR

FILE_NAME = "role-settings.json"
LIMITS = ("memlock", "nofile", "stack")
AMDGPU_LOADER = ("unit", "loader", "options", "unload_first")
# The keys from_roles returns; a bundle's role-settings.json must carry each.
KEYS = ("limits", "sysctl", "rocm_sysctl", "rocm_device_mode", "rocm_amdgpu", "exporter_conflicts")


def _defaults(roles_dir: Path, role: str) -> dict[str, Any]:
    import yaml

    path = roles_dir / role / "defaults" / "main.yml"
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError(f"role defaults not found: {path}; verification needs the roles' settings (run from a "
                         f"checkout, or pass the bundle's {FILE_NAME} with --role-settings)", file=path) from None


def from_roles(roles_dir: Path = ROLES_DIR) -> dict[str, Any]:
    """``{limits, sysctl, rocm_sysctl, rocm_device_mode, rocm_amdgpu, exporter_conflicts}`` from the roles'
    defaults."""
    common = _defaults(roles_dir, "common")
    rocm = _defaults(roles_dir, "rocm")
    monitoring = _defaults(roles_dir, "monitoring")
    return {
        "limits": {item: common[f"common_{item}"] for item in LIMITS if f"common_{item}" in common},
        "sysctl": {key: str(value) for key, value in (common.get("common_sysctl") or {}).items()},
        "rocm_sysctl": {key: str(value) for key, value in (rocm.get("rocm_sysctl") or {}).items()},
        "rocm_device_mode": rocm.get("rocm_device_mode"),
        "rocm_amdgpu": {key: rocm.get(f"rocm_amdgpu_{key}") for key in AMDGPU_LOADER},
        "exporter_conflicts": list(monitoring.get("monitoring_dcgm_exporter_conflicts") or []),
    }


def write(dest: Path, roles_dir: Path = ROLES_DIR) -> Path:
    dest.write_text(json.dumps(from_roles(roles_dir), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dest


def load(path: Path | None = None) -> dict[str, Any]:
    """The settings recorded in ``path`` (a bundle's ``role-settings.json``), else from this checkout's roles."""
    if path is None:
        return from_roles()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read role settings: {exc}", file=path, field="--role-settings") from None
    missing = [key for key in KEYS if key not in data]
    if not isinstance(data, dict) or missing:
        raise InputError(f"not a role settings file (missing {', '.join(missing)})", file=path,
                         field="--role-settings")
    return data
