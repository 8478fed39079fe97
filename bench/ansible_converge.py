"""Benchmark: converge the ndh100-train stack (debian12 variables, stand-in feed) into a fresh copy of the
cached base root filesystem, then re-run it. Prints first/re-run seconds, changed counts and apt transactions.

Run as root: .venv/bin/python bench/ansible_converge.py [IMAGE] [--json] [--logs DIR]
(--logs keeps the two converge logs, with ansible.posix.profile_tasks timings, as DIR/first.log and DIR/rerun.log)
Targets (issue 3): first converge <= 180 s, re-run <= 25 % of the first, re-run changed=0.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from builder.catalog.loader import load_catalog  # noqa: E402
from builder.converge import converge  # noqa: E402
from builder.render import write_render  # noqa: E402
from builder.rootfs import copy_tree, ensure_base, remove_tree, resolve_spec  # noqa: E402
from builder.standin import ensure_feed  # noqa: E402

TAGS = ["base", "gpu", "fabric", "image", "manifest"]


def apt_transactions(root: Path) -> int:
    """apt/dpkg transactions recorded in the tree's apt history (one Start-Date per transaction)."""
    history = root / "var/log/apt/history.log"
    return history.read_text().count("Start-Date:") if history.exists() else 0


def main() -> int:
    args = sys.argv[1:]
    if "--logs" in args:
        del args[args.index("--logs"):args.index("--logs") + 2]
    image = next((a for a in args if not a.startswith("-")), "ndh100-train")
    cache = Path(os.environ.get("BUILDER_TEST_CACHE", "/var/tmp/builder-cache"))
    catalog = load_catalog(REPO / "images")
    feed = ensure_feed(catalog, cache)
    base = ensure_base(resolve_spec("debian12", notice=lambda _m: None), cache)
    with tempfile.TemporaryDirectory(prefix="bench-converge-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        root = work / "rootfs"
        started = time.monotonic()
        copy_tree(base, root)
        copy_seconds = time.monotonic() - started
        vars_file = write_render(catalog, image, "local", work, feed, os_override="debian12",
                                 image_version="0.0.0-bench", commit="0" * 40)[0]
        before = apt_transactions(root)
        runs = []
        for attempt in ("first", "rerun"):
            started = time.monotonic()
            result = converge(root, vars_file, log=work / f"{attempt}.log", tags=TAGS)
            runs.append({"run": attempt, "seconds": round(time.monotonic() - started, 1), "ok": result.ok,
                         "changed": result.changed, "tasks": result.tasks})
            if attempt == "first":
                first_apt = apt_transactions(root) - before
        rerun_apt = apt_transactions(root) - before - first_apt
        if "--logs" in sys.argv:
            keep = Path(sys.argv[sys.argv.index("--logs") + 1])
            keep.mkdir(parents=True, exist_ok=True)
            for attempt in ("first", "rerun"):
                (keep / f"{attempt}.log").write_text((work / f"{attempt}.log").read_text())
        remove_tree(root)
    report = {"image": image, "os": "debian12", "feed": "stand-in", "copy_base_seconds": round(copy_seconds, 1),
              "first_seconds": runs[0]["seconds"], "rerun_seconds": runs[1]["seconds"],
              "rerun_ratio": round(runs[1]["seconds"] / runs[0]["seconds"], 3),
              "first_changed": runs[0]["changed"], "rerun_changed": runs[1]["changed"],
              "apt_transactions_first": first_apt, "apt_transactions_rerun": rerun_apt,
              "load_average": os.getloadavg()[0]}
    if "--json" in sys.argv:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:24} {value}")
    return 0 if report["rerun_changed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
