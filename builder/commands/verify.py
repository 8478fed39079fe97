"""``builder verify``: run the static and/or hardware suites against a root filesystem or a machine."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli import Context, pass_ctx
from builder.errors import EXIT_FAILED, InputError
from builder.output import output_format, output_option

CONNECTIONS = ("chroot", "ssh", "local", "docker")


@click.command("verify")
@click.argument("image")
@click.option("--connection", type=click.Choice(CONNECTIONS), required=True,
              help="chroot (HOST is a root filesystem folder), ssh (HOST is [user@]host), local, docker "
                   "(HOST is a container).")
@click.option("--host", default=None, help="Root filesystem path, SSH host or container (not with local).")
@click.option("--suite", type=click.Choice(["static", "hardware", "all"]), default="static", show_default=True)
@click.option("--select", default="all", show_default=True,
              help="all | pre-generalize (all but hygiene) | hygiene | comma list of check groups.")
@click.option("--skus", default="auto", show_default=True,
              help="VM size for hardware expectations: auto (instance metadata, else what nvidia-smi reports) "
                   "or a name from skus.yaml.")
@click.option("--expect-version", default=None, help="Image version the manifest must carry.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JUnit XML here.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Write per-check results as JSON here ('-' for stdout, the same as -o json).")
@output_option(dest=None, json_flag=False)  # --json takes a path here; -o prints the results on stdout
@click.option("--role-settings", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Role settings (limits, sysctl) the checks compare with, as a verification bundle records them "
                   "(role-settings.json); default: this checkout's ansible/roles defaults.")
@click.option("--sudo", is_flag=True, help="Run the host's commands through sudo (SSH as a normal user).")
@click.option("--quiet", "-q", is_flag=True, help="No per-check progress lines.")
@pass_ctx
def verify(ctx: Context, image: str, connection: str, host: str | None, suite: str, select: str, skus: str,
           expect_version: str | None, junit: Path | None, json_out: Path | None, role_settings: Path | None,
           sudo: bool, quiet: bool) -> int:
    """Verify IMAGE on a host against expectations from the catalog (exit 0 pass, 1 a check failed, 2 bad input)."""
    from builder.output import emit_json
    from builder.render import require_valid_image
    from builder.stack import settings
    from builder.verify.runner import run_suite

    require_valid_image(ctx.catalog, image)  # expectations only from an image `validate` accepts
    to_stdout = json_out is not None and str(json_out) == "-"
    if to_stdout and output_format() not in ("table", "json"):
        raise InputError(f"--json - prints JSON on stdout: give it or -o {output_format()}, not both",
                         field="--output")
    progress = None if quiet else (lambda line: click.echo(line, err=True))
    result = run_suite(ctx.catalog, image, connection=connection, host=host, suite=suite, select=select,
                       junit=junit, json_out=None if to_stdout else json_out, expect_version=expect_version,
                       skus=skus, sudo=sudo, progress=progress, settings=settings.load(role_settings))
    if to_stdout or output_format() != "table":  # --json - is JSON; -o json, yaml or tsv
        emit_json(result.as_dict())
        return 0 if result.ok else EXIT_FAILED
    for failure in result.failures():
        click.echo(f"FAIL {failure.name}")
        click.echo(f"  expected: {failure.expected if failure.expected is not None else '-'}")
        click.echo(f"  found:    {failure.found if failure.found is not None else (failure.message or '-')}")
    for warning in result.warned():
        click.echo(f"WARNING {warning.name}: {warning.found}")
    verdict = "ok" if result.ok else "FAILED"
    click.echo(f"{verdict}: {image} {suite} suite ({select}) on {connection}{':' + host if host else ''}: "
               f"{result.passed} passed, {result.warnings} warnings, {result.failed} failed, {result.skipped} skipped "
               f"in {result.duration_s:.1f}s")
    return 0 if result.ok else EXIT_FAILED


COMMANDS = [verify]
