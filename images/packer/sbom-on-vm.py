"""Runs on the Azure build VM with the verification venv (after verify-on-vm.sh created it): writes the CycloneDX
JSON SBOM of every installed dpkg package with the same writer as the local build target (builder.local.sbom).
Usage: python sbom-on-vm.py IMAGE VERSION DEST."""

import sys
from pathlib import Path

from builder.local.sbom import write_sbom


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: sbom-on-vm.py IMAGE VERSION DEST", file=sys.stderr)
        return 2
    image, version, dest = argv
    count = write_sbom(Path("/"), Path(dest), image, version)
    Path(dest).chmod(0o644)  # downloaded by the unprivileged SSH user
    print(f"sbom: {count} dpkg packages -> {dest}")
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
