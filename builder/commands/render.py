"""``builder render``: write the Ansible variables (and Packer files for Azure) for one image."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli import Context, pass_ctx
from builder.output import output_option
from builder.stack.layers import TAGS


@click.command("render")
@click.argument("image")
@click.option("--target", type=click.Choice(["local", "azure"]), default="local", show_default=True,
              help="Build target the files are for.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder to write the files into.")
@click.option("--feed", default="upstream", show_default=True, metavar="upstream|stand-in|URL",
              help="Package feed: vendor repositories, the local stand-in feed, or a mirror base URL.")
@click.option("--os", "os_override", default=None, help="Render another OS's variables (e.g. debian12).")
@output_option()
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



@click.command("converge")
@click.option("--rootfs", type=click.Path(path_type=Path, file_okay=False, exists=True), required=True,
              help="Root filesystem to converge (through chroot; needs root).")
@click.option("--vars", "vars_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="Variables written by `builder render`.")
@click.option("--tags", default=None, help=f"Comma-separated layers to apply ({','.join(TAGS)}).")
@click.option("--check", "check_mode", is_flag=True, help="Dry run: report what would change.")
@click.option("--log", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Full ansible-playbook log [default: <vars folder>/converge.log].")
@output_option()
def converge_command(rootfs: Path, vars_file: Path, tags: str | None, check_mode: bool, log: Path | None,
                     as_json: bool) -> None:
    """Apply ansible/image.yml to ROOTFS with the rendered variables."""
    from dataclasses import asdict

    import builder.render  # noqa: F401  (yaml.safe_load reads the vars file's !unsafe tags as strings)
    from builder.converge import converge
    from builder.output import emit_json
    from builder.rootfs import require_tools

    require_tools("chroot")
    log = log or vars_file.parent / "converge.log"
    quiet = as_json
    result = converge(rootfs, vars_file, log=log, tags=tags.split(",") if tags else None, check_mode=check_mode,
                      on_task=None if quiet else lambda name: click.echo(f"  {name}", err=True))
    if as_json:
        emit_json({**asdict(result), "log": str(log)})
        return
    click.echo(f"ok={result.ok} changed={result.changed} failed={result.failed} unreachable={result.unreachable} "
               f"(log: {log})")


COMMANDS = [render, converge_command]
