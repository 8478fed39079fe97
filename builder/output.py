"""Printing helpers: JSON for machines, rich tables for people (rich imported only when used)."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def table(title: str | None, columns: list[str], rows: list[list[Any]]):
    from rich.table import Table

    t = Table(title=title, show_lines=False, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*[("" if cell is None else str(cell)) for cell in row])
    return t
