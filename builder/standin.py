"""The local stand-in package feed: real ``.deb`` packages and tarballs for every version the catalog pins.

Built from ``builder/data/standin-manifest.yaml`` (files per package) and each image's ``Stack`` (package
names, versions, feeds), laid out like a mirror (``<root>/<host>/<path>``), indexed
with ``apt-ftparchive`` and signed with a generated test key. Cached under ``<cache>/standin/<digest>``
where the digest covers the manifest, this module and the catalog's pins. It proves the roles' wiring
(repositories, keys, pins, holds, files, services), not vendor binaries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from builder.errors import InputError, OperationError
from builder.paths import FEED_RECORDS, STANDIN_MANIFEST
from builder.stack import resolve
from builder.stack.feeds import OSES
from builder.stack.packages import Package

if TYPE_CHECKING:
    from builder.catalog.loader import Catalog

MANIFEST = STANDIN_MANIFEST
BASE_URL = "file:///standin-root"  # placeholder replaced by the feed's real root
KEY_NAME = "builder stand-in feed (test key) <standin@builder.invalid>"


@dataclass(frozen=True)
class Feed:
    """A built stand-in feed: base URL (mirror layout), public key, and ``downloads``: upstream tarball URL ->
    ``{component, url, sha256}`` of the stand-in tarball (a component such as hpcx has one file per OS)."""

    root: Path
    url: str
    keyring: Path
    downloads: dict[str, dict[str, str]] = field(default_factory=dict)
    packages: int = 0


def placeholders(name: str, version: str) -> dict[str, str]:
    """``@NAME@`` ... values for one package or download."""
    upstream = version.split(":")[-1].split("-")[0].split("+")[0]
    parts = [*upstream.split("."), "0", "0", "0"]
    return {"NAME": name, "NAME_TAIL": name.rsplit("-", 1)[-1], "VERSION": version, "UPSTREAM": upstream,
            "MAJOR": parts[0], "MINOR": parts[1], "PATCH": parts[2]}


def fill(text: str, values: dict[str, str]) -> str:
    return re.sub(r"@([A-Z_]+)@", lambda m: values.get(m.group(1), m.group(0)), text)


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the stand-in manifest: {exc}", file=path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("packages"), list):
        raise InputError("expected a mapping with 'packages' and 'downloads' lists", file=path, line=1)
    return data


def _entry(entries: list[dict], key: str, what: str, path: Path) -> dict:
    for entry in entries:
        if re.search(entry["match"], key):
            return entry
    raise InputError(f"no stand-in entry matches {what} '{key}': add one to the manifest", file=path,
                     field="packages" if what == "package" else "downloads")


def _files(spec: dict[str, Any], values: dict[str, str]) -> Iterator[tuple[str, str, int]]:
    for path, body in (spec.get("files") or {}).items():
        content, mode = (body, 0o644) if isinstance(body, str) else (body["content"], int(body["mode"], 8))
        yield fill(path, values), fill(content, values), mode


def standin_version(version: str) -> str:
    """A concrete version for a pin that is an apt version glob (no record gives the real build): the revision
    is ``0standin`` and any other ``*`` is ``0``, so the stand-in never passes for a real revision."""
    if "*" not in version:
        return version
    if version.endswith("-*"):
        version = version[:-2] + "-0standin"
    return version.replace("*", "0")


def _concrete(pins: dict[str, list[Package]]) -> dict[str, list[Package]]:
    import dataclasses

    return {name: [dataclasses.replace(p, version=standin_version(p.version)) for p in group]
            for name, group in pins.items()}


def catalog_pins(catalog: Catalog) -> tuple[dict[tuple[str, str], Package], list[tuple[str, dict, str]], list]:
    """Every pinned package (a version glob made concrete by ``standin_version``), every download, and per
    (os, image) the feeds the render would use."""
    packages: dict[tuple[str, str], Package] = {}
    downloads: dict[str, tuple[str, dict, str]] = {}
    repos: list[tuple[dict[str, Any], dict[str, list[Package]]]] = []
    for image in sorted(catalog.buildable(), key=lambda i: i.name):
        if image.model is None:
            continue
        stack = resolve(catalog, image.name)
        pins = _concrete(stack.packages)
        for group in pins.values():
            for pkg in group:
                packages[(pkg.name, pkg.version)] = pkg
        for name, component in stack.components.items():
            if component.download:
                downloads[component.download["url"]] = (name, component.spec, component.download["url"])
        for os_name in OSES:
            repos.append((os_name, stack.feeds(BASE_URL, os_name), pins))
    return packages, sorted(downloads.values(), key=lambda d: d[2]), repos


def feed_digest(catalog: Catalog, manifest: Path = MANIFEST) -> str:
    packages, downloads, repos = catalog_pins(catalog)
    records = [p.read_text() for p in sorted(FEED_RECORDS.glob("*.yaml"))]
    payload = json.dumps([Path(__file__).read_text(), manifest.read_text(), sorted(packages),
                          [d[2] + str(d[1]["version"]) for d in downloads],
                          [feeds for _, feeds, _ in repos], records], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def ensure_feed(catalog: Catalog, cache_dir: Path, manifest: Path = MANIFEST) -> Feed:
    """The stand-in feed for ``catalog`` (built on a cache miss)."""
    digest = feed_digest(catalog, manifest)
    final = cache_dir / "standin" / digest
    if not (final / "feed.json").exists():
        _require("dpkg-deb", "apt-ftparchive", "gpg")
        work = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=_mkdir(cache_dir / "standin")))
        try:
            _build(catalog, manifest, work, cache_dir / "standin" / "gnupg")
            if final.exists():
                shutil.rmtree(final)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    info = json.loads((final / "feed.json").read_text())
    root = final / "root"
    downloads = {upstream: {"component": name, "url": f"file://{root}/{rel}", "sha256": sha}
                 for upstream, (name, rel, sha) in info["downloads"].items()}
    return Feed(root=root, url=f"file://{root}", keyring=root / "keyring.asc", downloads=downloads,
                packages=info["packages"])


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise InputError(f"the stand-in feed needs {', '.join(missing)}: run `bash .ci/setup` "
                         "(apt-get install dpkg-dev apt-utils gnupg)")


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise OperationError(f"{' '.join(command[:3])} failed: {result.stderr.strip()[-400:]}")
    return result


def _build(catalog: Catalog, manifest_path: Path, work: Path, gnupg: Path) -> None:
    manifest = load_manifest(manifest_path)
    packages, downloads, repos = catalog_pins(catalog)
    root = work / "root"
    pool = _mkdir(work / "debs")
    debs: dict[tuple[str, str], Path] = {}
    suites: dict[Path, dict[str, tuple[list[str], str]]] = {}  # repo folder -> suite -> (components, key path)
    companions: dict[tuple[str, str], list[str]] = {}

    def deb(name: str, version: str) -> Path:
        if (name, version) not in debs:
            spec = _with_recorded_relations(_entry(manifest["packages"], name, "package", manifest_path), name,
                                            version)
            debs[(name, version)] = build_deb(name, version, spec, pool)
            companions[(name, version)] = [fill(c, placeholders(name, version)) for c in spec.get("companions") or []]
        return debs[(name, version)]

    def with_companions(name: str, version: str) -> list[tuple[str, str]]:
        """``(name, version)`` and the companions its stand-in depends on, transitively (built at its version)."""
        found: list[tuple[str, str]] = []
        queue = [(name, version)]
        while queue:
            current = queue.pop(0)
            if current not in found:
                found.append(current)
                deb(*current)
                queue.extend((c, version) for c in companions[current])
        return found

    closure = {key: with_companions(*key) for key in sorted(packages)}
    for os_name, feeds, pins in repos:
        for feed_name, feed in feeds.items():
            members = [p for group in pins.values() for p in group if p.feed == feed_name]
            if feed["kind"] == "deb":
                for pkg in members:
                    target = root / _rel(feed["debs"][pkg.name])
                    _mkdir(target.parent)
                    shutil.copy(debs[(pkg.name, pkg.version)], target)
                continue
            repo = _mkdir(root / _rel(feed["url"]))
            dest = _mkdir(repo / ("." if feed["suite"] == "/" else "pool/main"))
            for name, version in _with_neighbours(feed_name, os_name, members, closure):
                shutil.copy(deb(name, version), dest)
            suites.setdefault(repo, {})[feed["suite"]] = (feed["components"], _rel(feed["key_url"]))
    public = ensure_key(gnupg)
    for repo, per_suite in sorted(suites.items()):
        for suite, (components, key_rel) in sorted(per_suite.items()):
            index_repo(repo, suite, components)
            sign_repo(repo, suite, gnupg)
            _mkdir((root / key_rel).parent)
            (root / key_rel).write_text(public)
    (root / "keyring.asc").write_text(public)
    tarballs = {}
    for name, spec, url in downloads:
        entry = _entry(manifest.get("downloads") or [], name, "download", manifest_path)
        rel = _rel(url)
        target = root / rel
        _mkdir(target.parent)
        build_tarball(target, entry, placeholders(name, str(spec["version"])))
        tarballs[url] = (name, rel, hashlib.sha256(target.read_bytes()).hexdigest())
    (work / "feed.json").write_text(json.dumps({"downloads": tarballs, "packages": len(debs)}, indent=2))


RELATIONS = ("depends", "pre_depends", "provides", "conflicts", "breaks", "replaces")


def _with_recorded_relations(spec: dict[str, Any], name: str, version: str) -> dict[str, Any]:
    """``spec`` with the relation fields a recorded fact gives for exactly ``name`` ``version``
    (builder/data/feeds: the repository's own Depends, Pre-Depends, Provides, Conflicts, Breaks, Replaces); the
    manifest's relations stay for the fields no record shows (null) and for versions nothing records."""
    from builder.stack.records import all_records

    recorded = [r for r in all_records() if r.name == name and r.version == version]
    merged = dict(spec)
    for relation in RELATIONS:
        values = {tuple(r.fields[relation]) for r in recorded if r.fields.get(relation) is not None}
        if len(values) == 1:  # records of several OSes that agree (one .deb serves them all)
            merged[relation] = list(next(iter(values)))
    return merged


def _with_neighbours(feed: str, os_name: str, members: list[Package],
                     closure: dict[tuple[str, str], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """The pins of one repository, their companions (``closure``: each pin with its companions, transitively),
    and every other version the recorded repository facts (builder/data/feeds) list for those names on
    ``os_name``: as in the real repository, newer builds sit beside the pinned ones, so an unpinned name or a pin
    apt has not read yet pulls the newest."""
    from builder.stack.records import for_package

    wanted = {(p.name, p.version) for p in members}
    wanted |= {pair for p in members for pair in closure.get((p.name, p.version), [])}
    for name in sorted({n for n, _ in wanted}):
        wanted |= {(name, r.version) for r in for_package(feed, os_name, name) if r.os == os_name}
    return sorted(wanted)


def _rel(url: str) -> str:
    """Path of ``url`` under the feed root (mirror layout ``<host>/<path>``)."""
    parts = urlsplit(url)
    prefix = urlsplit(BASE_URL).path.rstrip("/") + "/"
    path = parts.path[len(prefix):] if parts.path.startswith(prefix) else parts.netloc + parts.path
    return path.strip("/") or "."


def build_deb(name: str, version: str, spec: dict[str, Any], out: Path) -> Path:
    """A real binary package with the manifest's files, built with ``dpkg-deb``."""
    values = placeholders(name, version)
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        for path, content, mode in _files(spec, values):
            target = tree / path.lstrip("/")
            _mkdir(target.parent)
            target.write_text(content)
            target.chmod(mode)
        _mkdir(tree / "DEBIAN")
        control = {"Package": name, "Version": version, "Architecture": "amd64",
                   "Maintainer": "builder stand-in feed <standin@builder.invalid>", "Section": "misc",
                   "Priority": "optional", "Description": f"{spec.get('description', name)}\n stand-in package "
                   "generated by builder for offline tests; not the vendor's software."}
        for relation in RELATIONS:
            relations = [fill(d, values) for d in spec.get(relation) or []]
            if relations:
                control["-".join(part.capitalize() for part in relation.split("_"))] = ", ".join(relations)
        (tree / "DEBIAN" / "control").write_text("".join(f"{k}: {v}\n" for k, v in control.items()))
        conffiles = [p for p, _, _ in _files(spec, values) if p.startswith("/etc/")]
        if conffiles:
            (tree / "DEBIAN" / "conffiles").write_text("".join(f"{p}\n" for p in conffiles))
        target = out / f"{name}_{version.split(':')[-1]}_amd64.deb"
        _run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(target)])
    return target


def build_tarball(target: Path, spec: dict[str, Any], values: dict[str, str]) -> None:
    """A tarball (compression from the file name) with one top folder holding the manifest's files."""
    top = fill(spec["top"], values)
    mode = "w:bz2" if target.name.endswith((".tbz", ".tar.bz2")) else "w:gz"
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / top
        for path, content, file_mode in _files(spec, values):
            file = base / path
            _mkdir(file.parent)
            file.write_text(content)
            file.chmod(file_mode)
        with tarfile.open(target, mode) as archive:
            archive.add(base, arcname=top, filter=_normalize)


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def index_repo(repo: Path, suite: str, components: list[str]) -> None:
    """Write Packages and Release for a flat (``suite == "/"``) or ``dists/`` repository."""
    if suite == "/":
        packages = _run(["apt-ftparchive", "packages", "."], cwd=repo).stdout
        (repo / "Packages").write_text(packages)
        release_dir = repo
        options = []
    else:
        for component in components:
            index = _mkdir(repo / "dists" / suite / component / "binary-amd64")
            index.joinpath("Packages").write_text(_run(["apt-ftparchive", "packages", f"pool/{component}"],
                                                       cwd=repo).stdout)
        release_dir = repo / "dists" / suite
        options = ["-o", f"APT::FTPArchive::Release::Suite={suite}", "-o",
                   f"APT::FTPArchive::Release::Codename={suite}", "-o",
                   f"APT::FTPArchive::Release::Components={' '.join(components)}"]
    release = _run(["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=builder-stand-in",
                    "-o", "APT::FTPArchive::Release::Architectures=amd64", *options, "release", "."],
                   cwd=release_dir).stdout
    (release_dir / "Release").write_text(release)


def ensure_key(gnupg: Path) -> str:
    """Armored public test key (generated once in ``gnupg``)."""
    _mkdir(gnupg).chmod(0o700)
    with _agent(gnupg):
        listed = subprocess.run(["gpg", "--homedir", str(gnupg), "--list-secret-keys", KEY_NAME],
                                capture_output=True, check=False)
        if listed.returncode != 0:
            _run(["gpg", "--homedir", str(gnupg), "--batch", "--passphrase", "", "--quick-gen-key", KEY_NAME,
                  "ed25519", "sign", "never"])
        return _run(["gpg", "--homedir", str(gnupg), "--armor", "--export", KEY_NAME]).stdout


def sign_repo(repo: Path, suite: str, gnupg: Path, key: str = KEY_NAME) -> None:
    """(Re)write InRelease and Release.gpg with ``key`` from ``gnupg``."""
    release_dir = repo if suite == "/" else repo / "dists" / suite
    base = ["gpg", "--homedir", str(gnupg), "--batch", "--yes", "--local-user", key]
    with _agent(gnupg):
        _run([*base, "--clearsign", "-o", str(release_dir / "InRelease"), str(release_dir / "Release")])
        _run([*base, "--armor", "--detach-sign", "-o", str(release_dir / "Release.gpg"),
              str(release_dir / "Release")])


def repositories(root: Path) -> list[tuple[Path, str]]:
    """Every signed repository under a feed root: (repo folder, suite)."""
    found = []
    for release in root.rglob("Release"):
        if release.parent.parent.name == "dists":
            found.append((release.parent.parent.parent, release.parent.name))
        else:
            found.append((release.parent, "/"))
    return sorted(found)


@contextlib.contextmanager
def _agent(gnupg: Path) -> Iterator[None]:
    """Run gpg commands, then stop the agent they started (no stray processes).

    ``gpgconf --kill`` only asks the agent to stop; the next gpg call would otherwise connect to the dying agent
    ("can't connect to the agent: End of file"), so wait until its socket is gone.
    """
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    try:
        yield
    finally:
        listed = subprocess.run(["gpgconf", "--homedir", str(gnupg), "--list-dirs", "agent-socket"],
                                capture_output=True, text=True, check=False, env=env)
        socket = Path(listed.stdout.strip()) if listed.returncode == 0 and listed.stdout.strip() else None
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"], capture_output=True,
                       check=False, env=env)
        deadline = time.monotonic() + 10
        while socket is not None and socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def apt_repositories(catalog: Catalog, feed_url: str, os_name: str) -> list[dict[str, Any]]:
    """Every apt repository the stand-in serves for ``os_name`` (any image's feeds, as ``catalog_pins`` lists
    them), addressed at ``feed_url``: ``{url, suite, components}``, sorted."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for repo_os, feeds, _ in catalog_pins(catalog)[2]:
        if repo_os != os_name:
            continue
        for spec in feeds.values():
            if spec.get("kind") == "apt":
                url = feed_url.rstrip("/") + spec["url"].removeprefix(BASE_URL)
                found[(url, spec["suite"])] = {"url": url, "suite": spec["suite"],
                                               "components": list(spec.get("components") or [])}
    return [found[key] for key in sorted(found)]
