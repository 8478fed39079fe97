"""Publishing commands: publish, promote, yank, versions, gc, and the local ARM emulator."""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from builder.cli import Context, pass_ctx
from builder.errors import InputError
from builder.output import output_option, plain

json_option = output_option()
yes_option = click.option("--yes", "-y", is_flag=True, help="Do it without asking (required without a terminal).")


def _confirmed(yes: bool, action: str) -> None:
    """Ask before a destructive action; a run without a terminal (CI, a pipe) must say ``--yes`` instead."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(f"{action}: refusing without --yes (not run from a terminal, so nobody can be asked)",
                         field="--yes")
    click.confirm(f"{action}?", abort=True, err=True)
subscription_option = click.option("--subscription", default=None, metavar="ID",
                                   help="Subscription id [default: $AZURE_SUBSCRIPTION_ID].")


def _settings(subscription: str | None):
    from builder.azure import settings_from_env

    return settings_from_env(subscription_id=subscription)


@contextlib.contextmanager
def _gallery(ctx: Context, subscription: str | None, quiet: bool = False) -> Iterator:
    """Settings for the lifecycle commands: the environment's gallery (Azure or an emulator); without any Azure
    settings, the local gallery a local ``builder build`` published to (``<state>/gallery``), served in-process."""
    from builder.azure.clients import report_retries
    from builder.local.gallery import configured_in_env, local_gallery_dir, serve_local

    state = local_gallery_dir(ctx.state_dir).resolve()
    if subscription or configured_in_env() or not (state / "state.json").exists():
        with report_retries(ProgressPrinter(quiet)):  # "throttled by Azure (429), retrying in 5 s (attempt 2/11)"
            yield _settings(subscription)
        return
    if not quiet:
        click.echo(f"local gallery emulator: {state} (no AZURE_SUBSCRIPTION_ID set; set it for Azure)", err=True)
    with serve_local(state) as settings:
        yield settings


class ProgressPrinter:
    """Prints publisher progress on stderr: one line per step, one per change of any region's state/percent."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.last: dict[str, tuple[str, int]] = {}

    def __call__(self, event) -> None:
        if self.quiet:
            return
        if event.regions:
            if event.regions == self.last:
                return
            self.last = dict(event.regions)
            text = "  ".join(f"{region}: {state} {pct}%" for region, (state, pct) in sorted(event.regions.items()))
            click.echo(f"  replication  {text}", err=True)
        elif event.message:
            click.echo(f"{event.stage}: {event.message}", err=True)


def _regions(values: tuple[str, ...]) -> list[tuple[str, int]] | None:
    """``--region NAME[=REPLICAS]`` values; REPLICAS in ASCII digits (``int()`` would take " 2" or Arabic-Indic
    digits), a region named twice is an error (the publisher checks the names, in any spelling)."""
    if not values:
        return None
    out = []
    for value in values:
        name, sep, count = value.partition("=")
        if not name.strip() or (sep and not re.fullmatch(r"[0-9]{1,4}", count, re.ASCII)):
            raise InputError(f"{value[:100]!r} is not NAME or NAME=REPLICAS", field="--region")
        out.append((name.strip(), int(count) if sep else 1))
    return out


