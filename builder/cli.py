"""The ``builder`` command line: a click group whose commands live in ``builder/commands/*.py``.

Each module there defines ``COMMANDS`` (a list of click commands). Modules import heavy libraries
(pydantic, Azure SDK, Ansible) inside their command functions so that ``builder --help`` stays fast.
"""

from __future__ import annotations

import errno
import importlib
import math
import os
import pkgutil
import re
import sys
from pathlib import Path

import click

from builder.errors import EXIT_INPUT, EXIT_INTERRUPTED, BuilderError, InputError
from builder.paths import DEFAULT_CATALOG, DEFAULT_STATE, IMAGES_DIR


class Context:
    """Shared state for commands: where the catalog is, loaded on first use."""

    def __init__(self, catalog_dir: Path | None, state_dir: Path) -> None:
        self.catalog_dir = catalog_dir
        self.state_dir = state_dir
        self._catalog = None

    @property
    def catalog_root(self) -> Path:
        if self.catalog_dir is not None:
            return self.catalog_dir
        if DEFAULT_CATALOG.is_dir():
            return DEFAULT_CATALOG
        return IMAGES_DIR

    @property
    def catalog(self):
        if self._catalog is None:
            from builder.catalog.loader import load_catalog

            self._catalog = load_catalog(self.catalog_root)
        return self._catalog


pass_ctx = click.make_pass_decorator(Context)

# Seconds-valued settings read from the environment by the Azure commands: checked before any command runs, so a
# `nan` or `inf` is exit 2 instead of a traceback from time.sleep() half-way through a publish.
INTERVAL_VARIABLES = ("BUILDER_PROGRESS_INTERVAL", "BUILDER_ARM_POLLING_INTERVAL", "BUILDER_ARM_RETRY_BACKOFF")


def check_environment(env: dict[str, str] | os._Environ) -> None:
    for name in INTERVAL_VARIABLES:
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise InputError(f"expected a finite number of seconds >= 0, got {raw[:40]!r}", file="environment",
                             field=name)


def _os_message(exc: OSError) -> str:
    """One line for a failed file operation: what, where, why (ENOSPC: the disk is full)."""
    where = f" {exc.filename}" if exc.filename else ""
    why = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        why += " (the disk is full; nothing was left half-written)"
    return f"cannot write or read{where}: {why}"


def report(exc: BaseException) -> int:
    """Print ``exc`` as builder's one-line error and return its exit code (no traceback)."""
    if isinstance(exc, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    if isinstance(exc, BuilderError):
        click.echo(f"error: {exc}" if "\n" not in str(exc) else f"error:\n{exc}", err=True)
        return exc.exit_code
    assert isinstance(exc, OSError)
    click.echo(f"error: {_os_message(exc)}", err=True)
    return EXIT_INPUT


class BuilderGroup(click.Group):
    """The command group: expected failures become one message and an exit code here, so that ``main`` and
    click's own standalone mode (``CliRunner``, tests) behave alike: 2 for bad input and unusable paths (an
    unwritable ``--out``, a full disk), 1 for a failed operation, 130 for Ctrl-C/SIGTERM."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except BrokenPipeError:
            raise
        except (BuilderError, KeyboardInterrupt, OSError) as exc:
            ctx.exit(report(exc))


@click.group(cls=BuilderGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--catalog", "catalog_dir", type=click.Path(path_type=Path), default=None,
              envvar="BUILDER_CATALOG", help="Catalog folder with *.yaml images and skus.yaml [default: images/].")
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE, envvar="BUILDER_STATE",
              show_default=True, help="Where builds, caches and logs are kept.")
@click.version_option(package_name="builder")
@click.pass_context
def app(ctx: click.Context, catalog_dir: Path | None, state_dir: Path) -> None:
    """Build, verify and publish AI VM images for Azure from a declarative catalog."""
    if state_dir.exists() and not state_dir.is_dir():
        raise InputError(f"'{state_dir}' exists and is not a folder", field="--state-dir")
    if catalog_dir is not None and catalog_dir.exists() and not catalog_dir.is_dir():
        raise InputError(f"'{catalog_dir}' is not a folder", field="--catalog")
    check_environment(os.environ)
    ctx.obj = Context(catalog_dir, state_dir)


def _register() -> None:
    package = importlib.import_module("builder.commands")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"builder.commands.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            app.add_command(command)


def first_sentence(help_text: str | None) -> str:
    """A command's summary: the first sentence of its help, whole (click would cut it at the width with '...')."""
    import inspect

    paragraph = " ".join(inspect.cleandoc(help_text or "").split("\n\n")[0].split())
    return re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]


def _add_help(command: click.Command, path: str) -> None:
    """Whole summaries in the command listings and an Examples: section (builder/examples.py) on every command."""
    from builder.examples import EXAMPLES, epilog

    if command.short_help is None and command.help:
        command.short_help = first_sentence(command.help)
    if command.epilog is None and path in EXAMPLES:
        command.epilog = epilog(EXAMPLES[path])
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _add_help(sub, f"{path} {name}".strip())


_register()
_add_help(app, "")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry: map errors to exit codes, never a traceback for expected failures."""
    from builder.quiet import quiet_libraries

    quiet_libraries()  # no SDK log records or library warnings on the terminal (issue 16)
    try:
        result = app.main(args=argv, prog_name="builder", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code else EXIT_INPUT
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (BuilderError, KeyboardInterrupt, OSError) as exc:
        return report(exc)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
