"""Benchmark the local build target: a full build of ndh100-train (stand-in feed) from an empty cache, then a
rebuild after changing only the dcgm-exporter pin (a top-layer input), both with the boot test.

Reports wall time, peak memory (largest single process, and the machine's used memory above the idle
baseline), the VHD's virtual and allocated size, and per-phase seconds. Run as root:

    .venv/bin/python bench/local_build.py [--cache-dir DIR] [--keep] [--json OUT]

The default cache is a new folder under /var/tmp (removed afterwards unless --keep), so "empty cache" means
debootstrap, the stand-in feed and every layer are made from nothing. Layer snapshots are overlay diffs where
overlayfs mounts (each result says which: ``snapshots``); ``BUILDER_SNAPSHOTS=copy`` in the environment
measures the whole-tree copy fallback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGE = "ndh100-train"
PIN = (r"^(\s+version: )4\.5\.2-4\.8\.0$", r"\g<1>4.5.2-4.9.0")  # dcgm_exporter in images/nvidia-base.yaml


def _used_mib() -> float:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kib = int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])
    return kib / 1024


class MemorySampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.baseline = _used_mib()
        self.peak = self.baseline
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, _used_mib())


def build(catalog: Path, cache: Path, state: Path) -> dict:
    sampler = MemorySampler()
    sampler.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    env = {**os.environ, "BUILDER_CACHE": str(cache), "BUILDER_STATE": str(state), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([str(REPO / ".venv/bin/builder"), "--catalog", str(catalog), "build", IMAGE, "--feed",
                           "stand-in", "--json", "--quiet"], capture_output=True, text=True, env=env, cwd=REPO,
                          check=False)
    wall = time.monotonic() - started
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"build failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    record = json.loads(proc.stdout)
    vhd = Path(record["artifacts"]["disk"])
    stat = vhd.stat()
    peak_rss = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return {
        "wall_s": round(wall, 1),
        "peak_process_rss_mib": round(peak_rss),
        "peak_used_above_idle_mib": round(sampler.peak - sampler.baseline),
        "vhd_virtual_mib": (stat.st_size - 512) // (1024 * 1024),
        "vhd_allocated_mib": round(stat.st_blocks * 512 / (1024 * 1024)),
        "snapshots": record.get("snapshots", ""),  # overlay, or copy: <why> (the whole-tree fallback)
        "phases": {p["name"]: {"status": p["status"], "s": round(p["seconds"], 1)} for p in record["phases"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache to use (default: a new empty one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary cache and state")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (debootstrap, chroot)")
    scratch = Path(tempfile.mkdtemp(prefix="builder-bench-", dir="/var/tmp"))
    cache = args.cache_dir or scratch / "cache"
    empty = True
    try:
        catalog = scratch / "images"
        shutil.copytree(REPO / "images", catalog)
        empty = not cache.exists() or not any(cache.iterdir())
        print(f"full build from {'an empty' if empty else 'an existing'} cache ({cache}) ...", file=sys.stderr)
        full = build(catalog, cache, scratch / "state-full")
        path = catalog / "nvidia-base.yaml"
        text, count = re.subn(PIN[0], PIN[1], path.read_text(), flags=re.M)
        if count != 1:
            sys.exit("dcgm_exporter pin not found in images/nvidia-base.yaml")
        path.write_text(text)
        print("rebuild after changing only the dcgm-exporter pin ...", file=sys.stderr)
        rebuild = build(catalog, cache, scratch / "state-rebuild")
        results = {"image": IMAGE, "cpus": os.cpu_count(), "empty_cache": empty, "full": full,
                   "top_layer_rebuild": rebuild,
                   "rebuild_ratio": round(rebuild["wall_s"] / full["wall_s"], 3)}
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", "--one-file-system", str(scratch)], check=False)
            if args.cache_dir is not None and empty:
                subprocess.run(["rm", "-rf", "--one-file-system", str(cache)], check=False)


if __name__ == "__main__":
    main()
