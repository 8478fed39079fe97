"""Build commands: ``builder build``, ``builder boot-test``, ``builder cache ls|prune``, ``builder builds``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from builder.cli import Context, pass_ctx
from builder.errors import InputError
from builder.output import output_option
from builder.paths import DEFAULT_CACHE

AZURE_SETTINGS = ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID")

json_option = output_option()
cache_option = click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE,
                            envvar="BUILDER_CACHE", show_default=True,
                            help="Base root filesystems, the stand-in feed and layer snapshots.")


def default_target() -> str:
    """``azure`` when Azure settings are configured in the environment (and ``BUILDER_ARM_ENDPOINT`` is not a local
    emulator on 127.0.0.1, which only a local build can use), else ``local``."""
    from urllib.parse import urlsplit

    endpoint = os.environ.get("BUILDER_ARM_ENDPOINT", "").strip()
    if endpoint and urlsplit(endpoint).hostname == "127.0.0.1":
        return "local"
    return "azure" if any(os.environ.get(name) for name in AZURE_SETTINGS) else "local"


def _feed(value: str) -> str:
    if value in ("upstream", "stand-in") or value.startswith(("http://", "https://", "file://")):
        return value
    raise InputError(f"invalid value {value!r}: expected upstream, stand-in or a mirror base URL "
                     "(http://, https:// or file://)", field="--feed")


def azure_feed(value: str) -> str:
    """``value`` when a build VM in Azure can read it; a feed on this machine (stand-in, file://) is exit 2."""
    if value == "stand-in" or value.startswith("file://"):
        raise InputError(f"'{value}' is a feed on this machine; the build VM in Azure cannot read it: use "
                         "upstream or an http(s) mirror the build VM can reach", field="--feed")
    return value


@click.command("build")
@click.argument("image")
@click.option("--target", type=click.Choice(["local", "azure"]), default=None,
              help="local (this machine, offline) or azure (Packer) [default: azure when AZURE_SUBSCRIPTION_ID is "
                   "set, else local].")
@click.option("--feed", default="upstream", show_default=True,
              help="Package feed: upstream, stand-in (local test feed, offline) or a mirror base URL.")
@click.option("--base-rootfs", type=click.Path(path_type=Path), default=None,
              help="Use this root filesystem (folder or tarball) instead of debootstrap.")
@click.option("--mirror", default=None, help="Debian/Ubuntu archive mirror for debootstrap.")
@click.option("--no-base-profile", is_flag=True,
              help="Do not lay the marketplace base's recorded profile (builder/data/bases) on the base; "
                   "laid by default with --feed stand-in (docs/base-profiles.md).")
@click.option("--no-cache", is_flag=True, help="Converge every layer again (snapshots are still saved).")
@click.option("--no-boot-test", is_flag=True, help="Skip the QEMU boot test.")
@click.option("--boot-timeout", type=click.IntRange(10, 3600), default=300, show_default=True,
              help="Seconds to wait for the boot marker.")
@click.option("--no-publish", is_flag=True,
              help="Do not publish the version (default: to the gallery in the environment, else the local gallery "
                   "emulator in <state>/gallery).")
@click.option("--keep-rootfs", is_flag=True, help="Keep the work tree of a failed build for inspection.")
@click.option("--disk-mib", type=click.IntRange(256, 4 * 1024 * 1024), default=None,
              help="OS disk size in MiB [default: the tree plus 25% plus 512 MiB].")
@click.option("--snapshots", type=click.Choice(["auto", "overlay", "copy"]), default="auto", show_default=True,
              envvar="BUILDER_SNAPSHOTS",
              help="Layer trees and snapshots: overlay (overlayfs diffs, saved by a rename), copy (whole-tree "
                   "copies) or auto (overlay where overlayfs mounts, else copy with a notice).")
@cache_option
@json_option
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--dry-run", is_flag=True, help="Azure target: render and show the Packer commands only.")
@click.option("--on-error", type=click.Choice(["cleanup", "abort"]), default="cleanup", show_default=True,
              help="Azure target: what Packer does when the build fails (abort keeps the build VM for debugging).")
@click.option("--version", "image_version", default=None, metavar="X.Y.Z",
              help="The version to build and publish as (Major.Minor.Patch, one that exists neither in the gallery "
                   "it publishes to nor in the local registry) [default: the next free YYYY.MMDD.N].")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Azure target: folder for the rendered Packer files and the build record, kept [default: "
                   "<state>/azure/<image>-<version>-<UTC stamp>; a dry run renders into a temporary folder it "
                   "removes].")
@pass_ctx
def build(ctx: Context, image: str, target: str | None, feed: str, base_rootfs: Path | None, mirror: str | None,
          no_base_profile: bool, no_cache: bool, no_boot_test: bool, boot_timeout: int, no_publish: bool,
          keep_rootfs: bool, disk_mib: int | None, snapshots: str, cache_dir: Path, as_json: bool, quiet: bool,
          dry_run: bool, on_error: str, image_version: str | None, out_dir: Path | None) -> int:
    """Build IMAGE end to end: rootfs, converge (layer cache), verify, generalize, disk, boot test, publish."""
    feed = _feed(feed)
    target = target or default_target()
    catalog = ctx.catalog
    catalog.model(image)
    if target == "azure":
        return _azure(ctx, image, azure_feed(feed), as_json, quiet, dry_run, on_error, image_version, out_dir)
    if dry_run:
        raise InputError("--dry-run applies to --target azure; for a local build see `builder plan IMAGE`",
                         field="--dry-run")
    if out_dir is not None:
        raise InputError("--out applies to --target azure; a local build writes <state>/builds/<id>/",
                         field="--out")
    from builder.catalog.rules import check_image
    from builder.local.pipeline import BuildOptions, Pipeline
    from builder.local.preflight import preflight

    errors = [p for p in check_image(catalog.get(image), catalog) if p.severity == "error"]
    if errors:
        raise InputError(errors)
    options = BuildOptions(image=image, state_dir=ctx.state_dir.resolve(), cache_dir=cache_dir.resolve(),
                           feed=feed, base_rootfs=base_rootfs, mirror=mirror, use_cache=not no_cache,
                           boot=not no_boot_test, boot_timeout=boot_timeout, publish=not no_publish,
                           keep_rootfs=keep_rootfs, disk_mib=disk_mib, snapshots=snapshots,
                           base_profile=not no_base_profile, version=image_version)
    pipeline = Pipeline(catalog, options, _reporter(quiet or as_json))  # checks where it would publish (exit 2)
    if image_version is not None:  # free in the registry and the gallery it publishes to, before anything runs
        from builder.local.publish import require_free_version

        require_free_version(catalog, image, options.state_dir, pipeline.gallery, image_version)
    preflight(options)
    return _run(pipeline, as_json)


def _reporter(quiet: bool):
    from builder.local.display import make_reporter

    return make_reporter(quiet)


def _run(pipeline, as_json: bool) -> int:
    from builder.errors import BuilderError
    from builder.local.display import summary
    from builder.output import console, emit_json

    try:
        record = pipeline.run()
    except (BuilderError, KeyboardInterrupt):
        if pipeline.record is not None:
            if as_json:
                emit_json(pipeline.record.as_dict())
            else:
                console(stderr=True).print(summary(pipeline.record))
        raise
    if as_json:
        emit_json(record.as_dict())
    else:
        console(stderr=True).print(summary(record))
        click.echo(f"built {record.image} {record.version}: {record.artifacts.get('disk', '-')}")
        if record.published:
            click.echo(f"published {record.published['version']} to {record.published['gallery']} "
                       f"({record.published['action']}): {record.published['id']}")
            if pipeline.gallery is not None and pipeline.gallery.local_state is not None:
                from builder.local.gallery import browse_hint

                click.echo(browse_hint(pipeline.gallery.local_state, record.image))
    return 0


def _azure(ctx: Context, image: str, feed: str, as_json: bool, quiet: bool, dry_run: bool,
           on_error: str = "cleanup", image_version: str | None = None, out_dir: Path | None = None) -> int:
    """The Azure target is the Packer engineer's ``builder.packer.build.build_azure``."""
    from builder.azure.clients import report_retries
    from builder.packer.build import build_azure

    def retry_line(event) -> None:  # "retry: throttled by Azure (429), retrying in 5 s (attempt 2/11)"
        if not (quiet or as_json):
            click.echo(f"{event.stage}: {event.message}", err=True)

    options = {}
    with report_retries(retry_line):
        if image_version is not None:
            options["image_version"] = _new_build_version(ctx, image, image_version)
        return build_azure(ctx.catalog, image, feed=feed, state_dir=ctx.state_dir, as_json=as_json, quiet=quiet,
                           dry_run=dry_run, on_error=on_error, out=out_dir, **options)


def _new_build_version(ctx: Context, image: str, version: str) -> str:
    """A valid ``version`` for a new build of ``image``: in neither the local registry nor, when the environment
    configures one, the image's gallery definition (a build captures a new image: another source)."""
    from builder.azure.progress import ignore
    from builder.azure.publish import Publisher
    from builder.packer.azure import gallery_settings
    from builder.registry import LocalRegistry
    from builder.versioning import require_new, require_valid

    require_valid(version, field="--version")
    registry = LocalRegistry(ctx.state_dir)
    require_new(version, registry.versions(image), f"the local registry ({registry.path})")
    settings = gallery_settings()
    if settings is not None:
        g = ctx.catalog.model(image).gallery
        require_new(version, Publisher(ctx.catalog, image, settings, ignore).existing_versions(),
                    f"gallery {g.gallery}/{g.definition}")
    return version


@click.command("boot-test")
@click.argument("disk", type=click.Path(path_type=Path))
@click.option("--timeout", type=click.IntRange(10, 3600), default=300, show_default=True,
              help="Seconds to wait for the boot marker.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Where serial.log goes [default: <state>/boot-tests/<disk name>-<time>].")
@json_option
@pass_ctx
def boot_test_command(ctx: Context, disk: Path, timeout: int, work_dir: Path | None, as_json: bool) -> int:
    """Boot DISK (fixed VHD, qcow2 or raw) under QEMU/OVMF with TCG and wait for the boot marker."""
    from builder.local.boot import boot_test
    from builder.output import emit_json

    work = work_dir or ctx.state_dir / "boot-tests" / f"{disk.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not as_json:
        click.echo(f"booting {disk} (TCG, OVMF; up to {timeout} s) ...", err=True)
    result = boot_test(disk, work, timeout)
    if as_json:
        emit_json(result.as_dict())
    elif result.ok:
        click.echo(f"ok: boot marker after {result.seconds:.1f} s (serial log: {result.serial_log})")
    else:
        click.echo(f"error: boot test failed: {result.reason} (serial log: {result.serial_log})", err=True)
    return 0 if result.ok else 1


@click.group("cache")
def cache() -> None:
    """Inspect and prune the layer cache."""


@cache.command("ls")
@cache_option
@output_option(tabular=True)
def cache_ls(cache_dir: Path, as_json: bool) -> int:
    """List layer snapshots: image, layer, key, format (overlay-diff, tree, legacy), parent, size, created, last
    used."""
    from builder.local.cache import LayerCache
    from builder.output import emit_json, output_format, print_table

    entries = LayerCache(cache_dir).entries()
    if as_json:
        emit_json([e.as_dict() for e in entries])
        return 0
    if not entries and output_format() != "tsv":  # tsv: the rows, none
        click.echo(f"no layer snapshots in {cache_dir / 'layers'}")
        return 0
    rows = [[e.meta.get("image"), e.meta.get("layer"), e.key, e.format, e.meta.get("parent") or "",
             _size(e.meta.get("size", 0) or 0), _when(e.meta.get("created")), _when(e.meta.get("last_used"))]
            for e in entries]
    print_table(f"layer cache ({cache_dir / 'layers'})",
                ["image", "layer", "key", "format", "parent", "size", "created", "last used"], rows)
    return 0


@cache.command("prune")
@cache_option
@click.option("--all", "everything", is_flag=True, help="Remove every snapshot.")
@click.option("--image", default=None, help="Only this image's snapshots.")
@click.option("--older-than", "days", type=click.FloatRange(0), default=None,
              help="Remove snapshots not used for this many days.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed.")
@json_option
def cache_prune(cache_dir: Path, everything: bool, image: str | None, days: float | None, dry_run: bool,
                as_json: bool) -> int:
    """Remove stale snapshots (by default those superseded by a newer one of the same image and layer, legacy
    ones and diffs whose parent is gone). A diff snapshot depends on its parent, so removing a snapshot removes
    the diffs above it too; snapshots a running build has mounted are kept."""
    from builder.local.cache import LayerCache
    from builder.output import emit_json

    layer_cache = LayerCache(cache_dir)
    if everything:
        chosen = layer_cache.entries()
    elif days is not None:
        cutoff = time.time() - days * 86400
        chosen = [e for e in layer_cache.entries() if e.meta.get("last_used", 0) < cutoff]
    else:
        chosen = layer_cache.stale()
    if image:
        chosen = [e for e in chosen if e.meta.get("image") == image]
    picked = {e.key for e in chosen}
    chosen, kept = layer_cache.plan_prune(chosen)
    size = sum(e.meta.get("size", 0) or 0 for e in chosen)
    if not dry_run:
        _, size = layer_cache.prune(chosen)
    if as_json:
        emit_json({"dry_run": dry_run, "removed": [e.as_dict() for e in chosen], "bytes": size,
                   "kept_in_use": [e.as_dict() for e in kept]})
    else:
        for entry in chosen:
            why = "" if entry.key in picked else f" (its parent {entry.meta.get('parent')} goes)"
            click.echo(f"{'would remove' if dry_run else 'removed'} {entry.meta.get('image')}/"
                       f"{entry.meta.get('layer')} {entry.key}{why}")
        for entry in kept:
            click.echo(f"kept {entry.meta.get('image')}/{entry.meta.get('layer')} {entry.key}: in use by a running "
                       "build's overlay")
        click.echo(f"{'would free' if dry_run else 'freed'} {_size(size)}")
    return 0


@click.command("builds")
@click.argument("image", required=False)
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="Newest N builds.")
@output_option(tabular=True)
@pass_ctx
def builds(ctx: Context, image: str | None, limit: int, as_json: bool) -> int:
    """List build history: id, image, status, duration, version, where it was published and artifacts."""
    from builder.local.records import history
    from builder.output import emit_json, output_format, print_table

    found = history(ctx.state_dir, image)[-limit:]
    if as_json:
        emit_json([r.as_dict() for r in found])
        return 0
    if not found and output_format() != "tsv":  # tsv: the rows, none
        click.echo(f"no builds recorded in {ctx.state_dir / 'builds'}")
        return 0
    rows = []
    for r in reversed(found):
        failed = next((p.name for p in r.phases if p.status in ("failed", "interrupted")), "")
        rows.append([r.id, r.image, r.status + (f" ({failed})" if failed else ""), f"{r.duration:.0f}s",
                     r.version or "", _published(r.published), ", ".join(Path(p).name for p in r.artifacts.values()),
                     _report(r.directory)])
    print_table("builds", ["id", "image", "status", "duration", "version", "published", "artifacts", "report"], rows)
    click.echo("HTML report of a build: builder report ID (writes <state>/builds/ID/report.html)", err=True)
    return 0


def _report(directory: Path) -> str:
    """The build's HTML report when ``builder report`` wrote one, else nothing."""
    page = directory / "report.html"
    return str(page) if page.is_file() else ""


def _published(published: dict) -> str:
    """Where a build's version went, short: ``local gallery``, ``emulator`` or ``azure``, and what happened."""
    if not published:
        return ""
    kind = {"local-gallery": "local gallery"}.get(published.get("kind", ""), published.get("kind", ""))
    return f"{kind} ({published.get('action', '')})"


def _size(num: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num < 1024 or unit == "GiB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return f"{num:.1f} GiB"


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else ""


COMMANDS = [build, boot_test_command, cache, builds]
