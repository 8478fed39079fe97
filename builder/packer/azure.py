"""``azure_build``: render the Packer inputs for one catalog image and run Packer against Azure."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.catalog.loader import Catalog
from builder.errors import InputError, OperationError
from builder.hashing import sha256_file
from builder.packer import driver
from builder.packer.chain import inputs_digest
from builder.packer.events import Event
from builder.packer.render import (
    SBOM_FILE,
    TEMPLATE_FILES,
    base_version,
    packer_variables,
    template_dir,
    var_file_name,
    write_packer_files,
)
from builder.versioning import next_version, require_valid

AUTH_METHODS = ("cli", "oidc", "managed-identity")
BUILD_LOG = "packer-build.log"


@dataclass
class BuildArtifact:
    """What an Azure build hands to publishing: the artifact id (gallery version or managed image id)."""

    image: str
    version: str
    artifact_id: str | None
    inputs_digest: str
    out_dir: Path
    commands: list[list[str]] = field(default_factory=list)
    dry_run: bool = False
    log: Path | None = None
    junit: Path | None = None
    manifest: Path | None = None
    packer_version: str | None = None
    auth_method: str = "cli"
    seconds: float = 0.0
    version_source: str = "given"  # given | gallery | local (no gallery configured)
    base_version: str | None = None  # the builder.base_version tag (None: not resolved, not tagged)
    sbom: Path | None = None
    sbom_sha256: str | None = None
    sbom_tagged: bool = False  # builder.sbom_sha256 set on the gallery version

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("out_dir", "log", "junit", "manifest", "sbom"):
            data[key] = str(data[key]) if data[key] is not None else None
        data["target"] = "azure"
        return data


def detect_auth(env: dict[str, str] | None = None) -> str:
    """``$BUILDER_AZURE_AUTH``, else ``oidc`` inside a GitHub job with an id-token and a client id, else ``cli``."""
    env = os.environ if env is None else env
    chosen = env.get("BUILDER_AZURE_AUTH")
    if chosen:
        if chosen not in AUTH_METHODS:
            raise InputError(f"invalid value {chosen!r}: expected one of {', '.join(AUTH_METHODS)}",
                             field="BUILDER_AZURE_AUTH")
        return chosen
    if env.get("ACTIONS_ID_TOKEN_REQUEST_URL") and env.get("AZURE_CLIENT_ID"):
        return "oidc"
    return "cli"


def minimum_packer(directory: Path) -> str:
    """The lowest Packer version the template's ``required_version`` (``">= X.Y.Z"``) accepts."""
    text = (directory / TEMPLATE_FILES[0]).read_text(encoding="utf-8")
    found = re.search(r'required_version\s*=\s*">=?\s*(\d+\.\d+\.\d+)"', text)
    return found.group(1) if found else "1.7.0"


def gallery_settings(env: dict[str, str] | None = None) -> Any | None:
    """SDK settings when a subscription is configured (``AZURE_SUBSCRIPTION_ID``), else None (no gallery)."""
    env = dict(os.environ if env is None else env)
    if not env.get("AZURE_SUBSCRIPTION_ID", "").strip():
        return None
    from builder.azure.settings import settings_from_env

    return settings_from_env(env)


def resolve_version(catalog: Catalog, image_name: str, settings: Any | None,
                    local_versions: list[str] | tuple[str, ...] = ()) -> tuple[str, str]:
    """``(version, source)`` for a build without ``--version``: the day's next free ``YYYY.MMDD.N`` among the
    gallery definition's versions (the number ``builder publish`` would pick) when a gallery is configured
    (source ``gallery``), else among ``local_versions`` (the local registry; source ``local``)."""
    if settings is not None:
        from builder.azure.publish import next_free_version

        return next_free_version(catalog, image_name, settings), "gallery"
    return next_version(local_versions), "local"


def version_note(image: Any, version: str, source: str) -> str:
    """One line saying where an automatic version number came from."""
    if source == "gallery":
        g = image.gallery
        return f"version {version}: next free number in gallery {g.gallery}/{g.definition}"
    return (f"version {version}: no gallery configured (AZURE_SUBSCRIPTION_ID unset), numbered from the local "
            "registry only; pass --version to avoid a clash with versions built elsewhere")


