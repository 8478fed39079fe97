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
from builder.packer import driver
from builder.packer.chain import inputs_digest
from builder.packer.events import Event
from builder.packer.render import (
    TEMPLATE_FILES,
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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("out_dir", "log", "junit", "manifest"):
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
                packer: str | None = None) -> BuildArtifact:
    """Build ``image_name`` on Azure: render into ``out_dir``, then ``packer init``, ``validate``, ``build``.

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
    options: dict[str, Any] = {"base_versions": base_versions, "output": output}
    version = require_valid(image_version) if image_version else next_version([])
    packer_variables(catalog, image_name, out_dir, image_version=version, **options)  # bad input: nothing written
    write_render(catalog, image_name, "azure", out_dir, feed, image_version=version)
    write_packer_files(catalog, image_name, out_dir, image_version=version, **options)
    var_files = [out_dir / var_file_name(image_name)]
    variables = {"auth_method": method}
    commands = [driver.init_command(path, out_dir), driver.validate_command(path, out_dir, var_files, variables),
                driver.build_command(path, out_dir, var_files, variables, on_error)]
    artifact = BuildArtifact(image_name, version, None, inputs_digest(catalog, image_name), out_dir, commands,
                             dry_run, packer_version=found_version, auth_method=method)
    if dry_run:
        for command in commands:
            emit(Event("command", driver.show(command)))
        return artifact
    if output == "gallery":
        if os.environ.get("AZURE_SUBSCRIPTION_ID", "").strip():
            from builder.azure.settings import settings_from_env

            ensure_destination(catalog, image_name, settings_from_env(), lambda text: emit(Event("say", text)))
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
    (out_dir / "build.json").write_text(json.dumps(artifact.as_dict(), indent=2) + "\n", encoding="utf-8")
    return artifact
