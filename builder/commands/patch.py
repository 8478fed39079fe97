"""``builder patch``: hands-off patching of outdated images (``builder.patching``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from builder.cli import Context, pass_ctx
from builder.errors import EXIT_FAILED, InputError
from builder.output import output_option
from builder.paths import DEFAULT_CACHE


@click.command("patch")
@click.argument("images", nargs=-1)
@click.option("--target", type=click.Choice(["local", "azure"]), default=None,
              help="Build with: local (this machine; publishes to the environment's emulator or the local gallery) "
                   "or azure (Packer) [default: as for builder build].")
@click.option("--feed", default="upstream", show_default=True,
              help="Package feed for the checks and the builds: upstream, stand-in (local only) or a mirror base URL.")
@click.option("--no-components", is_flag=True, help="Skip the package feed checks (bases only).")
@click.option("--no-boot-test", is_flag=True, help="Local target: skip the QEMU boot test of each build.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE, envvar="BUILDER_CACHE",
              show_default=True, help="Local target: base trees, the stand-in feed and layer snapshots.")
@click.option("--dry-run", is_flag=True, help="Only show what would be built (checks and the gallery are read).")
@output_option()
@pass_ctx
def patch(ctx: Context, images: tuple[str, ...], target: str | None, feed: str, no_components: bool,
          no_boot_test: bool, cache_dir: Path, dry_run: bool, as_json: bool) -> int:
    """Rebuild, verify and stage every outdated image (default: every buildable one), with release notes.

    A newer marketplace base, a newer live version of a catalog base image or a newer release of a pinned package
    (as `builder outdated` reports) starts a build; the verified build is published staged (excluded from latest)
    and tagged with its release notes (`builder diff` against the current latest and the triggering changes), also
    written to <state>/patches/IMAGE/VERSION.md. Nothing is promoted. A rerun for the same inputs builds nothing.
    Exit 1 when a build, a verification or a check failed (the other images still go on).
    """
    from builder import patching
    from builder.commands.build import _feed, default_target
    from builder.output import emit_json

    feed = _feed(feed)
    target = target or default_target()
    catalog = ctx.catalog
    names = list(dict.fromkeys(images)) or sorted(i.name for i in catalog.buildable())
    for name in names:
        if catalog.model(name).abstract:
            raise InputError(f"'{name}' is abstract: it is never built", field="IMAGES")
    state_dir = ctx.state_dir

    def say(message: str) -> None:
        if not as_json:
            click.echo(message, err=True)

    if target == "azure":
        build, gallery = _azure(ctx, feed, dry_run)
    else:
        build, gallery = _local(ctx, feed, cache_dir, not no_boot_test, dry_run)
    with gallery() as settings:
        report = find_outdated(catalog, names, feed, settings, components=not no_components, say=say,
                               cache_dir=cache_dir)
    result = patching.run(catalog, report, build, differ(state_dir), gallery, state_dir, dry_run=dry_run, say=say)
    if as_json:
        emit_json(result.as_dict())
    else:
        _print(result)
    return 0 if result.ok else EXIT_FAILED


def find_outdated(catalog, names: list[str], feed: str, settings, components: bool = True,
                  say: Callable[[str], None] = lambda _m: None, cache_dir: Path | None = None):
    """``builder outdated`` for ``names``: package feeds, then marketplace and gallery bases through ``settings``
    (None: bases are not checked)."""
    from builder.outdated import Report, check_bases, check_components

    report = Report()
    if components:
        cache: dict = {}
        for name in names:
            say(f"checking feeds of {name} ...")
            check_components(catalog, catalog.model(name), feed, report, cache=cache, cache_dir=cache_dir)
    if settings is not None:
        say("checking marketplace and gallery bases ...")
        check_bases(catalog, names, settings, report)
    return report


def differ(state_dir: Path):
    """``builder diff``'s markdown of a new version against the current latest (``builder.patching.Differ``)."""
    from builder.diff import compare, local_facts, tag_facts, to_markdown

    def describe(image: str, version: str, tags: dict[str, str], current, places: list[Path]) -> str:
        new = local_facts(state_dir, image, version) or tag_facts(version, tags, places, "gallery")
        old = None
        if current is not None:
            old = local_facts(state_dir, image, current.version) or tag_facts(current.version, current.tags, places,
                                                                              "gallery")
        return to_markdown(compare(image, old, new))

    return describe


def _local(ctx: Context, feed: str, cache_dir: Path, boot: bool, dry_run: bool):
    from builder import patching
    from builder.local.gallery import require_local_vhd_target, resolve_target

    require_local_vhd_target(resolve_target(ctx.state_dir))  # a local VHD never goes to real Azure: exit 2 first
    if not dry_run:
        from builder.local.pipeline import BuildOptions
        from builder.local.preflight import preflight

        preflight(BuildOptions(image="-", state_dir=ctx.state_dir, cache_dir=cache_dir, feed=feed, boot=boot))
    build = patching.local_build(ctx.catalog, ctx.state_dir, cache_dir, feed, boot)
    return build, lambda: patching.env_gallery(ctx.state_dir)


def _azure(ctx: Context, feed: str, dry_run: bool):
    import contextlib

    from builder import patching
    from builder.commands.build import azure_feed
    from builder.local.gallery import configured_in_env
    from builder.packer.azure import gallery_settings

    feed = azure_feed(feed)
    settings = gallery_settings() if configured_in_env() else None
    if settings is None:
        raise InputError("--target azure needs the gallery in the environment (AZURE_SUBSCRIPTION_ID)",
                         file="environment", field="AZURE_SUBSCRIPTION_ID")
    build = patching.azure_build(ctx.catalog, ctx.state_dir, feed, settings)
    return build, lambda: contextlib.nullcontext(settings)


def _print(result) -> None:
    for error in result.outdated.errors:
        click.echo(f"error: {error['image']}: {error['message']}", err=True)
    for note in result.outdated.notes:
        click.echo(f"note: {note['image']}: {note['message']}", err=True)
    for outcome in result.outcomes:
        click.echo(f"{outcome.image}: {outcome.status}: {outcome.message}")
        if outcome.notes:
            click.echo(outcome.notes)
            click.echo(f"(release notes: {outcome.notes_file})")
    if not result.outcomes:
        click.echo("nothing to patch: every image is current")


COMMANDS = [patch]
