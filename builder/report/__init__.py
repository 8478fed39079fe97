"""``builder report BUILD_ID``: one self-contained HTML page per build (local or Azure).

``data.gather(state_dir, build_id) -> Report`` reads the build's records (``builder.report.data``);
``html.write(report, dest)`` renders it (``builder.report.html``). See docs/report.md.
"""

from __future__ import annotations

from builder.report.data import find, gather
from builder.report.html import render, write
from builder.report.model import Report

REPORT_FILE = "report.html"

__all__ = ["REPORT_FILE", "Report", "find", "gather", "render", "write"]
