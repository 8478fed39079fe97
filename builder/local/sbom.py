"""SBOM: a CycloneDX 1.6 JSON document (``*.cdx.json``) of every dpkg package installed in a root filesystem,
plus the catalog's tarball downloads (not in dpkg) with their SHA-256. Built with cyclonedx-python-lib.

Two builds from the same inputs give the same *package list* (``package_list``: every component's kind, name,
version and purl, sorted), not the same document: the document's ``serialNumber`` and ``metadata.timestamp`` are
new on every build, and its metadata carries the build's version. ``package_list_digest`` is recorded in the build
manifest (``sbom_package_list_sha256``) so two builds compare by one value; ``compare_package_lists`` says what
differs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.local.tools import output

FIELDS = ("Package", "Version", "Architecture", "db:Status-Abbrev", "source:Package", "source:Version", "Maintainer")


@dataclass(frozen=True)
class DpkgPackage:
    name: str
    version: str
    arch: str
    source: str
    source_version: str
    maintainer: str


def os_release(tree: Path) -> dict[str, str]:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        path = tree / candidate
        if path.exists():
            pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
            return {k: v.strip().strip('"') for k, v in pairs}
    return {}


def dpkg_packages(tree: Path) -> list[DpkgPackage]:
    """Installed packages from ``tree``'s dpkg database (``dpkg-query --admindir``; nothing runs in the tree)."""
    fmt = "\\t".join(f"${{{f}}}" for f in FIELDS) + "\\n"
    text = output(["dpkg-query", f"--admindir={tree / 'var/lib/dpkg'}", "-W", f"-f={fmt}"])
    packages = []
    for line in text.splitlines():
        name, version, arch, status, source, source_version, maintainer = (line.split("\t") + [""] * 7)[:7]
        if not status.startswith("i"):
            continue
        packages.append(DpkgPackage(name, version, arch, source or name, source_version or version, maintainer))
    return sorted(packages, key=lambda p: p.name)


def make_sbom(tree: Path, image: str, version: str, downloads: dict[str, Any] | None = None) -> tuple[str, int]:
    """The SBOM as JSON text and the number of dpkg packages in it."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output import OutputFormat, make_outputter
    from cyclonedx.schema import SchemaVersion
    from packageurl import PackageURL

    release = os_release(tree)
    distro_id = release.get("ID", "debian")
    distro = f"{distro_id}-{release.get('VERSION_ID', '')}".rstrip("-")
    bom = Bom()
    bom.metadata.component = Component(name=image, version=version, type=ComponentType.OPERATING_SYSTEM,
                                       description=release.get("PRETTY_NAME"))
    packages = dpkg_packages(tree)
    for pkg in packages:
        qualifiers = {"arch": pkg.arch, "distro": distro}
        if pkg.source != pkg.name or pkg.source_version != pkg.version:
            qualifiers["upstream"] = f"{pkg.source}@{pkg.source_version}"
        purl = PackageURL("deb", distro_id, pkg.name, pkg.version, qualifiers)
        bom.components.add(Component(
            name=pkg.name, version=pkg.version, type=ComponentType.LIBRARY, purl=purl, bom_ref=purl.to_string(),
            publisher=pkg.maintainer or None, properties=[Property(name="builder:source", value="dpkg")]))
    for name, download in sorted((downloads or {}).items()):
        bom.components.add(Component(
            name=name, version=str(download.get("version", "")), type=ComponentType.APPLICATION,
            bom_ref=f"download:{name}", hashes=[HashType(alg=HashAlgorithm.SHA_256, content=download["sha256"])],
            properties=[Property(name="builder:source", value="download"),
                        Property(name="builder:filename", value=download.get("filename", ""))]))
    bom.register_dependency(bom.metadata.component, list(bom.components))
    text = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)
    return text, len(packages)


def write_sbom(tree: Path, dest: Path, image: str, version: str, downloads: dict[str, Any] | None = None) -> int:
    text, count = make_sbom(tree, image, version, downloads)
    dest.write_text(text, encoding="utf-8")
    return count


def _document(bom: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(bom, dict):
        return bom
    if isinstance(bom, Path):
        bom = bom.read_text(encoding="utf-8")
    return json.loads(bom)


def package_list(bom: str | Path | dict[str, Any]) -> list[dict[str, str]]:
    """The comparable part of an SBOM (its JSON text, file or parsed document): one entry per component, sorted,
    with ``kind`` (``dpkg`` or ``download``), ``name``, ``version`` and ``purl`` (a dpkg package's carries its
    architecture, distribution and source package). Left out: the serial number, time stamp and metadata (the
    build's version), and download checksums (an upstream tarball's is the catalog's pin, in the inputs digest;
    a stand-in tarball's changes with each feed build's archive time stamps)."""
    entries = []
    for component in _document(bom).get("components", []):
        props = {p.get("name"): p.get("value") for p in component.get("properties", [])}
        entries.append({"kind": props.get("builder:source", ""), "name": component.get("name", ""),
                        "version": component.get("version", ""), "purl": component.get("purl", "")})
    return sorted(entries, key=lambda e: (e["kind"], e["name"], e["version"], e["purl"]))


def package_list_digest(bom: str | Path | dict[str, Any]) -> str:
    """sha256 of ``package_list`` as canonical JSON: equal for two builds with the same package list."""
    text = json.dumps(package_list(bom), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def compare_package_lists(a: str | Path | dict[str, Any], b: str | Path | dict[str, Any]) -> dict[str, Any]:
    """What differs between the package lists of two SBOMs: ``same``, and ``only_a`` / ``only_b`` (entries in one
    list only; a package at another version shows in both)."""
    left = {json.dumps(e, sort_keys=True) for e in package_list(a)}
    right = {json.dumps(e, sort_keys=True) for e in package_list(b)}
    return {"same": left == right, "only_a": [json.loads(e) for e in sorted(left - right)],
            "only_b": [json.loads(e) for e in sorted(right - left)]}