def _git_commit() -> str | None:
    """``git rev-parse HEAD`` of the current directory; None, with one warning line, outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        out = None
    commit = out.stdout.strip() or None if out is not None and out.returncode == 0 else None
    if commit is None:
        click.echo("warning: no git commit found (not a git checkout, or no git): the git-commit tag is left out; "
                   "set it with --git-commit", err=True)
    return commit


@click.command("publish")
@click.argument("image")
@click.option("--source-image-id", default=None, help="Managed image resource id.")
@click.option("--source-vm-id", default=None, help="Generalized VM resource id.")
@click.option("--source-version-id", default=None, help="Another gallery image version id.")
@click.option("--vhd-uri", default=None, help="VHD blob URL (with --storage-account-id).")
@click.option("--storage-account-id", default=None, help="Storage account id holding --vhd-uri.")
@click.option("--version", default=None, help="Version Major.Minor.Patch [default: the gallery's next YYYY.MMDD.N].")
@click.option("--region", "regions", multiple=True, metavar="NAME[=REPLICAS]",
              help="Target region (repeatable); overrides the catalog's target_regions.")
@click.option("--git-commit", default=None, help="Commit the image was built from [default: git rev-parse HEAD].")
@click.option("--build-id", default=None, help="Build id to record in the tags.")
@click.option("--sbom", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="SBOM file; its SHA-256 is recorded in the tags.")
@click.option("--base-version", default=None, metavar="VERSION",
              help="Base version the image was built on (marketplace or parent gallery version; `builder build "
                   "--json` reports it as base_version), recorded as builder.base_version for `builder outdated`.")
@click.option("--verification", type=click.Choice(["passed", "failed", "pending"]), default=None,
              help="Verification result for the tags (promote needs 'passed'); on an existing version from the same "
                   "source, updates its tag. [default: pending for a new version]")
@click.option("--force", is_flag=True, help="Replace an existing version that came from a different source.")
@yes_option
@subscription_option
@json_option
@pass_ctx
def publish(ctx: Context, image: str, source_image_id, source_vm_id, source_version_id, vhd_uri, storage_account_id,
            version, regions, git_commit, build_id, sbom, base_version, verification, force, yes, subscription,
            as_json) -> None:
    """Publish a version of IMAGE to its Azure Compute Gallery definition (staged: excluded from latest)."""
    from builder.azure import Source, provenance, publish_version
    from builder.output import emit_json
    from builder.registry import LocalRegistry

    source = Source(managed_image_id=source_image_id, vm_id=source_vm_id, gallery_version_id=source_version_id,
                    vhd_uri=vhd_uri, storage_account_id=storage_account_id)
    catalog = ctx.catalog
    catalog.model(image)
    override = _regions(regions)
    if force:
        _confirmed(yes, f"replace {image} {version or '(next version)'} if it came from another source")
    registry = LocalRegistry(ctx.state_dir)
    registry.load()  # a corrupted registry is an error before anything is published, not after
    settings = _settings(subscription)
    digest = hashlib.sha256(sbom.read_bytes()).hexdigest() if sbom else None
    tags = provenance(git_commit or _git_commit(), build_id, digest, verification, base_version)
    from builder.azure.clients import report_retries

    printer = ProgressPrinter()
    with report_retries(printer):  # each SDK retry on the progress line
        result = publish_version(catalog, image, source=source, version=version, tags=tags, settings=settings,
                                 progress=printer, force=force, regions_override=override)
    registry.record(image, result.version, {"id": result.id, "action": result.action,
                                                                "regions": result.regions})
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(f"{result.action}: {result.image} {result.version} in {', '.join(result.regions)} "
               f"(excludeFromLatest={str(result.exclude_from_latest).lower()}, {result.seconds:.1f}s)")
    click.echo(result.id)


@click.command("promote")
@click.argument("image")
@click.argument("version")
@click.option("--force", is_flag=True, help="Promote even when verification did not pass, or the version was yanked.")
@subscription_option
@json_option
@pass_ctx
def promote(ctx: Context, image: str, version: str, force: bool, subscription, as_json: bool) -> None:
    """Make VERSION of IMAGE eligible for 'latest' (excludeFromLatest=false)."""
    from builder.azure import Lifecycle
    from builder.output import emit_json

    with _gallery(ctx, subscription, as_json) as settings:
        info = Lifecycle(ctx.catalog, image, settings, ProgressPrinter(as_json)).promote(version, force)
    _registry_mark(ctx, image, version, info.tags)
    if as_json:
        emit_json(info.as_dict())
    else:
        click.echo(f"promoted: {image} {version} is now eligible for latest")


@click.command("yank")
@click.argument("image")
@click.argument("version")
@click.option("--reason", required=True, help="Why (recorded in the builder.yanked tag).")
@yes_option
@subscription_option
@json_option
@pass_ctx
def yank(ctx: Context, image: str, version: str, reason: str, yes: bool, subscription, as_json: bool) -> None:
    """Withdraw VERSION of IMAGE: exclude from latest, end of life now, reason tag."""
    from builder.azure import Lifecycle
    from builder.output import emit_json

    _confirmed(yes, f"yank {image} {version} (its end of life is now; VMs can no longer be created from it)")
    with _gallery(ctx, subscription, as_json) as settings:
        info = Lifecycle(ctx.catalog, image, settings, ProgressPrinter(as_json)).yank(version, reason)
    _registry_mark(ctx, image, version, info.tags)
    if as_json:
        emit_json(info.as_dict())
    else:
        click.echo(f"yanked: {image} {version} ({plain(reason)})")


def _registry_mark(ctx: Context, image: str, version: str, tags: dict[str, str]) -> None:
    """Mirror the gallery's yank tags of ``version`` in the local registry (a yank sets them, promote clears them)."""
    from builder.registry import LocalRegistry
    from builder.stack import tags as T

    LocalRegistry(ctx.state_dir).update(image, version, yanked=tags.get(T.YANKED), yanked_at=tags.get(T.YANKED_AT))


