"""Gather one build into a ``Report``: a local build's record (``<state>/builds/<id>/``, ``builder.local.records``)
or an Azure build's folder (``<state>/azure/<image>-<version>-<stamp>/``, ``builder.packer.build``).

Local: phases with seconds and logs from ``build.json``, checks from ``verify-<select>.json``, components from
``manifest.json`` (else the rendered variables, for a build that stopped before its manifest), packages from the
``*.cdx.json`` SBOM. Azure: the folder's ``build.json`` (``BuildArtifact``; written only when Packer captured an
image), steps from the machine-readable ``packer-build.log``, checks from ``junit.xml``, components from the
``packer-manifest.json`` tags, packages from ``sbom.cdx.json``.
"""

from __future__ import annotations

import calendar
import re
import time
from pathlib import Path

from builder.errors import InputError
from builder.report.changes import changes, previous_azure, previous_local
from builder.report.checks import local_runs, read_junit
from builder.report.contents import (
    AZURE_FOLDER,
    PACKER_LOG,
    SBOM_FILE,
    VARS_FILE,
    azure_contents,
    local_contents,
    read_json,
    rebase,
)
from builder.report.model import Link, PhaseRow, Report

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")



def find(state_dir: Path, build_id: str) -> tuple[str, Path]:
    """``("local" | "azure", folder)`` of a build id; InputError (exit 2) naming how to list them."""
    if ID_PATTERN.fullmatch(build_id) and ".." not in build_id:
        local = state_dir / "builds" / build_id
        if (local / "build.json").is_file():
            return "local", local
        azure = state_dir / "azure" / build_id
        if azure.is_dir() and AZURE_FOLDER.fullmatch(build_id):
            return "azure", azure
    raise InputError(f"no build {build_id!r} in {state_dir}: `builder builds` lists local build ids; an Azure "
                     f"build's id is its folder name under {state_dir / 'azure'}", field="BUILD_ID")


def gather(state_dir: Path, build_id: str) -> Report:
    kind, folder = find(state_dir, build_id)
    return gather_local(state_dir, folder) if kind == "local" else gather_azure(state_dir, folder)


def _stamp(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value)) if value else ""


# ---------------------------------------------------------------- local builds


def gather_local(state_dir: Path, folder: Path) -> Report:
    from builder.local import records

    record = records.load(folder)
    builds = records.history(state_dir, record.image)
    record = next((r for r in builds if r.id == record.id), record)  # history marks dead `running` builds
    notes: list[str] = []
    here = rebase(record.directory, folder)
    error_log = Link.of("error log", here(record.error_log)) if record.error_log else None
    report = Report(record.id, record.image, record.target, record.status, folder, version=record.version,
                    started=record.started, finished=record.finished, duration=round(record.duration, 1),
                    error=record.error, error_log=error_log)
    offset = 0.0
    for phase in record.phases:
        log = Link.of(Path(phase.log).name, here(phase.log)) if phase.log else None
        report.phases.append(PhaseRow(phase.name, phase.status, round(phase.seconds, 1), round(offset, 1),
                                      phase.detail, log))
        offset += phase.seconds
    report.timeline_note = "phases run one after another; a cached layer restores a snapshot instead of converging"
    seen = set()
    for row in report.phases:
        if row.log and row.log.exists and row.log.path not in seen:  # a cached phase writes none
            seen.add(row.log.path)
            report.logs.append(Link.of(f"{row.name}: {row.log.label}", row.log.path))
    rendered = folder / "render" / VARS_FILE
    if rendered.is_file():
        report.logs.append(Link.of(f"rendered variables: render/{VARS_FILE}", rendered))
    artifacts = {name: here(path) for name, path in record.artifacts.items()}
    for name, path in artifacts.items():
        report.artifacts.append(Link.of(f"{name}: {path.name}", path))
    for path in sorted(folder.glob("verify-*.*")):
        report.artifacts.append(Link.of(f"verification: {path.name}", path))
    report.artifacts.append(Link.of("build record: build.json", folder / "build.json"))
    report.runs = local_runs(folder, notes)
    report.components, report.components_source, report.packages, report.packages_source = local_contents(
        folder, artifacts, notes)
    manifest = read_json(folder / "manifest.json", notes) if (folder / "manifest.json").is_file() else None
    facts = [("build id", record.id), ("target", record.target), ("started", _stamp(record.started)),
             ("finished", _stamp(record.finished))]
    if isinstance(manifest, dict):
        base = manifest.get("base") or {}
        facts += [("git commit", str(manifest.get("git_commit") or "")),
                  ("inputs digest", str(manifest.get("inputs_digest") or "")),
                  ("base", f"{base.get('source', '')} ({base.get('os', '')}, key {base.get('key', '')})"),
                  ("feed", str((manifest.get("feed") or {}).get("name") or ""))]
    elif record.options.get("feed"):
        facts.append(("feed", str(record.options["feed"])))
    if record.snapshots:
        facts.append(("layer snapshots", record.snapshots))
    if record.published:
        pub = record.published
        facts.append(("published", f"{pub.get('version', '')} to {pub.get('gallery', '')} ({pub.get('kind', '')}, "
                                   f"{pub.get('action', '')}): {pub.get('id', '')}"))
    report.facts = [(k, v) for k, v in facts if v]
    previous = previous_local(state_dir, builds, record)
    report.changes = changes(report, previous, notes)
    report.notes = notes
    return report


# ---------------------------------------------------------------- Azure builds


