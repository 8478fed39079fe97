"""The base profile laid as the local build's cached base layer (builder/local/profile.py): what the marketplace base
carries, from builder/data/bases, on the Debian 12 root the roles then converge."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from builder.local.profile import _pick, _version_pattern
from builder.stack.bases import profile_for


def test_recorded_versions_pick_the_recorded_build():
    assert _version_pattern({"version": "1:4.5.2-1", "upstream": "4.5.2"}) == "1:4.5.2-1"
    assert _version_pattern({"upstream": "580.126.16"}) == "580.126.16*"
    assert _version_pattern({"name": "moby-engine"}) is None
    offered = ["580.126.16-1ubuntu1", "580.173.02-0standin", "580.126.9-1"]
    assert _pick("580.126.16*", offered) == "580.126.16-1ubuntu1"
    assert _pick("1:4.5.2-1", ["1:4.5.2-1", "1:4.6.0-1"]) == "1:4.5.2-1"
    assert _pick("13.0*", ["13.0.2-0standin", "12.9.1-1"]) == "13.0.2-0standin"
    assert _pick("2.30.4-1+cuda13.0", ["2.28.9-1+cuda13.0"]) is None


def _dpkg(root: Path) -> dict[str, tuple[str, str]]:
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Package}\t${Version}\t${db:Status-Want}\n"],
                         capture_output=True, text=True, check=True).stdout
    return {name: (version, want) for name, version, want in (line.split("\t") for line in out.splitlines())}


@pytest.mark.slow
@pytest.mark.root
def test_ubuntu_hpc_2204_is_laid_as_recorded_and_cached(ansible_catalog, debian12_base, tmp_path):
    from builder.local.base import Base
    from builder.local.feed import stable_standin
    from builder.local.profile import profile_base
    from builder.standin import apt_repositories
    from tests.fixtures.ansible import ansible_cache_dir

    profile = profile_for("microsoft-dsvm", "ubuntu-hpc", "2204")
    feed, sources = stable_standin(ansible_catalog, "ndh100-train", ansible_cache_dir())
    base = Base("debian12", "test", debian12_base, "debootstrap bookworm")
    repos = apt_repositories(ansible_catalog, feed.url, profile.os)
    laid = profile_base(base, profile, image="ndh100-train", feed=feed, feed_sources=sources, repos=repos,
                        cache_dir=tmp_path / "cache", log=tmp_path / "base.log")
    root = laid.rootfs
    assert laid.key.startswith("test-profile-") and "base profile ubuntu-hpc-2204.yaml" in laid.source
    packages = _dpkg(root)
    # exact versions and holds as the profile records them (libnccl2 built from source and held; DCGM from the feed)
    assert packages["libnccl2"] == ("2.30.4-1+cuda13.0", "hold")
    assert packages["datacenter-gpu-manager-4-core"][0] == "1:4.5.2-1"
    assert packages["nvidia-open"][0] == "580.126.16-1ubuntu1"  # upstream 580.126.16: the feed's recorded build
    assert "linux-azure-lts-22.04" in packages and "linux-image-azure" not in packages
    # the CUDA source as cuda-keyring writes it, pointed at the stand-in, with its keyring
    cuda = (root / "etc/apt/sources.list.d/cuda-ubuntu2204-x86_64.list").read_text()
    assert cuda.startswith("deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] file:///run/builder/feeds/")
    assert (root / "usr/share/keyrings/cuda-archive-keyring.gpg").stat().st_size > 0
    # HPC-X: the base unpacked the tarball the image downloads too, so the same build sits at the base's path
    [hpcx] = [t for t in profile.data["trees"] if t.get("component") == "hpcx"]
    assert (root / hpcx["path"].lstrip("/") / "modulefiles" / "hpcx").is_file()
    assert (root / "etc/nccl.conf").read_text() == ""
    record = json.loads((laid.rootfs.parent / "profile.json").read_text())
    assert record["left_out"]["/etc/apt/sources.list.d/slurm.list"] == \
        "the stand-in feed does not serve this repository"
    assert record["left_out"]["moby-engine"] == "no version recorded"
    assert not (root / "etc/builder/base-profile.json").exists()  # the record stays out of the image
    assert not (root / "etc/apt/sources.list.d/builder-base-profile.list").exists()  # the temporary list is gone
    # a base package of a release the vendor repository carries is that build, with its files (doca-ofed's unit)
    assert packages["doca-ofed"][0] == "3.2.1-044000"
    assert (root / "etc/init.d/openibd").exists()
    assert not any((root / "run/builder/feeds").glob("*/*")), "the feed stays mounted"
    stamp = (laid.rootfs.parent / "complete.json").stat().st_mtime_ns
    again = profile_base(base, profile, image="ndh100-train", feed=feed, feed_sources=sources, repos=repos,
                         cache_dir=tmp_path / "cache", log=tmp_path / "base2.log")
    assert again == laid and (laid.rootfs.parent / "complete.json").stat().st_mtime_ns == stamp
    assert not (tmp_path / "base2.log").exists()


@pytest.mark.parametrize("image,options,laid", [
    ("ndh100-train", {"feed": "stand-in"}, "ubuntu-hpc-2204.yaml"),
    ("ndh200-train", {"feed": "stand-in"}, "ubuntu-hpc-2404.yaml"),
    ("ndmi300x-train", {"feed": "stand-in"}, "ubuntu-hpc-2204-rocm.yaml"),
    ("cpu-infer", {"feed": "stand-in"}, "ubuntu-2204-2204-gen2.yaml"),
    ("ndh100-train", {"feed": "stand-in", "base_profile": False}, None),  # --no-base-profile
    ("ndh100-train", {"feed": "upstream"}, None),  # nothing serves the base's repositories offline
    ("ndh100-train", {"feed": "stand-in", "base_rootfs": Path("/srv/tree")}, None),  # the user's own base
    ("ndh100-train-layered", {"feed": "stand-in"}, None),  # a gallery image base has no marketplace profile
])
def test_which_builds_lay_a_profile(shipped_catalog, tmp_path, image, options, laid):
    from builder.local.pipeline import BuildOptions, Pipeline

    pipeline = Pipeline(shipped_catalog, BuildOptions(image=image, state_dir=tmp_path, publish=False, **options))
    profile = pipeline._base_profile()
    assert (profile.file.name if profile else None) == laid


def test_a_service_recorded_without_a_unit_name_is_left_out(tmp_path):
    """The DSVM profile records JupyterHub as enabled without its unit's name (Microsoft Learn names none): laying
    it must leave it out, saying why (a build of nca100-infer stopped here with a TypeError)."""
    from types import SimpleNamespace

    from builder.local.profile import Laid, lay_services

    profile = profile_for("microsoft-dsvm", "ubuntu-2204", "2204-gen2")
    assert any(s.get("name") is None and s.get("enabled") for s in profile.data["services"])
    laid = Laid()
    lay_services(tmp_path, SimpleNamespace(data={"services": [s for s in profile.data["services"]
                                                               if not s.get("name")]}), tmp_path / "log", laid)
    assert laid.left_out == {"jupyterhub (service)": "no unit name recorded"} and laid.services == []
