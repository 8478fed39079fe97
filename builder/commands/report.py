"""``builder report BUILD_ID``: the build's HTML report (timeline, checks, components, changes, files)."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli import Context, pass_ctx
from builder.output import output_option


@click.command("report")
@click.argument("build_id")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the page here [default: <state>/builds/<id>/report.html, or the Azure build's folder].")
# -o/--output is the page's path here (release-image.yml passes it), so the format is --format
@output_option(names=("--format",), view="write the HTML page")
@pass_ctx
def report(ctx: Context, build_id: str, output: Path | None, as_json: bool) -> int:
    """Write one self-contained HTML page for build BUILD_ID and print its path.

    BUILD_ID: see `builder builds`; an Azure build's id is its folder under <state>/azure. The page has phases with
    durations, every verification check with expected and found, component versions, changes since the previous
    build of the image, links to logs and artifacts."""
    from builder.report import REPORT_FILE, gather, write

    found = gather(ctx.state_dir, build_id)
    if as_json:
        from builder.output import emit_json

        emit_json(found.as_dict())
        return 0
    dest = write(found, output if output is not None else found.directory / REPORT_FILE)
    click.echo(str(dest))
    return 0


COMMANDS = [report]