@click.command("versions")
@click.argument("image")
@click.option("--tags", "show_tags", is_flag=True, help="Show every tag (default: provenance tags only).")
@subscription_option
@output_option(tabular=True)
@pass_ctx
def versions(ctx: Context, image: str, show_tags: bool, subscription, as_json: bool) -> None:
    """List the gallery versions of IMAGE: state, regions, latest, end of life, tags."""
    from builder.azure import Lifecycle
    from builder.output import emit_json, print_table
    from builder.stack import tags as T

    with _gallery(ctx, subscription, as_json) as settings:
        infos = Lifecycle(ctx.catalog, image, settings).versions()
    if as_json:
        emit_json([i.as_dict() for i in infos])
        return
    shown = (T.VERIFICATION, T.GIT_COMMIT, T.BUILD_ID, T.YANKED)
    rows = [[i.version, i.state, "yes" if i.latest else "", ", ".join(i.regions), (i.end_of_life_date or "")[:10],
             " ".join(f"{k.removeprefix('builder.')}={v}" for k, v in i.tags.items() if show_tags or k in shown)]
            for i in infos]
    print_table(f"{image}: {len(infos)} version(s)", ["version", "state", "latest", "regions", "EOL", "tags"], rows)


@click.command("gc")
@click.argument("image")
@click.option("--keep", type=click.IntRange(min=0), required=True, help="Keep the newest N versions regardless.")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@yes_option
@subscription_option
@json_option
@pass_ctx
def gc(ctx: Context, image: str, keep: int, dry_run: bool, yes: bool, subscription, as_json: bool) -> None:
    """Delete excluded or expired versions of IMAGE beyond the newest --keep (never the current latest)."""
    from builder.azure import Lifecycle
    from builder.output import emit_json

    if not dry_run:
        _confirmed(yes, f"delete the excluded or expired versions of {image} beyond the newest {keep}")
    with _gallery(ctx, subscription, as_json) as settings:
        doomed = Lifecycle(ctx.catalog, image, settings, ProgressPrinter(as_json)).gc(keep, dry_run)
    if not dry_run:  # what the gallery no longer has, the local registry must not offer (`builder reference`)
        from builder.registry import LocalRegistry

        LocalRegistry(ctx.state_dir).forget(image, [item["version"] for item in doomed])
    if as_json:
        emit_json({"dry_run": dry_run, "versions": doomed})
        return
    verb = "would delete" if dry_run else "deleted"
    for item in doomed:
        click.echo(f"{verb}: {item['version']} ({plain(item['reason'])})")
    if not doomed:
        click.echo("nothing to delete")


@click.command("emulator")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port.")
@click.option("--state", "state_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder for the emulator's state and certificate (kept across restarts).")
@click.option("--replication-delay", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds each region takes to replicate a version.")
@click.option("--operation-delay", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Seconds other long-running operations take.")
@click.option("--retry-after", type=click.FloatRange(min=0), default=None,
              help="Retry-After seconds on operations [default: the time left].")
@click.option("--page-size", type=click.IntRange(min=1), default=100, show_default=True, help="Items per list page.")
@click.option("--faults", "faults_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="JSON list of faults to inject (same fields as POST /_emulator/faults).")
@click.option("--verbose", is_flag=True, help="Log every request on stderr.")
def emulator(port: int, state_dir: Path, replication_delay: float, operation_delay: float, retry_after: float | None,
             page_size: int, faults_file: Path | None, verbose: bool) -> None:
    """Run the local HTTPS Azure Resource Manager emulator (prints one JSON line with base_url and cert)."""
    from builder.emulator import EmulatorConfig, EmulatorServer

    config = EmulatorConfig(operation_delay=operation_delay, replication_delay=replication_delay,
                            retry_after=retry_after, page_size=page_size)
    try:
        server = EmulatorServer(state_dir, port, config, verbose=verbose)
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", field="--port") from None
    if faults_file:
        _load_faults(server, faults_file)
    sys.stdout.write(server.ready_line() + "\n")
    sys.stdout.flush()
    try:  # Ctrl-C propagates: the command group exits 130, as for every command
        server.serve_forever()
    finally:
        server.httpd.server_close()


def _load_faults(server, path: Path) -> None:
    import json

    try:
        specs = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"not valid JSON: {exc}", file=path) from None
    if not isinstance(specs, list):
        raise InputError("expected a JSON list of fault objects", file=path)
    for index, spec in enumerate(specs):
        try:
            server.emulator.faults.add(spec if isinstance(spec, dict) else {})
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc), file=path, field=f"[{index}]") from None


COMMANDS = [publish, promote, yank, versions, gc, emulator]
