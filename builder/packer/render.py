"""Render the per-image inputs of the Azure Packer template: a copy of the static template, the var file
(``<image>.pkrvars.json``) and the verification bundle uploaded to the build VM. Values come from the catalog
only; identity comes from the environment at build time, so no file holds a secret."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import re
import shutil
from pathlib import Path
from typing import Any

from builder.catalog.loader import Catalog
from builder.catalog.schema import Image
from builder.errors import InputError
from builder.packer.chain import inputs_digest
from builder.paths import ANSIBLE_CONFIG, PACKER_DIR, PLAYBOOK, REPO, ROLES_DIR, git_commit
from builder.stack import from_image
from builder.stack import settings as role_settings
from builder.stack import tags as T
from builder.stack.layers import FINAL_ROLES
from builder.versioning import next_version, require_valid

TEMPLATE_FILES = ("azure.pkr.hcl", "variables.pkr.hcl")
WAIT_SCRIPT = "wait-for-apt.sh"  # the first step on the build VM: cloud-init and the apt locks
VERIFY_SCRIPT = "verify-on-vm.sh"
SBOM_SCRIPT = "sbom-on-vm.py"  # run on the build VM with the verification venv: builder.local.sbom on "/"
SBOM_FILE = "sbom.cdx.json"  # downloaded next to junit.xml
VERIFY_DIR = "verify-bundle"
ANSIBLE_VARS = "ansible-vars.yml"  # written next to the var file by builder.render (the Ansible variables)
REMOTE_VERIFY_DIR = "/tmp/builder-verify"
OUTPUTS = ("gallery", "managed-image")
# What `builder verify` needs on the build VM, pinned to the versions installed here.
VERIFY_REQUIREMENTS = ("pydantic", "PyYAML", "click", "rich", "pytest", "pytest-testinfra",
                       "cyclonedx-python-lib", "packageurl-python")
GALLERY_ID = re.compile(r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)/providers/"
                        r"Microsoft\.Compute/galleries/(?P<gallery_name>[^/]+)/images/(?P<image_name>[^/]+)"
                        r"(?:/versions/(?P<image_version>[^/]+))?$", re.IGNORECASE)


def template_dir(catalog: Catalog) -> Path:
    """``<catalog>/packer`` when the catalog carries the template, else the repository's ``images/packer``."""
    own = catalog.root / "packer"
    return own if (own / TEMPLATE_FILES[0]).is_file() else PACKER_DIR


def var_file_name(image_name: str) -> str:
    return f"{image_name}.pkrvars.json"


def _base(catalog: Catalog, image: Image, base_versions: dict[str, str],
          marketplace_version: str | None = None) -> dict[str, Any]:
    base = image.base
    if base.marketplace:
        m = base.marketplace
        version = marketplace_version or m.version
        out: dict[str, Any] = {"marketplace": {"publisher": m.publisher, "offer": m.offer, "sku": m.sku,
                                               "version": version}}
        if m.plan:
            out["plan_info"] = {"name": m.plan.name, "product": m.plan.product, "publisher": m.plan.publisher}
        return out
    if base.gallery_image_id:
        found = GALLERY_ID.match(base.gallery_image_id)
        if not found:
            entry = catalog.get(image.name)
            raise InputError(entry.problem(("base", "gallery_image_id"), "expected /subscriptions/S/resourceGroups/"
                                           "RG/providers/Microsoft.Compute/galleries/G/images/D[/versions/V]"))
        parts = found.groupdict()
        return {"base_gallery_image": {**parts, "image_version": parts["image_version"] or ""}}
    below = catalog.model(base.image)
    g = below.gallery
    return {"base_gallery_image": {"subscription": "", "resource_group": g.resource_group, "gallery_name": g.gallery,
                                   "image_name": g.definition, "image_version": base_versions.get(below.name, "")}}


def _gallery(image: Image, today: dt.date) -> dict[str, Any]:
    g = image.gallery
    eol = g.end_of_life_date or today + dt.timedelta(days=g.end_of_life_days)
    # Staging capture: the build region only; publishing replicates to the catalog's target regions.
    replicas = next((r.replicas for r in g.target_regions if r.name == image.build.region), 1)
    return {
        "resource_group": g.resource_group,
        "gallery_name": g.gallery,
        "image_name": g.definition,
        "storage_account_type": g.storage_account_type.value,
        "shallow_replication": g.replication_mode == "Shallow",
        "exclude_from_latest": g.staging.exclude_from_latest,
        "end_of_life_date": f"{eol.isoformat()}T00:00:00Z",
        "target_regions": [{"name": image.build.region, "replicas": replicas}],
    }


