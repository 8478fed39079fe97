"""The resolved stack of one catalog image: what every stage (render, verify, tags, docs, plan, outdated, the
stand-in feed, the in-image manifest) reads instead of flattening the catalog itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import builder.stack.feeds as feed_table
import builder.stack.tags as T
from builder.errors import InputError
from builder.stack.components import COMPONENTS
from builder.stack.layers import layer_of
from builder.stack.packages import PACKAGE_TABLE, Package, packages_for
from builder.stack.records import exact_versions

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog
    from builder.catalog.schema import Image


@dataclass(frozen=True)
class Component:
    """One pinned component: its catalog entry and where it is installed (role, layer), checked and published."""

    name: str
    version: str
    spec: dict[str, Any]
    packages: tuple[Package, ...] = ()

    @property
    def role(self) -> str:
        return COMPONENTS[self.name].role

    @property
    def layer(self) -> str:
        return layer_of(self.name)

    @property
    def unit(self) -> str | None:
        return COMPONENTS[self.name].unit

    @property
    def checks(self) -> tuple[str, ...]:
        return COMPONENTS[self.name].checks

    @property
    def tag(self) -> str:
        return T.component_tag(self.name)

    @property
    def download(self) -> dict[str, Any] | None:
        return self.spec.get("download")


@dataclass(frozen=True)
class Stack:
    """Everything derived from one image's catalog entry and its target SKUs' facts."""

    image: str
    os: str
    kind: str
    purpose: str
    target_skus: tuple[str, ...]
    components: dict[str, Component]
    skus: dict[str, dict[str, Any]] = field(default_factory=dict)  # facts of the known target SKUs

    # -- components -------------------------------------------------------------------------------------
    @property
    def versions(self) -> dict[str, str]:
        """``component -> version``: the one flat view (manifest, tags, plan, docs, diff)."""
        return {name: c.version for name, c in self.components.items()}

    @property
    def specs(self) -> dict[str, dict[str, Any]]:
        """``component -> catalog entry`` (JSON-ready)."""
        return {name: c.spec for name, c in self.components.items()}

    @property
    def packages(self) -> dict[str, list[Package]]:
        """Pinned apt packages per component that has any (in the package table's order)."""
        return {name: list(self.components[name].packages) for name in PACKAGE_TABLE
                if name in self.components and self.components[name].packages}

    @property
    def has_nvswitch(self) -> bool:
        return any(f.get("nvswitch") for f in self.skus.values())

    @property
    def has_infiniband(self) -> bool:
        return any(f.get("infiniband") for f in self.skus.values())

    @property
    def gpu_vendor(self) -> str:
        vendors = sorted({f["gpu_vendor"] for f in self.skus.values() if f.get("gpu_vendor")})
        return vendors[0] if len(vendors) == 1 else ("none" if not vendors else "mixed")

    def installed(self) -> dict[str, Component]:
        """The components a build installs: Fabric Manager only where a target SKU has NVSwitch (as the
        playbook's ``when`` on the fabric_manager role)."""
        return {name: c for name, c in self.components.items() if name != "fabric_manager" or self.has_nvswitch}

    def units(self) -> list[str]:
        """systemd units of the installed components (enabled by the roles, checked by the static suite)."""
        return [c.unit for c in self.installed().values() if c.unit]

    # -- feeds ------------------------------------------------------------------------------------------
    def feeds(self, base: str, os_name: str | None = None) -> dict[str, Any]:
        """The apt feeds and release .deb locations of the pinned packages as ``base`` serves them."""
        return feed_table.apt_feeds(self.specs, self.packages, os_name or self.os, base)

    def downloads(self, base: str, overrides: dict[str, dict] | None = None) -> dict[str, Any]:
        return feed_table.downloads(self.specs, base, overrides)

    # -- published facts --------------------------------------------------------------------------------
    def version_tags(self, extra: dict[str, str]) -> dict[str, str]:
        """The tags of a gallery version of this image: ``component.<name>`` pins, the image name, then
        ``extra`` (provenance, verification; they win)."""
        return T.version_tags(self.image, self.versions, extra)

    def manifest(self, *, version: str, git_commit: str, os_name: str, target: str,
                 package_feed: str) -> dict[str, Any]:
        """``/etc/builder/image.json``: rendered here once, written by the ``image_manifest`` role."""
        return {"image": self.image, "version": version, "git_commit": git_commit, "os": os_name,
                "catalog_os": self.os, "kind": self.kind, "purpose": self.purpose, "target": target,
                "target_skus": list(self.target_skus), "package_feed": package_feed, "components": self.versions}


def from_image(image: Image, skus: dict[str, dict[str, Any]] | None = None) -> Stack:
    """The stack of a resolved catalog ``Image`` (``skus``: facts of its target SKUs, when known)."""
    specs = image.components.model_dump(mode="json", exclude_none=True)
    pinned = exact_versions(packages_for(specs), image.os.value)
    components = {name: Component(name, str(spec["version"]), spec, tuple(pinned.get(name, ())))
                  for name, spec in specs.items()}
    return Stack(image=image.name, os=image.os.value, kind=image.kind.value, purpose=image.purpose.value,
                 target_skus=tuple(image.target_skus), components=components, skus=dict(skus or {}))


def resolve(catalog: Catalog, image_name: str, *, strict_skus: bool = False) -> Stack:
    """The stack of catalog image ``image_name``; ``strict_skus``: a target SKU missing from skus.yaml is an
    InputError (render), else it is left out of the facts (verification of a partly known image)."""
    image = catalog.model(image_name)
    facts = {}
    for sku in image.target_skus:
        model = catalog.skus.get(sku)
        if model is None:
            if strict_skus:
                raise InputError(f"target SKU '{sku}' is not in skus.yaml", file=catalog.root / "skus.yaml",
                                 field=sku)
            continue
        facts[sku] = model.model_dump(mode="json", exclude_none=True)
    return from_image(image, facts)
