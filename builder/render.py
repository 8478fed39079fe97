"""Render the Ansible variables for one catalog image: everything ``ansible/image.yml`` needs.

Every value comes from the image's ``Stack`` (``builder.stack``): components and their pins, apt packages,
SKU facts, package feeds and downloads, the in-image manifest. Feeds derive from one ``package_feed`` setting
(``builder.stack.feeds``): ``upstream``, a mirror base URL, or ``stand-in`` (the local test feed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.errors import InputError
from builder.paths import DEFAULT_CACHE, git_commit
from builder.stack import resolve
from builder.stack.feeds import CUDA_DISTRO, check_feed
from builder.stack.layers import FINAL_ROLES, LAYERS

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog
    from builder.standin import Feed

TARGETS = ("local", "azure")
VARS_FILE = "ansible-vars.yml"


def require_valid_image(catalog: Catalog, image_name: str) -> None:
    """Raise InputError with the stack rules' errors for ``image_name`` (what ``builder validate`` reports).

    Every command that reads an image to produce something (render, build, reference, verify) calls this first:
    an image ``validate`` rejects is never rendered (issue 18: ``render`` wrote files for such an image).
    """
    from builder.catalog.rules import check_image

    errors = [p for p in check_image(catalog.get(image_name), catalog) if p.severity == "error"]
    if errors:
        raise InputError(errors)


def ansible_vars(catalog: Catalog, image_name: str, target: str = "local", feed: str | Feed = "upstream",
                 os_override: str | None = None, *, image_version: str = "0.0.0-dev", commit: str | None = None,
                 cache_dir: Path | None = None) -> dict[str, Any]:
    """Everything the playbook needs for ``image_name``, derived from the catalog."""
    if target not in TARGETS:
        raise InputError(f"invalid value {target!r}: expected one of {', '.join(TARGETS)}", field="--target")
    require_valid_image(catalog, image_name)
    stack = resolve(catalog, image_name, strict_skus=True)
    os_name = os_override or stack.os
    if os_name not in CUDA_DISTRO:
        raise InputError(f"unknown OS '{os_name}' (known: {', '.join(CUDA_DISTRO)})", field="os")
    overrides = None
    if not isinstance(feed, str):
        base, overrides, feed_name = feed.url, feed.downloads, "stand-in"
    elif feed == "stand-in":
        from builder.standin import ensure_feed

        standin = ensure_feed(catalog, cache_dir or DEFAULT_CACHE)
        base, overrides, feed_name = standin.url, standin.downloads, "stand-in"
    else:
        check_feed(feed)
        base, feed_name = feed, feed
    commit = commit or git_commit()
    feeds = stack.feeds(base, os_name)
    if overrides is not None:  # the stand-in feed: its own .debs, checked against their own checksums
        _standin_deb_checksums(feeds, feed if not isinstance(feed, str) else standin)
    return {
        "builder_image": stack.image,
        "builder_image_version": image_version,
        "builder_git_commit": commit,
        "builder_target": target,
        "builder_os": os_name,
        "builder_catalog_os": stack.os,
        "builder_kind": stack.kind,
        "builder_purpose": stack.purpose,
        "builder_components": stack.specs,
        "builder_packages": {name: [p.as_dict() for p in group] for name, group in stack.packages.items()},
        "builder_target_skus": list(stack.target_skus),
        "builder_skus": stack.skus,
        "builder_has_nvswitch": stack.has_nvswitch,
        "builder_has_infiniband": stack.has_infiniband,
        "builder_gpu_vendor": stack.gpu_vendor,
        "package_feed": feed_name,
        "package_feed_base": base,
        "builder_feeds": feeds,
        "builder_downloads": stack.downloads(base, overrides),
        "builder_layers": {layer.name: list(layer.roles) for layer in LAYERS},
        "builder_final_roles": list(FINAL_ROLES),
        "builder_image_manifest": stack.manifest(version=image_version, git_commit=commit, os_name=os_name,
                                                 target=target, package_feed=feed_name),
    }


def _standin_deb_checksums(feeds: dict[str, Any], standin: Feed) -> None:
    from builder.hashing import sha256_file
    from builder.stack.feeds import STANDIN_SOURCE

    for spec in feeds.values():
        if spec.get("kind") != "deb":
            continue
        for name, url in spec["debs"].items():
            local = standin.root / url.removeprefix(standin.url).lstrip("/")
            spec["checksums"][name] = {"sha256": sha256_file(local), "source": STANDIN_SOURCE}


class UnsafeText(str):
    """A rendered string that Ansible must never template: written with YAML's ``!unsafe`` tag."""


