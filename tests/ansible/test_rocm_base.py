"""Faults Azure's MI300X base shows (upstream-facts.md #9), reproduced by converging ndmi300x-train with its Ubuntu
22.04 facts onto a Debian 12 tree with the ubuntu-hpc 2204-rocm profile laid (builder/data/bases)."""

from __future__ import annotations

import pytest

from builder.stack.bases import profile_for

pytestmark = [pytest.mark.slow, pytest.mark.root]

IMAGE = "ndmi300x-train"


@pytest.fixture(scope="module")
def mi300x_on_its_base(ansible_catalog, debian12_base, tmp_path_factory):
    """(converged root, the profile): the profile laid as a local build lays it, then the base and gpu layers."""
    from builder.converge import converge, feeds_mounted
    from builder.local.base import Base
    from builder.local.feed import stable_standin
    from builder.local.profile import profile_base
    from builder.render import write_render
    from builder.rootfs import copy_tree, remove_tree
    from builder.standin import apt_repositories
    from tests.fixtures.ansible import ansible_cache_dir

    tmp_path = tmp_path_factory.mktemp("mi300x-base")
    profile = profile_for("microsoft-dsvm", "ubuntu-hpc", "2204-rocm")
    assert profile is not None
    feed, sources = stable_standin(ansible_catalog, IMAGE, ansible_cache_dir())
    base = Base("debian12", "test", debian12_base, "debootstrap bookworm")
    laid = profile_base(base, profile, image=IMAGE, feed=feed, feed_sources=sources,
                        repos=apt_repositories(ansible_catalog, feed.url, profile.os), cache_dir=tmp_path / "cache",
                        log=tmp_path / "base.log")
    root = tmp_path / "rootfs"
    copy_tree(laid.rootfs, root)
    try:
        vars_file = write_render(ansible_catalog, IMAGE, "local", tmp_path / "render", feed, os_override="ubuntu2204",
                                 image_version="2026.1201.1", commit="0" * 40)[0]
        log = tmp_path / "converge.log"
        with feeds_mounted(root, list(sources.items())):  # as the local build mounts the feed
            result = converge(root, vars_file, log=log, tags=["base", "gpu"])
        assert result.failed == 0, log.read_text()[-3000:]
        yield root, profile
    finally:
        remove_tree(root)
        remove_tree(tmp_path / "cache")


def test_amdgpu_is_loaded_as_the_base_loads_it(mi300x_on_its_base, run_static):
    """#9: the MI300X base blacklists amdgpu and loads it from rocmstartup.service once the 8 GPUs are visible
    (modprobe -r hyperv_drm; modprobe amdgpu ip_block_mask=0x7f; Azure/azhpc-images install_rocm.sh:77-134). The
    role's /etc/modules-load.d/amdgpu.conf loaded nothing there: systemd-modules-load skips a deny-listed module
    (the static check failed: "deny-listed in modules-load.d (skipped at boot)": ["amdgpu"]). The role keeps the
    base's unit and loader and writes no modules-load entry."""
    root, profile = mi300x_on_its_base
    result = run_static(root, IMAGE, "rocm")
    [check] = [c for c in result.checks if c.name == "rocm.amdgpu_at_boot"]
    assert check.outcome == "passed", (check.expected, check.found)
    recorded = {f["path"]: f["content"] for f in profile.data["files"] if "content" in f}
    for path in ("/etc/init.d/initamdgpu.sh", "/etc/systemd/system/rocmstartup.service"):
        assert (root / path.lstrip("/")).read_text() == recorded[path], f"{path} is the base's, unchanged"
