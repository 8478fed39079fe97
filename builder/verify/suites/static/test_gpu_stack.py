"""Driver, CUDA and container runtime wiring: the files the roles write, checked against the catalog stack."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from builder.verify import probe


def need(expect: dict, *components: str) -> None:
    missing = [c for c in components if c not in expect["components"]]
    if missing:
        pytest.skip(f"image has no {', '.join(missing)}")


def test_nouveau_blacklisted(expect, host, check):
    need(expect, "nvidia_driver")
    files = probe.glob_text(host, "/etc/modprobe.d/*.conf")
    lines = {f"{path}: {line.strip()}" for path, text in files.items() for line in text.splitlines()
             if re.match(r"\s*(blacklist nouveau|options nouveau modeset=0)\s*$", line)}
    found_blacklist = any(line.endswith("blacklist nouveau") for line in lines)
    found_modeset = any(line.endswith("modeset=0") for line in lines)
    check.that(found_blacklist and found_modeset, "blacklist nouveau + options nouveau modeset=0 in /etc/modprobe.d",
               sorted(lines) or "no nouveau blacklist")


def test_peermem_at_boot(expect, host, check):
    need(expect, "nvidia_driver")
    if not expect["infiniband"]:
        pytest.skip("not an RDMA image")
    modules, skipped = probe.loaded_at_boot(host)
    check.that("nvidia_peermem" in modules - skipped, "nvidia_peermem in /etc/modules-load.d, not deny-listed",
               sorted(modules) + [f"{name} (deny-listed)" for name in sorted(skipped)])


def test_cuda_home(expect, host, check):
    need(expect, "cuda")
    home = expect["cuda"]["home"]
    target = host.run("readlink -f /usr/local/cuda").stdout.strip() or "no /usr/local/cuda"
    has_home = probe.exists(host, f"{home}/bin")
    check.that(has_home and target == home, f"{home}/bin, /usr/local/cuda -> {home}",
               f"{home}/bin {'present' if has_home else 'missing'}, /usr/local/cuda -> {target}")


def test_cuda_profile(expect, host, check):
    need(expect, "cuda")
    found = host.run("sh -c '. /etc/profile.d/cuda.sh && command -v nvcc' 2>&1").stdout.strip()
    check.that(found.startswith("/usr/local/cuda") and found.endswith("/bin/nvcc"),
               "/etc/profile.d/cuda.sh puts /usr/local/cuda/bin/nvcc on PATH", found or "nvcc not on PATH")


def test_nvcc_release(expect, host, check):
    need(expect, "cuda")
    out = host.run("/usr/local/cuda/bin/nvcc --version 2>&1").stdout
    match = re.search(r"release (\d+\.\d+)", out)
    check.equal(f"release {expect['cuda']['release']}", f"release {match.group(1)}" if match else out.strip()[:200])


def test_nccl_tests(expect, host, check):
    need(expect, "nccl_tests")
    path = "/opt/nccl-tests/build/all_reduce_perf"
    ok = host.run(f"test -x {path}").rc == 0
    check.that(ok, f"{path} executable", "present" if ok else "missing")


def _has_nvidia_runtime(node) -> bool:
    if isinstance(node, dict):
        runtimes = node.get("runtimes")
        if isinstance(runtimes, dict) and "nvidia" in runtimes:
            return True
        return any(_has_nvidia_runtime(value) for value in node.values())
    return False


@pytest.mark.parametrize("engine", ["docker", "containerd"])
def test_container_runtime(engine, expect, host, check):
    """``nvidia-ctk runtime configure`` registered the ``nvidia`` runtime with the engine."""
    need(expect, "container_toolkit")
    if engine == "docker":
        files = {"/etc/docker/daemon.json": probe.read(host, "/etc/docker/daemon.json")}
    else:
        files = {"/etc/containerd/config.toml": probe.read(host, "/etc/containerd/config.toml"),
                 **probe.glob_text(host, "/etc/containerd/conf.d/*.toml")}
    found = []
    for path, text in files.items():
        if text is None:
            continue
        try:
            data = json.loads(text) if path.endswith(".json") else tomllib.loads(text)
        except ValueError as exc:
            found.append(f"{path}: unparsable ({exc})")
            continue
        found.append(f"{path}: {'nvidia runtime' if _has_nvidia_runtime(data) else 'no nvidia runtime'}")
    ok = any(entry.endswith(": nvidia runtime") for entry in found)
    check.that(ok, f"nvidia runtime in the {engine} config", found or f"no {engine} config")