def base_version(values: dict[str, Any]) -> str | None:
    """The base version the build uses, for the ``builder.base_version`` tag: the marketplace version (None
    while it is ``latest``: unresolved) or the base gallery image version (None when empty: the latest)."""
    if "marketplace" in values:
        version = values["marketplace"]["version"]
        return None if version == "latest" else version
    return values["base_gallery_image"]["image_version"] or None


def verify_suite(image: Image) -> str:
    """``all`` when the build VM is a target SKU and the image runs the hardware suite, else ``static``."""
    hardware = "hardware" in image.tests.suites and image.build.vm_size in image.target_skus
    return "all" if hardware else "static"


def packer_variables(catalog: Catalog, image_name: str, out_dir: Path, *, image_version: str | None = None,
                     base_versions: dict[str, str] | None = None, output: str = "gallery",
                     commit: str | None = None, today: dt.date | None = None,
                     marketplace_version: str | None = None) -> dict[str, Any]:
    """The var file's content for ``image_name`` (paths absolute, under ``out_dir``).

    ``marketplace_version`` pins a ``latest`` marketplace base to the version resolved for this build.
    """
    image = catalog.model(image_name)
    today = today or dt.datetime.now(dt.UTC).date()
    version = require_valid(image_version) if image_version else next_version([], today)
    out = out_dir.resolve()
    b = image.build
    if commit is None:
        commit = git_commit()
    if output not in OUTPUTS:
        raise InputError(f"invalid value {output!r}: expected one of {', '.join(OUTPUTS)}", field="--output")
    base = image.base
    base_kind = f"image:{base.image}" if base.image else ("gallery" if base.gallery_image_id else "marketplace")
    # The publisher's tag scheme (component versions, provenance). The version only exists when verification on
    # the build VM passed; it is tagged `passed` only when that included the hardware suite (the build VM is a
    # target SKU), else `pending` until the hardware validation step records its result.
    base_values = _base(catalog, image, base_versions or {}, marketplace_version)
    extra = {T.GIT_COMMIT: commit, T.INPUTS_DIGEST: inputs_digest(catalog, image.name), T.VERSION: version,
             T.BASE: base_kind, T.VERIFICATION: T.VERIFIED if verify_suite(image) == "all" else "pending"}
    resolved_base = base_version(base_values)
    if resolved_base:
        extra[T.BASE_VERSION] = resolved_base
    tags = from_image(image).version_tags(extra)
    values: dict[str, Any] = {
        **base_values,
        "location": b.region,
        "vm_size": b.vm_size,
        "os_disk_size_gb": b.os_disk_gb,
        "spot": b.spot,
        "timeout": f"{b.timeout_minutes}m",
        "output": output,
        "gallery": _gallery(image, today),
        "image_version": version,
        "managed_image_name": f"{image.name}-{version}",
        "azure_tags": tags,
        "ansible_playbook": str(PLAYBOOK),
        "ansible_vars_file": str(out / ANSIBLE_VARS),
        "ansible_env_vars": [f"ANSIBLE_CONFIG={ANSIBLE_CONFIG}", "ANSIBLE_PIPELINING=True",
                             "ANSIBLE_HOST_KEY_CHECKING=False", f"ANSIBLE_ROLES_PATH={ROLES_DIR}",
                             "ANSIBLE_FORCE_COLOR=False"],
        "final_roles": list(FINAL_ROLES),
        "wait_script": str(out / WAIT_SCRIPT),
        "verify_bundle": str(out / VERIFY_DIR),
        "verify_remote_dir": REMOTE_VERIFY_DIR,
        "verify_command": f"sudo sh {REMOTE_VERIFY_DIR}/{VERIFY_SCRIPT} {image.name} {version} {verify_suite(image)}",
        "junit_file": str(out / "junit.xml"),
        "sbom_command": f"sudo {REMOTE_VERIFY_DIR}/venv/bin/python {REMOTE_VERIFY_DIR}/{SBOM_SCRIPT} {image.name} "
                        f"{version} {REMOTE_VERIFY_DIR}/{SBOM_FILE}",
        "sbom_file": str(out / SBOM_FILE),
        "manifest_file": str(out / "packer-manifest.json"),
    }
    if b.virtual_network:
        values["virtual_network"] = b.virtual_network.model_dump()
    if image.gallery.features.security_type == "TrustedLaunch":
        values["security_type"] = "TrustedLaunch"
    refuse_templates(values)
    return values


