"""Lay a base profile (``builder/data/bases``) onto the build's Debian root: the cached base layer a local build
converges from, so the roles meet what the marketplace base already carries (docs/base-profiles.md).

What is laid, from the profile's own entries:

- its apt sources, pointed at the stand-in feed where the feed serves that repository (others are left out:
  nothing serves them offline), each with its Signed-By keyring;
- its packages at the recorded versions: from those sources with apt, as the base's recipe installs them (the
  driver pinning package in its own run first), else as empty stand-in packages; a package with no recorded
  version, or one the Debian tree already has, is left out; holds as recorded;
- its kernel meta packages as empty stand-ins (no version is recorded: the stand-in's is test data);
- its files with recorded content (recorded appended lines are appended), its enabled and masked units (a unit
  whose file the tree lacks is left out), and its trees under /opt (the same build of a download the image uses is
  unpacked there from the stand-in tarball, as the base carries it; a tree packages installed is left out).

Waagent settings and files recorded without content are not laid; ``profile.json`` in the layer lists
every entry left out and why (kept beside the cached layer, not in the image).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from builder.errors import OperationError
from builder.stack.bases import BaseProfile
from builder.verify.probe import UNIT_DIRS

KERNEL_STANDIN_VERSION = "{upstream}.0.1000+standin"  # no kernel version is recorded: test data, named as such
PINNING_PREFIX = "nvidia-driver-pinning-"


@dataclass
class Laid:
    """What was laid and what was left out (entry -> reason)."""

    sources: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    trees: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"sources": self.sources, "packages": self.packages, "files": self.files, "trees": self.trees,
                "services": self.services, "left_out": self.left_out}


def _chroot(root: Path, *command: str, log: Path) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"# chroot {' '.join(command)}\n")
        out.flush()
        proc = subprocess.run(["chroot", str(root), *command], stdout=out, stderr=subprocess.STDOUT, check=False,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
                                   "LANG": "C.UTF-8"})
    if proc.returncode != 0:
        raise OperationError(f"laying the base profile: `{' '.join(command[:4])}` failed (log: {log})")


def _dearmor(keyring: Path, target: Path) -> None:
    """The stand-in feed's armored key as a binary keyring at ``target`` (what Signed-By names)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gpg", "--dearmor", "--yes", "-o", str(target), str(keyring)], check=True, capture_output=True)


def _installed(root: Path) -> set[str]:
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n"],
                         capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}


TEMP_SOURCES = "etc/apt/sources.list.d/builder-base-profile.list"
TEMP_KEYRING = "etc/apt/keyrings/builder-base-profile.gpg"


def _lines(path: Path) -> list[str]:
    """The lines of a one-line-style source file (keyrings and preferences are not sources)."""
    if path.suffix != ".list" or not path.is_file():
        return []
    return path.read_text(errors="replace").splitlines()


def _repo_folder(feed_root: Path, feed_url: str, url: str) -> Path:
    """The host folder of a stand-in repository addressed at ``url`` (under ``feed_url``)."""
    return feed_root / url.removeprefix(feed_url.rstrip("/")).strip("/")


def _stanzas(repos: list[Path]) -> list[dict[str, str]]:
    """Package and Version of every stanza in the Packages indexes of the stand-in repositories (deb822, as
    ``builder.outdated.fetch_index`` reads a feed's index)."""
    from debian.deb822 import Packages

    found = []
    for repo in repos:
        for index in sorted(repo.rglob("Packages")):
            with index.open(encoding="utf-8") as handle:
                found += [{"Package": s["Package"], "Version": s["Version"]}
                          for s in Packages.iter_paragraphs(handle, use_apt_pkg=False) if "Package" in s]
    return found


def _offered(stanzas: list[dict[str, str]]) -> dict[str, list[str]]:
    """package -> the versions the stand-in repositories offer."""
    offered: dict[str, list[str]] = {}
    for stanza in stanzas:
        offered.setdefault(stanza["Package"], []).append(stanza["Version"])
    return offered