STEP = re.compile(r"==> (?P<target>[\w.-]+): (?P<text>.*)", re.S)
CLEANUP = "Provisioning step had errors"  # Packer's line when a provisioner failed (it then runs the clean-up)


def packer_steps(log: Path) -> tuple[list[PhaseRow], str | None, float | None]:
    """Steps of a Packer run from its machine-readable log, the error that ended it and the seconds it spans.

    A step is a ``ui,say`` line ``==> <build>: <text>`` (builder steps and each provisioner's start, e.g.
    "Provisioning with Ansible..."; remote command output arrives as ``ui,message`` / ``ui,error``,
    packer-plugin-sdk ``RemoteCmd.RunWithUi``) and lasts until the next step or Packer's closing ``==> Wait
    completed`` line, in Packer's whole-second stamps. The error is the last build error record
    (``<build>,error,...``), else the last ``errored`` UI error line."""
    from builder.packer.events import parse_line

    events = [e for e in map(parse_line, log.read_text(encoding="utf-8", errors="replace").splitlines())
              if e is not None]
    if not events:
        return [], None, None
    first, last = events[0].timestamp, events[-1].timestamp
    marks = [(e, STEP.fullmatch(e.text)) for e in events if e.kind == "say" and e.text.startswith("==> ")]
    rows: list[PhaseRow] = []
    for index, (event, step) in enumerate(marks):
        if step is None:
            continue  # "==> Wait completed ...", "==> Builds finished ...": the end of the last step
        end = marks[index + 1][0].timestamp if index + 1 < len(marks) else last
        rows.append(PhaseRow(step["text"].strip()[:160], "done", float(end - event.timestamp),
                             float(event.timestamp - first)))
    builds = [e.text for e in events if e.kind == "build-error" and e.text.strip()]
    errored = [e.text for e in events if e.kind == "error" and "errored" in e.text]
    error = (builds or errored or [None])[-1]
    return rows, error, float(last - first)


def mark_failed(steps: list[PhaseRow]) -> None:
    """The step that failed: the one before Packer's "Provisioning step had errors", else the last."""
    cleanup = next((i for i, step in enumerate(steps) if step.name.startswith(CLEANUP)), None)
    index = cleanup - 1 if cleanup else len(steps) - 1
    if steps and index >= 0:
        steps[index].status = "failed"


def gather_azure(state_dir: Path, folder: Path) -> Report:
    match = AZURE_FOLDER.fullmatch(folder.name)
    assert match is not None
    notes: list[str] = []
    record = read_json(folder / "build.json", notes) if (folder / "build.json").is_file() else None
    record = record if isinstance(record, dict) else None
    log = folder / PACKER_LOG
    steps, last_error, span = packer_steps(log) if log.is_file() else ([], None, None)
    if record is not None:
        status = "dry run" if record.get("dry_run") else "succeeded"
        error = None
    else:
        status = "failed" if last_error else ("not built" if not log.exists() else "incomplete")
        error = last_error or ("no build.json: Packer captured no image (the run failed or was interrupted)"
                               if log.exists() else "no build.json and no Packer build log: a dry run (files rendered "
                               "only), or `packer init` / `packer validate` failed before the build (their output "
                               "is in the console or job log)")
    started = float(calendar.timegm(time.strptime(match["stamp"], "%Y%m%dT%H%M%S")))  # a UTC stamp
    seconds = float(record["seconds"]) if record and record.get("seconds") else span
    report = Report(folder.name, match["image"], "azure", status, folder, version=match["version"], started=started,
                    finished=started + seconds if seconds else None, duration=round(seconds, 1) if seconds else None,
                    error=error, error_log=Link.of(PACKER_LOG, log) if error and log.exists() else None,
                    phases=steps)
    if status == "failed":
        mark_failed(steps)
    report.timeline_note = ("Packer's steps from the machine-readable log (1 s resolution); an Azure build records "
                            "no per-phase timings of its own")
    if log.is_file():
        report.logs.append(Link.of(PACKER_LOG, log))
    for name in ("build.json", "packer-manifest.json", "junit.xml", SBOM_FILE, VARS_FILE):
        if (folder / name).is_file():
            report.artifacts.append(Link.of(name, folder / name))
    for path in sorted(folder.glob("*.pkrvars.json")) + sorted(folder.glob("*.pkr.hcl")):
        report.artifacts.append(Link.of(path.name, path))
    junit = folder / "junit.xml"
    if junit.is_file():
        try:
            report.runs = [read_junit(junit, "verification on the build VM (junit.xml)")]
        except (OSError, ValueError) as exc:
            notes.append(f"junit.xml: not readable ({exc})")
    else:
        notes.append("no junit.xml: Packer stopped before verification downloaded it")
    report.components, report.components_source, report.packages, report.packages_source = azure_contents(
        folder, notes)
    if record:
        facts = [("artifact", str(record.get("artifact_id") or "")), ("inputs digest", record.get("inputs_digest")),
                 ("packer", record.get("packer_version")), ("auth", record.get("auth_method")),
                 ("version from", record.get("version_source")), ("base version", record.get("base_version")),
                 ("SBOM sha256", record.get("sbom_sha256"))]
        report.facts = [(k, str(v)) for k, v in facts if v]
    report.facts.insert(0, ("started", _stamp(started)))
    report.changes = changes(report, previous_azure(state_dir, folder, match["image"]), notes)
    report.notes = notes
    return report