def refuse_templates(values: Any, path: str = "") -> None:
    """Refuse a ``{{`` in any string Packer is given: Packer runs its Go-template interpolation over the plugins'
    configuration after HCL evaluation, variable values included (``{{ uuid }}`` in a var file becomes a UUID,
    ``{{ env `X` }}`` reads the environment where allowed), and it renders some fields twice, so no escaping
    survives. ``${`` and ``%{`` need nothing: values in a ``.pkrvars.json`` file are literal, not HCL templates
    (both checked against the real binary: tests/unit/test_injection.py). Refusing is possible because no
    catalog value needs ``{{``.
    """
    if isinstance(values, dict):
        for key, value in values.items():
            refuse_templates(key, f"{path}.<key>" if path else "<key>")
            refuse_templates(value, f"{path}.{key}" if path else str(key))
    elif isinstance(values, list):
        for i, value in enumerate(values):
            refuse_templates(value, f"{path}[{i}]")
    elif isinstance(values, str) and "{{" in values:
        shown = values if len(values) <= 80 else values[:77] + "..."
        raise InputError(f"{shown!r} contains '{{{{', which Packer would run as a Go template; remove it",
                         field=f"packer variable {path}")


def requirements() -> str:
    """Pinned requirements for the verification venv on the build VM (versions installed here)."""
    lines = []
    for name in VERIFY_REQUIREMENTS:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(name)
    return "\n".join(lines) + "\n"


def write_verify_bundle(catalog: Catalog, dest: Path) -> Path:
    """The folder uploaded to the build VM: the builder package, the catalog, the role settings the checks compare
    with (``role-settings.json``: the roles are not on the VM), pinned requirements, the scripts."""
    if dest.exists():
        shutil.rmtree(dest)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    shutil.copytree(REPO / "builder", dest / "src" / "builder", ignore=ignore)
    shutil.copy2(REPO / "pyproject.toml", dest / "src" / "pyproject.toml")
    (dest / "images").mkdir(parents=True)
    for path in sorted(catalog.root.iterdir()):
        if path.suffix in (".yaml", ".yml"):
            shutil.copy2(path, dest / "images" / path.name)
    role_settings.write(dest / role_settings.FILE_NAME)
    (dest / "requirements.txt").write_text(requirements(), encoding="utf-8")
    shutil.copy2(template_dir(catalog) / VERIFY_SCRIPT, dest / VERIFY_SCRIPT)
    own = template_dir(catalog) / SBOM_SCRIPT
    shutil.copy2(own if own.is_file() else PACKER_DIR / SBOM_SCRIPT, dest / SBOM_SCRIPT)
    return dest


def write_packer_files(catalog: Catalog, image_name: str, out_dir: Path, *, stage: Path | None = None,
                       **options: Any) -> list[Path]:
    """Write the template copy, ``<image>.pkrvars.json`` and the verification bundle into ``out_dir``.

    ``options``: ``image_version``, ``base_versions`` (catalog image -> gallery version for layered builds),
    ``marketplace_version`` (``latest`` resolved), ``output`` (``gallery`` or ``managed-image``), ``commit``,
    ``today``. Raises InputError on bad input before anything is written. ``stage``: write the files there
    instead (their paths still name ``out_dir``, where the caller moves them).
    """
    values = packer_variables(catalog, image_name, out_dir, **options)
    dest = stage or out_dir
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TEMPLATE_FILES:
        shutil.copy2(template_dir(catalog) / name, dest / name)
        written.append(dest / name)
    own = template_dir(catalog) / WAIT_SCRIPT
    shutil.copy2(own if own.is_file() else PACKER_DIR / WAIT_SCRIPT, dest / WAIT_SCRIPT)
    written.append(dest / WAIT_SCRIPT)
    var_file = dest / var_file_name(image_name)
    tmp = var_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    tmp.replace(var_file)
    written.append(var_file)
    written.append(write_verify_bundle(catalog, dest / VERIFY_DIR))
    return written