def layer_inputs(profile: BaseProfile, feed: Any, repos: list[dict[str, Any]]) -> list[Any]:
    """What of the stand-in feed the layer uses: the .debs offered under the profile's package names, the
    tarballs it may unpack, and what makes their content (the stand-in manifest and builder/standin.py; a
    rebuilt feed's files differ in their timestamps only). A pin change elsewhere keeps the cached layer."""
    import hashlib

    from builder.paths import STANDIN_MANIFEST
    from builder.standin import __file__ as standin_module

    names = {p.get("name") for p in profile.packages()}
    debs = sorted((s["Package"], s["Version"])
                  for s in _stanzas([_repo_folder(feed.root, feed.url, r["url"]) for r in repos])
                  if s["Package"] in names)
    hows = " ".join(str(t.get("how") or "") for t in profile.data.get("trees") or [])
    tarballs = sorted(url for url in feed.downloads if url in hows)
    makers = hashlib.sha256(STANDIN_MANIFEST.read_bytes() + Path(standin_module).read_bytes()).hexdigest()
    return [debs, tarballs, makers]


def _source_line(entry: dict[str, Any], uri: str) -> str:
    components = " ".join(entry.get("components") or [])
    return f"deb [signed-by={entry['signed_by']}] {uri} {entry.get('suite', '/')} {components}".rstrip() + "\n"


def lay_sources(root: Path, profile: BaseProfile, feed_url: str, feed_root: Path, keyring: Path, laid: Laid) -> None:
    """Write the profile's apt sources that the feed serves (mirror layout), with their keyrings."""
    for entry in profile.data.get("apt_sources") or []:
        if not entry.get("path"):
            laid.left_out[str(entry.get("uri") or entry.get("line") or "an apt source")] = "no file path recorded"
            continue
        target = root / entry["path"].lstrip("/")
        if entry.get("state") == "removed":
            laid.left_out[entry["path"]] = "the base removed it"
            continue
        if entry.get("kind") in ("keyring", "preferences"):
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.get("content") is not None:
                target.write_text(str(entry["content"]))
            elif entry["kind"] == "keyring":  # the stand-in feed's key in the base's keyring file
                _dearmor(keyring, target)
            else:
                laid.left_out[entry["path"]] = "no content recorded"
                continue
            laid.sources.append(entry["path"])
            continue
        parts = urlsplit(entry.get("uri") or "")
        repo = feed_root / f"{parts.netloc}{parts.path}".strip("/")
        if not parts.netloc or not repo.is_dir() or not entry.get("signed_by"):
            laid.left_out[entry["path"]] = "the stand-in feed does not serve this repository"
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_source_line(entry, f"{feed_url.rstrip('/')}/{parts.netloc}{parts.path}"))
        _dearmor(keyring, root / entry["signed_by"].lstrip("/"))
        laid.sources.append(entry["path"])


def _version_pattern(entry: dict[str, Any]) -> str | None:
    if entry.get("version"):
        return str(entry["version"])
    if entry.get("upstream"):
        return f"{entry['upstream']}*"
    return None


def _pick(pattern: str, versions: list[str]) -> str | None:
    from debian.debian_support import Version

    found = [v for v in versions if fnmatch.fnmatchcase(v, pattern)]
    return max(found, key=Version) if found else None


