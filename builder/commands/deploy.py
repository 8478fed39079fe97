"""Commands for the teams who deploy: reference, docs, diff, outdated."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli import Context, pass_ctx
from builder.errors import InputError
from builder.output import output_option
from builder.paths import DEFAULT_CACHE

FORMATS = ("id", "cli", "bicep", "terraform", "arm", "batch", "cyclecloud",  # = builder.reference.FORMATS
           "vmss-cli", "vmss-arm", "vmss-bicep", "vmss-terraform", "vmss-cyclecloud")


@click.command("reference")
@click.argument("image")
@click.option("--version", "version", default="latest", show_default=True,
              help="Image version (YYYY.MMDD.N) or 'latest' (the gallery's newest non-excluded version).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="id", show_default=True)
@click.option("--vm-size", default=None, help="One of the image's target SKUs [default: the first].")
@click.option("--spot", is_flag=True, help="Spot priority and eviction policy (with a checkpointing note).")
@click.option("--instances", type=click.IntRange(min=1), default=2, show_default=True,
              help="VMs in the scale set (vmss-* formats; at most 100 on InfiniBand sizes: one placement group).")
@click.option("--subscription", envvar="AZURE_SUBSCRIPTION_ID", default=None,
              help="Subscription of the gallery [env AZURE_SUBSCRIPTION_ID; default: a ${AZURE_SUBSCRIPTION_ID} "
                   "placeholder].")
@output_option()
@pass_ctx
def reference(ctx: Context, image: str, version: str, fmt: str, vm_size: str | None, spot: bool, instances: int,
              subscription: str | None, as_json: bool) -> int:
    """Print a paste-ready snippet that deploys IMAGE: id, az CLI, Bicep, Terraform, ARM, Batch or CycleCloud.

    vmss-* formats (training images only) print a scale set for multi-node training: az vmss create, ARM, Bicep,
    Terraform, or a CycleCloud Slurm nodearray.
    """
    from builder.output import emit_json
    from builder.reference import render, resolve_target
    from builder.registry import LocalRegistry

    registry = LocalRegistry(ctx.state_dir)
    published = registry.versions(image)
    yanked = registry.entry(image, version) if version and version in published else None
    if yanked and yanked.get("yanked"):
        live = registry.live_versions(image)
        raise InputError(f"version {version} of '{image}' was yanked ({yanked['yanked']}); deploy another "
                         f"({', '.join(live) if live else 'none is live'}) or `builder promote {image} {version} "
                         "--force` it first", field="--version")
    target = resolve_target(ctx.catalog, image, version, vm_size, spot, subscription, published, instances)
    text = render(target, fmt)
    if as_json:
        emit_json({"image": image, "version": target.version or "latest", "format": fmt, "vm_size": target.vm_size,
                   "image_id": target.image_id(), "security_type": target.security_type,
                   "secure_boot": target.secure_boot, "vtpm": target.vtpm,
                   "accelerated_networking": target.accelerated_networking, "infiniband": target.infiniband,
                   "placeholders": target.placeholders, "notes": target.notes,
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


def _gallery_readers(ctx: Context, image: str, sbom_places: list[Path]):
    """Version-facts reader and version lister for the image's gallery, or (None, None) without Azure settings."""
    import os

    if not os.environ.get("AZURE_SUBSCRIPTION_ID"):
        return None, None
    from builder.azure.lifecycle import Lifecycle
    from builder.azure.settings import settings_from_env
    from builder.diff import tag_facts
    from builder.errors import InputError

    life = Lifecycle(ctx.catalog, image, settings_from_env())

    def read(version: str):
        try:
            resource = life.get(version)
        except InputError:
            return None
        return tag_facts(version, resource.get("tags") or {}, sbom_places, f"gallery {life.dest.gallery}")

    def live() -> list[str]:
        return [v.version for v in life.versions() if v.state == "live"]

    return read, live