def newest_marketplace_version(image: Any, settings: Any) -> str:
    """The newest version of the image's marketplace base in its build region (SDK ``virtual_machine_images``),
    what ``latest`` resolves to now. OperationError when the SKU lists none."""
    from azure.core.exceptions import ResourceNotFoundError

    from builder.azure.clients import compute_client
    from builder.azure.errors import arm_errors
    from builder.versioning import numeric_key

    m = image.base.marketplace
    subject = f"{m.publisher}:{m.offer}:{m.sku}"
    with arm_errors(f"listing marketplace versions of {subject}"):
        try:
            names = [i.name for i in compute_client(settings).virtual_machine_images.list(
                image.build.region, m.publisher, m.offer, m.sku)]
        except ResourceNotFoundError:
            names = []
    if not names:
        raise OperationError(f"marketplace image {subject} lists no versions in {image.build.region}")
    return max(names, key=numeric_key)




def record_sbom(catalog: Catalog, artifact: BuildArtifact, settings: Any | None, output: str,
                say: Callable[[str], None]) -> None:
    """Digest of the downloaded SBOM into the build record, and as ``builder.sbom_sha256`` on the staged gallery
    version when a gallery is configured (a managed image gets it when published: ``builder publish --sbom``)."""
    from builder.stack import tags as T

    sbom = artifact.out_dir / SBOM_FILE
    if not sbom.is_file():
        raise OperationError(f"packer build of {artifact.image} downloaded no SBOM ({sbom})", log=artifact.log)
    artifact.sbom, artifact.sbom_sha256 = sbom, sha256_file(sbom)
    if output != "gallery":
        say(f"SBOM {sbom.name} sha256 {artifact.sbom_sha256}: pass --sbom {sbom} to builder publish")
        return
    if settings is None:
        say(f"no gallery configured (AZURE_SUBSCRIPTION_ID unset): {T.SBOM} not tagged on {artifact.version}")
        return
    from builder.azure.publish import tag_version

    tag_version(catalog, artifact.image, artifact.version, {T.SBOM: artifact.sbom_sha256}, settings)
    artifact.sbom_tagged = True
    say(f"tagged {artifact.version} {T.SBOM}={artifact.sbom_sha256}")


def ensure_destination(catalog: Catalog, image_name: str, settings: Any, say: Callable[[str], None]) -> None:
    """Create the resource group, gallery and image definition Packer captures into when missing (Packer fails
    on a missing definition); immutable mismatches with the catalog are errors (builder.azure.gallery)."""
    from builder.azure.clients import compute_client, resource_client
    from builder.azure.gallery import Destination, ensure_definition

    image = catalog.model(image_name)
    ensure_definition(compute_client(settings), resource_client(settings), catalog.get(image_name), image,
                      Destination.of(image), say)