def lay_packages(root: Path, profile: BaseProfile, offered: dict[str, list[str]], log: Path, laid: Laid) -> None:
    """Install what the profile records: from the laid sources at the recorded version, else an empty stand-in."""
    from builder.standin import build_deb

    present = _installed(root)
    from_feed: list[tuple[str, str]] = []
    standins: list[tuple[str, str]] = []
    held: list[str] = []
    for entry in profile.packages():
        name, pattern = entry.get("name"), _version_pattern(entry)
        if not name:
            laid.left_out[f"{entry.get('component')} (no package name)"] = "no package name recorded"
            continue
        if pattern is None:
            laid.left_out[name] = "no version recorded"
            continue
        if name in present:
            laid.left_out[name] = "the Debian tree has its own package of this name"
            continue
        version = _pick(pattern, offered.get(name, []))
        if version:
            from_feed.append((name, version))
        elif "*" in pattern:
            standins.append((name, pattern.replace("*", "") + "-0standin"))
        else:
            standins.append((name, pattern))
        if entry.get("held"):
            held.append(name)
    for entry in (profile.data.get("kernel") or {}).get("packages") or []:
        if entry["name"] not in present:
            standins.append((entry["name"], KERNEL_STANDIN_VERSION.format(upstream=entry.get("upstream") or "0")))
            if entry.get("held"):
                held.append(entry["name"])
    if standins:
        inside = root / "tmp" / "builder-base-debs"
        inside.mkdir(parents=True, exist_ok=True)
        debs = [build_deb(n, v, {"description": f"base profile stand-in for {n} ({profile.file.name})"}, inside)
                for n, v in standins]
        _chroot(root, "dpkg", "-i", *[f"/tmp/builder-base-debs/{d.name}" for d in debs], log=log)
        shutil.rmtree(inside)
    if from_feed:
        _chroot(root, "apt-get", "update", "-q", log=log)  # the laid sources and the temporary list
        first = [f"{n}={v}" for n, v in from_feed if n.startswith(PINNING_PREFIX)]
        rest = [f"{n}={v}" for n, v in from_feed if not n.startswith(PINNING_PREFIX)]
        for batch in (first, rest):  # the base recipe installs the pinning package in its own run
            if batch:
                _chroot(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *batch, log=log)
    if held:
        _chroot(root, "apt-mark", "hold", *held, log=log)
    laid.packages = [f"{n}={v}" for n, v in sorted(from_feed + standins)]


def lay_files_and_trees(root: Path, profile: BaseProfile, downloads: dict[str, dict[str, Any]],
                        laid: Laid) -> None:
    """Files with recorded content; /opt trees (the stand-in tarball of the same build where the image uses it)."""
    for entry in profile.data.get("files") or []:
        target = root / entry["path"].lstrip("/")
        if entry.get("content") is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(str(entry["content"]))
        elif entry.get("appended") is not None:  # the recipe appends (tee -a, >>) to what the file holds
            target.parent.mkdir(parents=True, exist_ok=True)
            before = target.read_text() if target.exists() else ""
            glue = "" if not before or before.endswith("\n") else "\n"
            target.write_text(before + glue + str(entry["appended"]))
        else:
            laid.left_out[entry["path"]] = "no content recorded"
            continue
        laid.files.append(entry["path"])
    # A tree the profile says the base unpacked from a URL the image downloads too: the same build.
    unpacked = dict(downloads)
    for entry in profile.data.get("trees") or []:
        path = entry["path"]
        if not path.startswith("/opt/") or Path(path).suffix in (".sh", ".txt"):
            laid.left_out[path] = "not a folder under /opt"
            continue
        how = str(entry.get("how") or "")
        if how.startswith("installed by"):  # by packages this layer cannot lay (their list is not recorded)
            laid.left_out[path] = "installed by packages whose list is not recorded"
            continue
        target = root / path.lstrip("/")
        download = next((d for u, d in unpacked.items() if u in how and "unpacked" in how), None)
        if download and str(download.get("url", "")).startswith("file://"):
            _unpack_top(Path(download["url"].removeprefix("file://")), target)
        else:
            target.mkdir(parents=True, exist_ok=True)
            (target / ".builder-base-profile").write_text(f"stand-in for {path} ({profile.file.name})\n")
        laid.trees.append(path)


def lay_services(root: Path, profile: BaseProfile, log: Path, laid: Laid) -> None:
    """Enable or mask the units the profile records as enabled or masked (``systemctl`` works offline in a
    chroot); a unit whose file the tree lacks (its package was not laid) is left out."""
    for entry in profile.data.get("services") or []:
        name = entry.get("name")
        if not name:  # a service the profile names only by its component (the DSVM's JupyterHub)
            if entry.get("enabled") or entry.get("masked"):
                laid.left_out[f"{entry.get('component')} (service)"] = "no unit name recorded"
            continue
        if entry.get("masked"):
            _chroot(root, "systemctl", "mask", name, log=log)
        elif entry.get("enabled") is True:
            if not any((root / folder.lstrip("/") / name).exists() for folder in UNIT_DIRS):  # systemd's lookup
                laid.left_out[name] = "enabled on the base; its unit file is not in the tree"
                continue
            _chroot(root, "systemctl", "enable", name, log=log)
        else:
            continue
        laid.services.append(name)


