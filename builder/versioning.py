"""Gallery image version numbers: ``YYYY.MMDD.N``, N the day's next free build number."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from builder.catalog.rules import check_version_name
from builder.errors import InputError

# ASCII digits only, the whole string (fullmatch): "\d" would take full-width and Arabic-Indic digits, and "$"
# a trailing newline. Azure: Major(int).Minor(int).Patch(int), each 0..2,147,483,647.
VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)", re.ASCII)


def day_prefix(day: dt.date) -> str:
    """``2026.1129`` for 29 Nov 2026 (MMDD as an integer: 5 Jan is ``2026.105``)."""
    return f"{day.year}.{day.month * 100 + day.day}"


def next_version(existing: Iterable[str], day: dt.date | None = None) -> str:
    day = day or dt.datetime.now(dt.UTC).date()
    prefix = day_prefix(day)
    taken = [int(v.rsplit(".", 1)[1]) for v in existing if VERSION.fullmatch(v) and v.rsplit(".", 1)[0] == prefix]
    return f"{prefix}.{max(taken) + 1 if taken else 0}"


def require_valid(version: str, field: str = "version") -> str:
    """``version`` when it is a valid gallery image version; else an InputError naming ``field``."""
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise InputError(
            f"invalid image version: {version!r} is not Major.Minor.Patch in ASCII digits (for example 2026.1129.0)",
            field=field,
        )
    reason = check_version_name(version)
    if reason:
        raise InputError(f"invalid image version: {reason}", field=field)
    return version


def sort_key(version: str) -> tuple[int, ...]:
    match = VERSION.fullmatch(version)
    return tuple(int(p) for p in match.groups()) if match else (-1,)


def numeric_key(version: str) -> tuple:
    """Marketplace and gallery versions: dotted numbers (``22.04.2025112001``); a non-number part sorts first."""
    return tuple(int(p) if p.isascii() and p.isdigit() else -1 for p in version.split("."))


def require_new(version: str, taken: Iterable[str], where: str) -> str:
    """``version`` when it is not in ``taken``; else an InputError saying it already exists in ``where``.

    A build captures a new image, so its version must be new: re-using one would publish another source under
    a version that already has one (``builder publish`` only accepts the same source again)."""
    if version in set(taken):
        raise InputError(f"version {version} already exists in {where}; a build captures a new image, so pick a "
                         "version that does not exist yet, or leave --version out for the next free number",
                         field="--version")
    return version

