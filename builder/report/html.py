"""Render a ``Report`` as one self-contained HTML page (Jinja2, autoescaping on: catalog and tool text is untrusted).

Inline CSS only; no script, font, image or other URL is loaded: a Content-Security-Policy of ``default-src 'none'``
says so to the browser, so the page works offline and nothing in it can run. Links to logs and artifacts are
relative to the page's folder (they resolve when the build folder is copied or uploaded whole).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, StrictUndefined

from builder.report.model import Link, Report
from builder.report.template import TEMPLATE

PACKAGE_ROWS = 2000  # package changes listed; more are counted


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def size(num: int | None) -> str:
    if num is None:
        return "missing"
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def href(link: Link, base: Path) -> str:
    """The link's path relative to ``base`` (the page's folder), percent-quoted: never a scheme, never markup."""
    try:
        relative = os.path.relpath(link.path, base)
    except ValueError:
        relative = str(link.path)
    return quote(Path(relative).as_posix(), safe="/")


def _environment() -> Environment:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["duration"] = duration
    env.filters["size"] = size
    env.filters["utc"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "-"
    return env


def render(report: Report, base: Path | None = None) -> str:
    """The page's HTML; ``base``: the folder the page is written to (default: the build folder)."""
    base = (base or report.directory).resolve()
    total = max((p.start + p.seconds for p in report.phases), default=0.0) or 1.0
    counts = {o: sum(run.count(o) for run in report.runs) for o in ("passed", "warning", "failed", "skipped")}
    packages = report.changes.packages
    return _environment().from_string(TEMPLATE).render(
        r=report, total=total, counts=counts, failures=report.failures(), link=lambda item: href(item, base),
        package_changes=(packages or [])[:PACKAGE_ROWS], package_more=max(0, len(packages or []) - PACKAGE_ROWS),
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))


def write(report: Report, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(render(report, dest.parent), encoding="utf-8")
    os.replace(tmp, dest)
    return dest
