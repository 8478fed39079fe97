"""``builder build IMAGE --target azure``: version, layered base versions, live progress, the build record."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from builder.catalog.loader import Catalog
from builder.packer.events import Event


def base_versions(catalog: Catalog, image_name: str) -> dict[str, str]:
    """Latest published gallery version of each catalog image below ``image_name`` (layered builds); empty when
    no gallery is configured (the template then builds on the definition's latest version)."""
    from builder.packer.chain import chain, lookup_from_env

    if len(chain(catalog, image_name)) == 1:
        return {}
    lookup = lookup_from_env(catalog)
    found = {}
    for link in chain(catalog, image_name)[:-1]:
        latest = lookup(link) if lookup else None
        if latest:
            found[link] = latest[0]
    return found


def printer(quiet: bool):
    """Progress on stderr: Packer's say/error lines, the messages of provisioners in grey."""

    def show(event: Event) -> None:
        if quiet or not event.text:
            return
        if event.kind == "command":
            click.echo(event.text)
        elif event.kind == "error":
            click.secho(event.text, fg="red", err=True)
        elif event.kind == "say":
            click.echo(event.text, err=True)
        elif event.kind == "message":
            click.secho(event.text, dim=True, err=True)

    return show


def build_azure(catalog: Catalog, image: str, *, feed: str = "upstream", state_dir: Path, as_json: bool = False,
                dry_run: bool = False, on_error: str = "cleanup", timeout_minutes: int | None = None,
                quiet: bool = False, out: Path | None = None, **options: Any) -> int:
    """Run ``azure_build`` for the CLI: out dir ``out``, else ``<state>/azure/<image>-<version>-<stamp>``, else
    for a dry run a temporary folder removed afterwards (a dry run leaves no folder it made); JSON record with
    ``--json``."""
    from builder.output import emit_json
    from builder.packer.azure import azure_build, gallery_settings, resolve_version, version_note
    from builder.registry import LocalRegistry
    from builder.versioning import require_valid

    # A gallery, when configured, numbers the version (the same next free YYYY.MMDD.N `builder publish` picks):
    # the local registry is empty on a fresh CI runner, so only the gallery avoids two same-day builds colliding.
    settings = gallery_settings()
    version, source = options.pop("image_version", None), "given"
    if version:
        require_valid(version)
    else:
        version, source = resolve_version(catalog, image, settings, LocalRegistry(state_dir).versions(image))
        if not (quiet or as_json):
            click.echo(version_note(catalog.model(image), version, source), err=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    scratch = dry_run and out is None
    if out is not None:
        out_dir = out
    elif scratch:
        out_dir = Path(tempfile.mkdtemp(prefix=f"builder-dry-run-{image}-"))
    else:
        out_dir = state_dir / "azure" / f"{image}-{version}-{stamp}"
    try:
        artifact = azure_build(catalog, image, out_dir=out_dir.resolve(), on_event=printer(quiet or as_json),
                               dry_run=dry_run, on_error=on_error, feed=feed, image_version=version,
                               timeout=timeout_minutes * 60 if timeout_minutes else None,
                               base_versions=base_versions(catalog, image), settings=settings, **options)
    finally:
        if scratch:
            shutil.rmtree(out_dir, ignore_errors=True)
    if scratch:
        artifact.out_dir = None  # type: ignore[assignment]  # nothing kept
    artifact.version_source = source
    if as_json:
        emit_json(artifact.as_dict())
    elif scratch:
        click.echo("# dry run: the rendered files were removed (pass --out DIR to keep them)", err=True)
    elif dry_run:
        click.echo(f"# dry run: files rendered in {out_dir}", err=True)
    else:
        origin = "" if source != "local" else " (version numbered from the local registry: no gallery configured)"
        click.echo(f"built {image} {version} on Azure: {artifact.artifact_id}{origin}")
    return 0