@click.command("diff")
@click.argument("image")
@click.argument("old", metavar="V1")
@click.argument("new", metavar="V2")
@click.option("--sbom", "sboms", multiple=True, type=click.Path(path_type=Path),
              help="SBOM file or folder of *.cdx.json to find gallery versions' SBOMs in (repeatable).")
@output_option()
@pass_ctx
def diff(ctx: Context, image: str, old: str, new: str, sboms: tuple[Path, ...], as_json: bool) -> int:
    """Component and package changes from V1 to V2 of IMAGE (markdown for release notes).

    V1 may be 'previous': the newest older version (built here, or live in the gallery).
    """
    from builder.diff import PREVIOUS, compare, local_facts, pick_previous, resolve, to_markdown
    from builder.output import emit_json
    from builder.registry import LocalRegistry
    from builder.versioning import require_valid

    ctx.catalog.model(image)
    require_valid(new)
    if old != PREVIOUS:
        require_valid(old)
    from builder.diff import sbom_files

    sbom_files(sboms)  # every --sbom must exist
    places = [*sboms, *([ctx.state_dir / "builds"] if (ctx.state_dir / "builds").is_dir() else [])]
    gallery_read, gallery_live = _gallery_readers(ctx, image, places)
    readers = [lambda v: local_facts(ctx.state_dir, image, v)] + ([gallery_read] if gallery_read else [])
    new_facts = resolve(image, new, readers)
    if old == PREVIOUS:
        known = LocalRegistry(ctx.state_dir).versions(image) + (gallery_live() if gallery_live else [])
        old = pick_previous(new, known)
    old_facts = resolve(image, old, readers) if old else None
    result = compare(image, old_facts, new_facts)
    if as_json:
        emit_json(result.as_dict())
    else:
        click.echo(to_markdown(result), nl=False)
    return 0


@click.command("outdated")
@click.argument("images", nargs=-1)
@click.option("--feed", default="upstream", show_default=True,
              help="Package feeds to compare pins with: upstream, stand-in or a mirror base URL (as for build).")
@click.option("--no-components", is_flag=True, help="Skip the package feed checks.")
@click.option("--no-bases", is_flag=True, help="Skip the marketplace/gallery base checks (no Azure access).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE, envvar="BUILDER_CACHE",
              show_default=True, help="--feed stand-in: the cache holding the stand-in feed (as for builder build).")
@output_option()
@pass_ctx
def outdated(ctx: Context, images: tuple[str, ...], feed: str, no_components: bool, no_bases: bool,
             cache_dir: Path, as_json: bool) -> int:
    """Images whose base or pinned components have newer releases (default: every buildable image).

    Bases need Azure settings (AZURE_SUBSCRIPTION_ID); without them only the feeds are checked.
    Exit 0 even when images are outdated; 1 when a check could not run.
    """
    import os

    from builder.commands.patch import find_outdated
    from builder.output import emit_json

    catalog = ctx.catalog
    names = list(images) or sorted(i.name for i in catalog.buildable())
    for name in names:
        catalog.model(name)  # an unknown image is exit 2 before any check
    settings = None
    if not no_bases and os.environ.get("AZURE_SUBSCRIPTION_ID"):
        from builder.azure.settings import settings_from_env

        settings = settings_from_env()

    def say(message: str) -> None:
        if not as_json:
            click.echo(message, err=True)

    report = find_outdated(catalog, names, feed, settings, components=not no_components, say=say,
                           cache_dir=cache_dir)
    if not no_bases and settings is None:
        report.note("*", "AZURE_SUBSCRIPTION_ID is not set: base images were not checked")
    if as_json:
        emit_json(report.as_dict())
    else:
        for f in report.findings:
            click.echo(f"{f.image}: {f.kind} {f.subject}: {f.current} -> {f.latest}")
        for n in report.notes:
            click.echo(f"note: {n['image']}: {n['message']}", err=True)
        for e in report.errors:
            click.echo(f"error: {e['image']}: {e['message']}", err=True)
        click.echo(f"rebuild: {', '.join(report.images) or 'nothing'}")
    return 1 if report.errors else 0


COMMANDS = [reference, docs, diff, outdated]