UNSAFE_TAG = "!unsafe"


# Jinja's default block, variable and comment openers (Ansible keeps the defaults and no line statements): a
# string without one of them cannot be a template.
JINJA_OPENERS = ("{{", "{%", "{#")


def mark_unsafe(value: Any) -> Any:
    """``value`` with every string in it (mapping keys too) that could be a template an :class:`UnsafeText`.

    Every value comes from the catalog (or is derived from it), so none may reach Ansible as a template: a
    ``{{ lookup('pipe', ...) }}`` in a download URL or a SKU's ``gpu_model`` would otherwise run on the
    controller when a role reads the variable. Ansible's documented way to declare such data is the ``!unsafe``
    YAML tag, on the individual elements of lists and mappings ("Unsafe or raw strings",
    https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_advanced_syntax.html#unsafe-or-raw-strings):
    Ansible then never templates the value, wherever it is used.

    Only strings holding a Jinja opener are tagged: ansible-core 2.19 resolves a ``!unsafe`` scalar as if it
    were plain, so ``!unsafe '12.10'`` would load as the float 12.1 and ``!unsafe '0000'`` as 0 (checked with
    its DataLoader; tests/unit/test_injection.py). Every other string is written quoted and stays a string.
    """
    if isinstance(value, str):
        return UnsafeText(value) if any(opener in value for opener in JINJA_OPENERS) else value
    if isinstance(value, dict):
        return {mark_unsafe(k): mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mark_unsafe(v) for v in value]
    return value


def dump_vars(data: dict[str, Any]) -> str:
    """The variables file's text: YAML with every string that could be a template tagged ``!unsafe`` (the
    variable names are builder's own)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(UnsafeText, lambda dumper, text: dumper.represent_scalar(UNSAFE_TAG, str(text)))
    plain = json.loads(json.dumps(data))
    return yaml.dump({name: mark_unsafe(value) for name, value in plain.items()}, Dumper=Dumper, sort_keys=False,
                     width=200)


def _construct_unsafe(loader: Any, node: Any) -> str:
    return loader.construct_scalar(node)


def _register_loader() -> None:
    """Let ``yaml.safe_load`` read a rendered variables file: the ``!unsafe`` tag reads as the string it marks.

    builder's own readers of ``ansible-vars.yml`` (``builder.converge``, the local pipeline, the tests) load it
    with ``yaml.safe_load``; this keeps them working (:func:`load_vars` is the explicit way).
    """
    import yaml

    for loader in (yaml.SafeLoader, getattr(yaml, "CSafeLoader", None)):
        if loader is not None and UNSAFE_TAG not in loader.yaml_constructors:
            loader.add_constructor(UNSAFE_TAG, _construct_unsafe)


_register_loader()


def load_vars(path: Path) -> Any:
    """Read a rendered variables file back (``!unsafe`` strings as plain strings)."""
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_render(catalog: Catalog, image_name: str, target: str, out_dir: Path, feed: str | Feed = "upstream",
                 **options: Any) -> list[Path]:
    """Write the variables file (and, for ``azure``, the Packer files) into ``out_dir``.

    Everything is checked and rendered first, then written into a temporary folder beside ``out_dir`` and moved
    into place with renames: a failure (a rule, an unwritable folder, a full disk) leaves ``out_dir`` as it was.
    """
    import shutil
    import tempfile

    data = ansible_vars(catalog, image_name, target, feed, **options)
    text = ("# Rendered by `builder render` from the catalog; do not edit. Every string is data: one that holds\n"
            "# a Jinja opener is tagged !unsafe, so Ansible never templates it.\n" + dump_vars(data))
    if target == "azure":
        from builder.packer.render import packer_variables

        packer_variables(catalog, image_name, out_dir)  # its checks, before anything is written
    out_dir = Path(out_dir)
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise InputError(f"'{existing}' is not a folder", field="--out")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.render.", dir=out_dir.parent))
    try:
        (stage / VARS_FILE).write_text(text, encoding="utf-8")
        names = [VARS_FILE]
        if target == "azure":
            from builder.packer.render import write_packer_files

            names += [p.name for p in write_packer_files(catalog, image_name, out_dir, stage=stage)]
        out_dir.mkdir(exist_ok=True)
        for name in names:
            dest = out_dir / name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            (stage / name).replace(dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out_dir / name for name in names]