def azure_build(catalog: Catalog, image_name: str, *, out_dir: Path, on_event: Callable[[Event], None] | None = None,
                dry_run: bool = False, on_error: str = "cleanup", timeout: float | None = None,
                image_version: str | None = None, base_versions: dict[str, str] | None = None,
                auth: str | None = None, feed: str = "upstream", output: str = "gallery",
                packer: str | None = None, settings: Any | None = None,
                local_versions: list[str] | tuple[str, ...] = ()) -> BuildArtifact:
    """Build ``image_name`` on Azure: render into ``out_dir``, then ``packer init``, ``validate``, ``build``.

    ``settings``: the gallery's SDK settings (default: ``gallery_settings()`` from the environment; None when no
    subscription is configured). With a gallery, a build without ``image_version`` takes the gallery's next free
    number and a ``latest`` marketplace base is pinned to its newest version (tagged ``builder.base_version``);
    without one, the number comes from ``local_versions`` and ``latest`` stays unresolved (not tagged).

    ``timeout`` defaults to the catalog's ``build.timeout_minutes``. ``dry_run`` renders and reports the exact
    commands (as ``command`` events) without running Packer. Raises InputError for bad input, OperationError
    when Packer fails (nothing is captured then), PackerInterrupted (exit 130) on Ctrl-C/SIGTERM.
    """
    from builder.catalog.rules import check_image
    from builder.render import write_render

    model = catalog.model(image_name)
    errors = [p for p in check_image(catalog.get(image_name), catalog) if p.severity == "error"]
    if errors:
        raise InputError(errors)
    if on_error not in driver.ON_ERROR:
        raise InputError(f"invalid value {on_error!r}: expected one of {', '.join(driver.ON_ERROR)}",
                         field="--on-error")
    method = auth or detect_auth()
    if method not in AUTH_METHODS:
        raise InputError(f"invalid value {method!r}: expected one of {', '.join(AUTH_METHODS)}", field="--auth")
    emit = on_event or (lambda event: None)
    minimum = minimum_packer(template_dir(catalog))
    if dry_run:
        try:
            binary = driver.find_packer(minimum, packer)
            path, found_version = binary.path, binary.version
        except OperationError as exc:
            emit(Event("error", f"note: {exc}"))
            path, found_version = packer or "packer", None
    else:
        binary = driver.find_packer(minimum, packer)  # before anything is written
        path, found_version = binary.path, binary.version
    if output not in ("gallery", "managed-image"):
        raise InputError(f"invalid value {output!r}: expected one of gallery, managed-image", field="--output")
    if image_version:
        require_valid(image_version)

    def say(text: str) -> None:
        emit(Event("say", text))

    settings = gallery_settings() if settings is None else settings
    if image_version:
        version, version_source = image_version, "given"
    else:
        version, version_source = resolve_version(catalog, image_name, settings, local_versions)
        say(version_note(model, version, version_source))
    marketplace_version = None
    m = model.base.marketplace
    if m and m.version == "latest":
        if settings is not None:
            marketplace_version = newest_marketplace_version(model, settings)
            say(f"base {m.publisher}:{m.offer}:{m.sku}: latest is {marketplace_version} (pinned for this build)")
        else:
            say(f"base {m.publisher}:{m.offer}:{m.sku}:latest unresolved (no subscription): builder.base_version "
                "not recorded")
    elif model.base.image and not (base_versions or {}).get(model.base.image):
        say(f"base image {model.base.image}: no published version resolved, building on its definition's latest: "
            "builder.base_version not recorded")
    options: dict[str, Any] = {"base_versions": base_versions, "output": output,
                               "marketplace_version": marketplace_version}
    packer_variables(catalog, image_name, out_dir, image_version=version, **options)  # bad input: nothing written
    write_render(catalog, image_name, "azure", out_dir, feed, image_version=version)
    write_packer_files(catalog, image_name, out_dir, image_version=version, **options)
    var_files = [out_dir / var_file_name(image_name)]
    variables = {"auth_method": method}
    commands = [driver.init_command(path, out_dir), driver.validate_command(path, out_dir, var_files, variables),
                driver.build_command(path, out_dir, var_files, variables, on_error)]
    values = json.loads(var_files[0].read_text(encoding="utf-8"))
    artifact = BuildArtifact(image_name, version, None, inputs_digest(catalog, image_name), out_dir, commands,
                             dry_run, packer_version=found_version, auth_method=method, version_source=version_source,
                             base_version=base_version(values))
    if dry_run:
        for command in commands:
            emit(Event("command", driver.show(command)))
        return artifact
    if output == "gallery":
        if settings is not None:
            ensure_destination(catalog, image_name, settings, say)
        else:
            emit(Event("say", "AZURE_SUBSCRIPTION_ID not set: the gallery image definition must already exist"))
    emit(Event("say", f"packer {found_version}: init"))
    driver.run_checked(commands[0], cwd=out_dir)
    emit(Event("say", "packer validate"))
    driver.run_checked(commands[1], cwd=out_dir)
    log = out_dir / BUILD_LOG
    log.unlink(missing_ok=True)
    result = driver.stream(commands[2], on_event=emit, log=log,
                           timeout=timeout if timeout is not None else model.build.timeout_minutes * 60, cwd=out_dir)
    artifact.log, artifact.seconds = log, result.seconds
    junit = out_dir / "junit.xml"
    artifact.junit = junit if junit.exists() else None
    manifest = out_dir / "packer-manifest.json"
    artifact.manifest = manifest if manifest.exists() else None
    if result.timed_out:
        raise OperationError(f"packer build of {image_name} timed out after {result.seconds:.0f} s; Packer was "
                             "interrupted and removed its temporary resources", log=log)
    if not result.ok:
        reason = result.errors[-1] if result.errors else f"exit {result.returncode}"
        raise OperationError(f"packer build of {image_name} failed: {reason}; nothing was captured", log=log)
    artifact.artifact_id = result.artifact_id()
    if not artifact.artifact_id:
        raise OperationError(f"packer build of {image_name} reported no artifact id", log=log)
    record_sbom(catalog, artifact, settings, output, say)
    (out_dir / "build.json").write_text(json.dumps(artifact.as_dict(), indent=2) + "\n", encoding="utf-8")
    return artifact
