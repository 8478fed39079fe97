"""Text from gallery tags and the catalog reaches the terminal as text (issue 18: ``versions``/``yank`` tags)."""

from __future__ import annotations

import io

from rich.console import Console

from builder import output
from builder.output import table

HOSTILE = "ok\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\x1b[2J\x9b31m [red]styled[/red] [link=x]y[/link]"


def _printed(rows, title="img"):
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system=None, width=400).print(table(title, ["tags"], rows))
    return out.getvalue()


def test_table_cells_drop_control_characters_and_keep_markup_as_text():
    printed = _printed([[HOSTILE]], title="t\x1b[2J [bold]x[/bold]")
    assert "\x1b]" not in printed and "\x07" not in printed and "\x9b" not in printed and "\x1b[2J" not in printed
    assert "[red]styled[/red]" in printed and "[link=x]y[/link]" in printed and "[bold]x[/bold]" in printed


def test_plain_keeps_printable_text():
    assert output.plain("builder.yanked=driver regression (ü)") == "builder.yanked=driver regression (ü)"
    assert output.plain("a\nb\tc\x00d") == "a b cd"
