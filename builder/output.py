"""Printing helpers: JSON for machines, rich tables for people (rich imported only when used)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# C0 and C1 control characters (ESC, BEL, CSI 0x9b, ...): a terminal acts on them, so text that comes from a
# gallery tag, a catalog or a user must not reach it raw (an OSC 8 link, a screen clear, a forged line).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: Any) -> str:
    """``value`` as text a terminal only prints: control characters removed, tabs and newlines as spaces."""
    return _CONTROLS.sub("", str(value)).replace("\t", " ").replace("\n", " ")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")


# Width for output that is not a terminal (a pipe, a CI log): wide enough that no table is cut or wrapped
# (rich falls back to 80 columns there); a table is only as wide as its content.
PIPE_WIDTH = 4096


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if getattr(stream, "isatty", lambda: False)() else PIPE_WIDTH
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def text(value: Any):
    """A rich ``Text`` of :func:`plain` ``value``: printed as is, never read as console markup (``[red]``)."""
    from rich.text import Text

    return Text(plain(value))


def table(title: str | None, columns: list[str], rows: list[list[Any]]):
    from rich.table import Table

    t = Table(title=text(title) if title is not None else None, show_lines=False, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*[text("" if cell is None else cell) for cell in row])
    return t
