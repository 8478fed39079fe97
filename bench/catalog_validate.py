#!/usr/bin/env python3
"""Benchmark: `builder validate --all` on the shipped catalog and on a generated 500-image catalog, and
`builder --help` start-up. Each command runs in a fresh process, repeated; prints the median and best.

    .venv/bin/python bench/catalog_validate.py [--runs 7] [--images 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILDER = [str(Path(sys.executable).parent / "builder")]
TARGETS = {"validate shipped catalog": 0.5, "validate 500 images": 3.0, "builder --help": 0.3}


def generate(dest: Path, count: int) -> None:
    """A catalog of ``count`` buildable images: copies of the shipped leaves with new names."""
    shutil.copytree(REPO / "images", dest, ignore=shutil.ignore_patterns("packer"))
    leaves = [p for p in dest.glob("*.yaml") if p.name != "skus.yaml" and "abstract: true" not in p.read_text()]
    for index in range(count - len(leaves)):
        source = leaves[index % len(leaves)]
        name = f"{source.stem}-{index:04d}"
        text = source.read_text().replace(f"name: {source.stem}", f"name: {name}", 1)
        text = text.replace(f"definition: {source.stem}", f"definition: {name}")
        (dest / f"{name}.yaml").write_text(text)


def timed(command: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "images"
        generate(big, args.images)
        count = len(list(big.glob("*.yaml"))) - 1
        results = {
            "validate shipped catalog": timed([*BUILDER, "validate", "--all"], args.runs),
            f"validate {args.images} images": timed([*BUILDER, "--catalog", str(big), "validate", "--all"],
                                                    args.runs),
            "builder --help": timed([*BUILDER, "--help"], args.runs),
        }
    rows = [{"benchmark": name, "median_s": round(statistics.median(s), 3), "best_s": round(min(s), 3),
             "target_s": TARGETS.get(name), "runs": len(s)} for name, s in results.items()]
    if args.json:
        print(json.dumps({"catalog_files": count, "results": rows}, indent=2))
    else:
        print(f"{'benchmark':<28} {'median s':>9} {'best s':>8} {'target s':>9}")
        for r in rows:
            print(f"{r['benchmark']:<28} {r['median_s']:>9} {r['best_s']:>8} {r['target_s']!s:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
