"""Reference tables shipped as data: CUDA minimum drivers, driver branch lifecycle, Azure regions."""

from __future__ import annotations

import datetime as dt
from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files("builder.data").joinpath(name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def cuda_min_driver(cuda_major_minor: str) -> str | None:
    return _load("cuda_driver.yaml")["toolkits"].get(cuda_major_minor)


def cuda_minor_compat_driver(cuda_major: str) -> str | None:
    return _load("cuda_driver.yaml")["minor_compat"].get(cuda_major)


def known_cuda() -> list[str]:
    return list(_load("cuda_driver.yaml")["toolkits"])


def driver_branch(branch: str) -> dict[str, Any] | None:
    return _load("driver_branches.yaml")["branches"].get(branch)


def eol_warn_days() -> int:
    return int(_load("driver_branches.yaml")["warn_days"])


def regions() -> dict[str, str]:
    return _load("regions.yaml")["regions"]


def normalise_region(name: str) -> str | None:
    """Short name for ``eastus2`` / ``East US 2`` / ``EASTUS2``; None when unknown."""
    key = name.replace(" ", "").lower()
    return key if key in regions() else None


def today() -> dt.date:
    return dt.date.today()
