"""Benchmark: publish one version to 6 regions against the local ARM emulator (1 s replication per region).

Reports wall time against the slowest single region and the number of HTTP requests the publisher made.
Targets: wall <= 1.5x the slowest region's replication; <= 40 requests. Exit 1 when a target is missed.

    .venv/bin/python bench/publish.py [--json] [--replication 1.0] [--progress-interval 0.5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

REGIONS = ["eastus2", "westus3", "eastus", "westeurope", "northeurope", "southeastasia"]
IMAGE = "ndh100-train"
SOURCE = "/subscriptions/bench/resourceGroups/rg-build/providers/Microsoft.Compute/images/bench-{}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replication", type=float, default=1.0, help="seconds per region")
    parser.add_argument("--progress-interval", type=float, default=0.5, help="seconds between progress reads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from builder.azure import Settings, Source, StaticTokenCredential, publish_version
    from builder.catalog.loader import load_catalog
    from builder.emulator import EmulatorConfig, EmulatorServer

    catalog = load_catalog(REPO / "images")
    with tempfile.TemporaryDirectory() as state:
        server = EmulatorServer(Path(state), 0, EmulatorConfig(operation_delay=0.2,
                                                               replication_delay=args.replication)).start()
        try:
            settings = Settings("bench", base_url=server.base_url, cert=str(server.cert),
                                credential=StaticTokenCredential(), polling_interval=0,
                                progress_interval=args.progress_interval)
            regions = [(name, 1) for name in REGIONS]
            # warm-up: the gallery and definition exist, as they do for every publish after the first
            publish_version(catalog, IMAGE, source=Source(managed_image_id=SOURCE.format(0)), version="0.0.1",
                            settings=settings, regions_override=regions[:1])
            before = dict(server.emulator.requests)
            started = time.monotonic()
            result = publish_version(catalog, IMAGE, source=Source(managed_image_id=SOURCE.format(1)),
                                     settings=settings, regions_override=regions)
            wall = time.monotonic() - started
            after = dict(server.emulator.requests)
        finally:
            server.stop()
    by_method = {m: after.get(m, 0) - before.get(m, 0) for m in after if after.get(m, 0) - before.get(m, 0)}
    requests = sum(by_method.values())
    ratio = wall / args.replication
    report = {
        "regions": len(result.regions), "replication_s": args.replication, "wall_s": round(wall, 3),
        "ratio_to_slowest_region": round(ratio, 2), "requests": requests, "by_method": by_method,
        "version": result.version, "targets": {"ratio_max": 1.5, "requests_max": 40},
        "ok": ratio <= 1.5 and requests <= 40 and set(result.regions.values()) == {"Completed"},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"published {result.version} to {report['regions']} regions in {report['wall_s']} s "
              f"({report['ratio_to_slowest_region']}x the slowest region, target <= 1.5x) with {requests} HTTP "
              f"requests (target <= 40): {'OK' if report['ok'] else 'MISSED'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