def _unpack_top(archive: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        [top] = Path(tmp).iterdir()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(top, target, symlinks=True, dirs_exist_ok=True)


def lay_profile(root: Path, profile: BaseProfile, *, feed_url: str, feed_root: Path, keyring: Path,
                repos: list[dict[str, Any]], downloads: dict[str, dict[str, Any]], log: Path) -> Laid:
    """Lay ``profile`` onto the tree at ``root``; the feed is reachable in the tree at ``feed_url`` (bind-mount it
    there while this runs). ``repos``: the stand-in's apt repositories for the profile's OS (feed specs), listed
    in a temporary source while the base's packages are installed: a base package of a release the vendor
    repository carries is that build (with its files), not an empty stand-in. ``downloads``: upstream URL ->
    {url: file://...} of the stand-in tarballs."""
    laid = Laid()
    lay_sources(root, profile, feed_url, feed_root, keyring, laid)
    temp_list, temp_ring = root / TEMP_SOURCES, root / TEMP_KEYRING
    _dearmor(keyring, temp_ring)
    # A repository a laid source already names keeps that source alone: a second entry with another Signed-By
    # stops apt ("Conflicting values set for option Signed-By", NVIDIA/cuda-repo-management#4).
    laid_uris = {line.split("] ", 1)[-1].split()[0].rstrip("/") for path in laid.sources
                 for line in _lines(root / path.lstrip("/")) if line.startswith("deb ")}
    temp_list.write_text("".join(_source_line({"signed_by": f"/{TEMP_KEYRING}", "suite": r["suite"],
                                               "components": r.get("components")}, r["url"])
                                 for r in repos if r["url"].rstrip("/") not in laid_uris))
    try:
        offered = _offered(_stanzas([_repo_folder(feed_root, feed_url, r["url"]) for r in repos]))
        lay_packages(root, profile, offered, log, laid)
    finally:
        temp_list.unlink(missing_ok=True)
        temp_ring.unlink(missing_ok=True)
    lay_files_and_trees(root, profile, downloads, laid)
    lay_services(root, profile, log, laid)
    return laid


def profile_base(base: Any, profile: BaseProfile, *, image: str, feed: Any, feed_sources: dict[Path, Path],
                 repos: list[dict[str, Any]], cache_dir: Path, log: Path, progress: Any = lambda _: None) -> Any:
    """The cached base layer: ``base`` with ``profile`` laid on it (``<cache>/base/<key>/rootfs``), keyed by the
    base, the profile, this module, the image (its sources name the image's feed path), the repositories and
    what of the feed the layer uses (``layer_inputs``)."""
    import dataclasses
    import hashlib

    from builder.converge import feeds_mounted
    from builder.rootfs import chroot_mounts, copy_tree, remove_tree

    payload = json.dumps([base.key, profile.file.read_text(), Path(__file__).read_text(), image, repos,
                          layer_inputs(profile, feed, repos)], sort_keys=True)
    key = f"{base.key}-profile-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"
    final = cache_dir / "base" / key
    if not (final / "complete.json").exists():
        progress(f"laying the base profile {profile.file.name} (first build only)")
        work = final.with_name(f".{key}.tmp")
        remove_tree(work)
        rootfs = work / "rootfs"
        copy_tree(base.rootfs, rootfs)
        try:
            on_host = {k: {**v, "url": v["url"].replace(feed.url, f"file://{feed.root}", 1)}
                       for k, v in feed.downloads.items()}
            with chroot_mounts(rootfs), feeds_mounted(rootfs, list(feed_sources.items())):
                laid = lay_profile(rootfs, profile, feed_url=feed.url, feed_root=feed.root, keyring=feed.keyring,
                                   repos=repos, downloads=on_host, log=log)
            (work / "profile.json").write_text(json.dumps({"profile": profile.file.name, **laid.as_dict()},
                                                          indent=2) + "\n")
            (work / "complete.json").write_text(json.dumps({"base": base.key, "profile": profile.file.name}) + "\n")
            remove_tree(final)
            work.rename(final)
        finally:
            remove_tree(work)
    return dataclasses.replace(base, key=key, rootfs=final / "rootfs",
                               source=f"{base.source} + base profile {profile.file.name}")
