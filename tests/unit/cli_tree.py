"""Every command of the CLI, subgroups included (shared by the help and output tests)."""

from __future__ import annotations

import click

from builder.cli import app


def walk(group: click.Group = app, prefix: str = ""):
    """``(path, command)`` for every command below ``group``, e.g. ``("cache ls", <Command ls>)``."""
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        yield path, command
        if isinstance(command, click.Group):
            yield from walk(command, path)
