"""The stand-in feed: real .deb packages with the catalog's names and versions, signed repositories,
tarballs whose sha256 the render uses, and stand-in tools that work without faking hardware."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.render import ansible_vars
from builder.stack import resolve
from builder.standin import catalog_pins, feed_digest, repositories, standin_version

pytestmark = pytest.mark.usefixtures("standin_feed")


def deb_field(deb: Path, field: str) -> str:
    result = subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def all_debs(feed) -> dict[tuple[str, str], Path]:
    return {(deb_field(d, "Package"), deb_field(d, "Version")): d for d in feed.root.rglob("*.deb")}


def test_every_pinned_package_is_a_real_deb(ansible_catalog, standin_feed):
    pins, _, _ = catalog_pins(ansible_catalog)
    debs = all_debs(standin_feed)
    assert set(pins) <= set(debs)
    assert standin_feed.packages == len(set(debs))  # the pins, their companions and the recorded neighbours
    # as in the real repository, newer builds sit beside the pin (recorded for Ubuntu 24.04)
    assert ("nvidia-driver-580-open", "580.126.16-1ubuntu1") in debs
    assert ("nvidia-driver-580-open", "580.126.20-1ubuntu1") in debs
    for group in resolve(ansible_catalog, "ndh100-train").packages.values():
        for package in group:
            assert (package.name, standin_version(package.version)) in debs
            assert package.matches(standin_version(package.version))


def test_dependencies_are_declared(standin_feed):
    debs = all_debs(standin_feed)
    dev = next(d for (name, _), d in debs.items() if name == "libnccl-dev")
    assert deb_field(dev, "Depends") == f"libnccl2 (= {deb_field(dev, 'Version')})"


def test_recorded_relations_are_the_repositorys(standin_feed):
    """A stand-in at a recorded version declares the relations the record gives (builder/data/feeds, NVIDIA/DCGM
    cmake/packaging.cmake); the manifest's own stay for what nothing records."""
    debs = all_debs(standin_feed)
    core = debs[("datacenter-gpu-manager-4-core", "1:4.5.2-1")]
    assert deb_field(core, "Depends") == "libc6 (>= 2.27), lshw"
    assert deb_field(core, "Pre-Depends") == "passwd, login"
    assert deb_field(core, "Conflicts") == "datacenter-gpu-manager"
    cuda13 = debs[("datacenter-gpu-manager-4-cuda13", "1:4.5.2-1")]
    assert deb_field(cuda13, "Provides") == "datacenter-gpu-manager-4 (= 1:4.5.2-1)"
    toolkit = debs[("nvidia-container-toolkit", "1.18.0-1")]
    assert "libnvidia-container-tools (<< 2.0.0)" in deb_field(toolkit, "Depends")
    assert deb_field(toolkit, "Breaks") == "nvidia-container-runtime (<= 3.5.0-1), nvidia-container-runtime-hook"


def test_nvcc_prints_the_pinned_cuda_version(ansible_catalog, standin_feed, tmp_path):
    cuda = ansible_catalog.model("ndh100-train").components.cuda.version
    deb = next(d for (name, _), d in all_debs(standin_feed).items() if name.startswith("cuda-toolkit-"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    nvcc = next(tmp_path.glob("usr/local/cuda-*/bin/nvcc"))
    out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, check=True).stdout
    assert f"V{cuda}" in out and f"release {'.'.join(cuda.split('.')[:2])}" in out


def test_stand_in_nvidia_smi_does_not_fake_a_gpu(standin_feed, tmp_path):
    deb = next(d for (name, _), d in all_debs(standin_feed).items() if name == "nvidia-open")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    result = subprocess.run([str(tmp_path / "usr/bin/nvidia-smi")], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and result.stdout == "" and "GPU" not in result.stderr.replace("NVIDIA-SMI", "")


def test_stand_in_nvidia_ctk_really_edits_runtime_configs(standin_feed, tmp_path):
    deb = next(d for (name, _), d in all_debs(standin_feed).items() if name == "nvidia-container-toolkit-base")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "x")], check=True)
    ctk = str(tmp_path / "x/usr/bin/nvidia-ctk")
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"log-driver": "json-file"}')
    subprocess.run([ctk, "runtime", "configure", "--runtime=docker", f"--config={daemon}"], check=True,
                   capture_output=True)
    config = json.loads(daemon.read_text())
    assert config["log-driver"] == "json-file" and config["runtimes"]["nvidia"]["path"].endswith("runtime")
    toml = tmp_path / "config.toml"
    for _ in range(2):
        subprocess.run([ctk, "runtime", "configure", "--runtime=containerd", f"--config={toml}"], check=True,
                       capture_output=True)
    assert toml.read_text().count("runtimes.nvidia]") == 1


def test_repositories_verify_with_the_feed_key_only(standin_feed, tmp_path):
    repos = repositories(standin_feed.root)
    assert len(repos) >= 4
    keyring = tmp_path / "keyring.gpg"
    subprocess.run(["gpg", "--batch", "--no-autostart", "--no-default-keyring", "--keyring", str(keyring), "--import",
                    str(standin_feed.keyring)], check=True, capture_output=True, env={"GNUPGHOME": str(tmp_path)})
    for repo, suite in repos:
        release = repo / "InRelease" if suite == "/" else repo / "dists" / suite / "InRelease"
        verify = subprocess.run(["gpgv", "--keyring", str(keyring), str(release)], capture_output=True)
        assert verify.returncode == 0, release
    other = tmp_path / "empty.gpg"
    other.write_bytes(b"")
    assert subprocess.run(["gpgv", "--keyring", str(other), str(release)], capture_output=True).returncode != 0


def test_tarball_checksums_reach_the_render(ansible_catalog, standin_feed):
    data = ansible_vars(ansible_catalog, "ndh100-train", feed=standin_feed, commit="x")
    assert data["package_feed"] == "stand-in"
    for component, download in data["builder_downloads"].items():
        path = Path(download["url"].removeprefix("file://"))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == download["sha256"], component
        with tarfile.open(path) as archive:
            assert len({m.name.split("/")[0] for m in archive.getmembers()}) == 1


def test_digest_follows_the_catalog(ansible_catalog, catalog_copy):
    from builder.catalog.loader import load_catalog

    before = feed_digest(ansible_catalog)
    path = catalog_copy / "nvidia-base.yaml"
    path.write_text(path.read_text().replace("cuda: {version: 13.0.2}", "cuda: {version: 13.0.3}"))
    assert feed_digest(load_catalog(catalog_copy)) != before


def test_rocm_repository_serves_every_ubuntu_suite(standin_feed):
    suites = {suite for repo, suite in repositories(standin_feed.root) if "repo.radeon.com" in str(repo)}
    assert {"jammy", "noble"} <= suites


def test_stand_in_node_exporter_stays_up_and_serves_nothing(standin_feed, tmp_path):
    """A service whose stand-in binary exits would restart-loop at boot: it idles until stopped instead."""
    download = next(d for d in standin_feed.downloads.values() if d["component"] == "node_exporter")
    with tarfile.open(download["url"].removeprefix("file://")) as archive:
        archive.extractall(tmp_path, filter="data")
    binary = next(tmp_path.glob("*/node_exporter"))
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert "stand-in" in version.stdout
    proc = subprocess.Popen([str(binary), "--web.listen-address=:9100"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert out == "" and "serves nothing" in err
