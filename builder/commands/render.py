"""``builder render``: write the Ansible variables (and Packer files for Azure) for one image."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli import Context, pass_ctx


@click.command("render")
@click.argument("image")
@click.option("--target", type=click.Choice(["local", "azure"]), default="local", show_default=True,
              help="Build target the files are for.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder to write the files into.")
@click.option("--feed", default="upstream", show_default=True, metavar="upstream|stand-in|URL",
              help="Package feed: vendor repositories, the local stand-in feed, or a mirror base URL.")
@click.option("--os", "os_override", default=None, help="Render another OS's variables (e.g. debian12).")
@click.option("--json", "as_json", is_flag=True, help="Print the rendered variables as JSON.")
@pass_ctx
def render(ctx: Context, image: str, target: str, out_dir: Path, feed: str, os_override: str | None,
           as_json: bool) -> None:
    """Render the variables the Ansible playbook needs for IMAGE into --out."""
    from builder.output import emit_json
    from builder.render import ansible_vars, write_render

    cache = ctx.state_dir / "cache" if feed == "stand-in" else None
    options = {"os_override": os_override, "cache_dir": cache}
    written = write_render(ctx.catalog, image, target, out_dir, feed, **options)
    if as_json:
        emit_json({"files": [str(p) for p in written],
                   "vars": ansible_vars(ctx.catalog, image, target, feed, **options)})
        return
    for path in written:
        click.echo(str(path))


COMMANDS = [render]
