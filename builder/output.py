"""Printing helpers: JSON (or YAML, TSV) for machines, rich tables for people (rich imported only when used)."""

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
    """Print a command's data: JSON, or YAML / TSV when the command was run with ``-o yaml`` / ``-o tsv``
    (:func:`output_option`); JSON outside such a command."""
    fmt = output_format(default="json")
    if fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(to_data(data), sort_keys=False, allow_unicode=True, default_flow_style=False))
    elif fmt == "tsv":
        sys.stdout.write(tsv_lines(data))
    else:
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


# ---- Output formats: ``-o/--output json|yaml|table|tsv`` as the Azure CLI has them -------------------------
# The Azure CLI's --output (-o) values: json, yaml ("a human-readable alternative to JSON"), table ("ASCII table
# with keys as column headings") and tsv ("Tab-separated values, with no keys"), from
# https://learn.microsoft.com/cli/azure/format-output-azure-cli. builder's table is its default human view;
# ``--json`` stays, as a synonym of ``-o json``.
FORMATS = ("json", "yaml", "table", "tsv")
_META_KEY = "builder.output"


def output_format(default: str = "table") -> str:
    """The format the running command was asked for (``default`` outside a command that has the option)."""
    import click

    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_META_KEY, default) if ctx is not None else default


def _check_format(ctx, param, value: str | None) -> str | None:
    """``-o`` callback: a bad value is one line and exit 2 (InputError), not click's usage block."""
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in FORMATS:
        from builder.errors import InputError

        raise InputError(f"invalid value {plain(value)[:40]!r}: expected one of {', '.join(FORMATS)}",
                         field="--output")
    return lowered


def output_option(*, tabular: bool = False, dest: str | None = "as_json", names: tuple[str, ...] = ("-o", "--output"),
                  json_flag: bool = True, view: str = "the text view"):
    """Decorator adding ``-o/--output FORMAT`` and ``--json`` (same as ``-o json``) to a command.

    The chosen format is kept in the click context (:func:`output_format`); :func:`emit_json` prints data in it and
    :func:`print_table` prints a table or its TSV rows. The command's ``dest`` parameter (``as_json``) is True when
    it should produce data rather than its human view: json and yaml, and tsv when the command is not ``tabular``
    (its tsv is then the data's values, see :func:`tsv_lines`). ``dest=None`` passes nothing (the command reads
    :func:`output_format`); ``json_flag=False`` leaves ``--json`` out (a command whose ``--json`` takes a path);
    ``view`` says in the help what table is for this command.
    """
    import functools

    import click

    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, output_format=None, json_synonym=False, **kwargs):
            if json_synonym and output_format not in (None, "json"):
                from builder.errors import InputError

                raise InputError(f"--json is -o json: give one format, not --json and -o {output_format}",
                                 field="--output")
            fmt = "json" if json_synonym else (output_format or "table")
            click.get_current_context().meta[_META_KEY] = fmt
            if dest is not None:
                kwargs[dest] = fmt in ("json", "yaml") or (fmt == "tsv" and not tabular)
            return f(*args, **kwargs)

        tsv = ("tsv: the table's rows, tab-separated, no header" if tabular else
               "tsv: the values of the JSON data, tab-separated, one line per item")
        if json_flag:
            wrapper = click.option("--json", "json_synonym", is_flag=True, help="Same as -o json.")(wrapper)
        wrapper = click.option(*names, "output_format", default=None, callback=_check_format,
                               metavar="[" + "|".join(FORMATS) + "]",
                               help=f"Output format [default: table, {view}]; {tsv}.")(wrapper)
        return wrapper

    return decorate


def to_data(data: Any) -> Any:
    """``data`` as plain JSON types, exactly what :func:`emit_json` prints as JSON (``default=str``)."""
    return json.loads(json.dumps(data, default=str))


def tsv_cell(value: Any) -> str:
    """One TSV field: backslash, tab, newline and carriage return escaped (``\\\\ \\t \\n \\r``), other control
    characters removed, so that a value never splits a row or a column."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"), default=str)
    escaped = str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return _CONTROLS.sub("", escaped)


def tsv_row(cells: list[Any]) -> str:
    return "\t".join(tsv_cell(c) for c in cells) + "\n"


def tsv_lines(data: Any) -> str:
    """The TSV of a command's data (builder's rule, no keys as in az): one line per item of a list, else one line;
    a line holds an object's values in its key order (nested objects and lists as compact JSON)."""
    items = data if isinstance(data, list) else [data]
    out = []
    for item in to_data(items):
        cells = list(item.values()) if isinstance(item, dict) else item if isinstance(item, list) else [item]
        out.append(tsv_row(cells))
    return "".join(out)


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A table on stdout: rich's table, or with ``-o tsv`` only its rows, tab-separated (no title, no header)."""
    if output_format() == "tsv":
        sys.stdout.write("".join(tsv_row(["" if cell is None else cell for cell in row]) for row in rows))
        return
    console().print(table(title, columns, rows))
