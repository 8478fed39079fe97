"""Commands for the teams who deploy: reference, docs, diff, outdated."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli import Context, pass_ctx

FORMATS = ("id", "cli", "bicep", "terraform", "arm", "batch", "cyclecloud")  # = builder.reference.FORMATS


@click.command("reference")
@click.argument("image")
@click.option("--version", "version", default="latest", show_default=True,
              help="Image version (YYYY.MMDD.N) or 'latest' (the gallery's newest non-excluded version).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="id", show_default=True)
@click.option("--vm-size", default=None, help="One of the image's target SKUs [default: the first].")
@click.option("--spot", is_flag=True, help="Spot priority and eviction policy (with a checkpointing note).")
@click.option("--subscription", envvar="AZURE_SUBSCRIPTION_ID", default=None,
              help="Subscription of the gallery [env AZURE_SUBSCRIPTION_ID; default: a ${AZURE_SUBSCRIPTION_ID} "
                   "placeholder].")
@click.option("--json", "as_json", is_flag=True, help="Print the snippet and its notes as JSON.")
@pass_ctx
def reference(ctx: Context, image: str, version: str, fmt: str, vm_size: str | None, spot: bool,
              subscription: str | None, as_json: bool) -> int:
    """Print a paste-ready snippet that deploys IMAGE: id, az CLI, Bicep, Terraform, ARM, Batch or CycleCloud."""
    from builder.output import emit_json
    from builder.reference import render, resolve_target
    from builder.registry import LocalRegistry

    published = LocalRegistry(ctx.state_dir).versions(image)
    target = resolve_target(ctx.catalog, image, version, vm_size, spot, subscription, published)
    text = render(target, fmt)
    if as_json:
        emit_json({"image": image, "version": target.version or "latest", "format": fmt, "vm_size": target.vm_size,
                   "image_id": target.image_id(), "placeholders": target.placeholders, "notes": target.notes,
                   "snippet": text})
    else:
        click.echo(text, nl=False)
    return 0


@click.command("docs")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Where to write [default: docs/images.md next to the catalog folder].")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the file is stale.")
@pass_ctx
def docs(ctx: Context, output: Path | None, check: bool) -> int:
    """Generate docs/images.md (images x components x versions x target SKUs) from the catalog."""
    from builder.docs_gen import is_stale, render_images_md, write_atomic

    path = output or ctx.catalog_root.resolve().parent / "docs" / "images.md"
    text = render_images_md(ctx.catalog)
    if check:
        if is_stale(path, text):
            click.echo(f"{path}: stale: regenerate it with `builder docs` and commit it", err=True)
            return 1
        click.echo(f"{path}: up to date")
        return 0
    if not is_stale(path, text):
        click.echo(f"{path}: up to date")
        return 0
    write_atomic(path, text)
    click.echo(f"wrote {path}")
    return 0


COMMANDS = [reference, docs]
