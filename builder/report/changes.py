"""What changed since the previous build of the same image: component versions and SBOM packages.

The previous build is the newest earlier build of the image in the same state folder that succeeded (a local
build record with status ``succeeded``; an Azure folder with a ``build.json``, which Packer writes only after it
captured an image), so the comparison is with the previous *version* that was made, not with failed attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder.changes import compare_versions
from builder.report.model import Changes, Report

if TYPE_CHECKING:
    from builder.local.records import BuildRecord


@dataclass
class Previous:
    build_id: str
    version: str | None
    components: dict[str, str]
    packages: dict[str, str] | None


def previous_local(state_dir: Path, builds: list[BuildRecord], record: BuildRecord) -> Previous | None:
    from builder.local.records import SUCCEEDED
    from builder.report.contents import local_contents, rebase

    earlier = [r for r in builds if r.id != record.id and r.started < record.started and r.status == SUCCEEDED]
    if not earlier:
        return None
    last = earlier[-1]  # history is oldest first
    folder = state_dir / "builds" / last.id
    here = rebase(last.directory, folder)
    components, _, packages, _ = local_contents(folder, {k: here(v) for k, v in last.artifacts.items()}, [])
    return Previous(last.id, last.version, components, packages)


def previous_azure(state_dir: Path, folder: Path, image: str) -> Previous | None:
    from builder.report.contents import AZURE_FOLDER, azure_contents

    match = AZURE_FOLDER.fullmatch(folder.name)
    assert match is not None
    earlier = []
    for other in (state_dir / "azure").iterdir():
        found = AZURE_FOLDER.fullmatch(other.name)
        if (found and found["image"] == image and found["stamp"] < match["stamp"]
                and (other / "build.json").is_file()):
            earlier.append((found["stamp"], other, found["version"]))
    if not earlier:
        return None
    _, last, version = max(earlier)
    components, _, packages, _ = azure_contents(last, [])
    return Previous(last.name, version, components, packages)


def changes(report: Report, previous: Previous | None, notes: list[str]) -> Changes:
    if previous is None:
        return Changes(note=f"first build: no earlier successful build of {report.image} in this state folder")
    result = Changes(previous.build_id, previous.version)
    sides = (("this build", report.components, report.packages),
             (previous.build_id, previous.components, previous.packages))
    if report.components and previous.components:
        result.components = compare_versions(previous.components, report.components)
    else:
        result.components = None
        missing = " and ".join(who for who, comps, _ in sides if not comps)
        result.note = f"component changes unavailable: no component versions recorded for {missing}"
    if report.packages is not None and previous.packages is not None:
        result.packages = compare_versions(previous.packages, report.packages)
    else:
        missing = " and ".join(who for who, _, pk in sides if pk is None)
        result.package_note = f"package changes unavailable: no SBOM for {missing}"
    return result
