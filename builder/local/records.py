"""Build records: ``<state>/builds/<id>/build.json`` (status, phases, timings, artifacts) and history."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"
ABANDONED = "abandoned"


@dataclass
class Phase:
    name: str
    status: str = "pending"  # pending, running, done, cached, skipped, failed, interrupted
    seconds: float = 0.0
    log: str | None = None
    detail: str = ""


@dataclass
class BuildRecord:
    id: str
    image: str
    directory: Path
    target: str = "local"
    status: str = RUNNING
    started: float = field(default_factory=time.time)
    finished: float | None = None
    phases: list[Phase] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    error: str | None = None
    error_log: str | None = None
    published: dict[str, Any] = field(default_factory=dict)  # gallery version id, version, gallery, action
    options: dict[str, Any] = field(default_factory=dict)
    snapshots: str = ""  # how layer trees were made: "overlay", or "copy: <why>" (the fallback)

    @property
    def duration(self) -> float:
        return (self.finished or time.time()) - self.started

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        phase = Phase(name)
        self.phases.append(phase)
        return phase

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["directory"] = str(self.directory)
        data["duration"] = round(self.duration, 1)
        return data

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / ".build.json.tmp"
        tmp.write_text(json.dumps(self.as_dict(), indent=2, default=str), encoding="utf-8")
        os.replace(tmp, self.directory / "build.json")


def new_build(state_dir: Path, image: str, options: dict[str, Any] | None = None) -> BuildRecord:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    build_id = f"{image}-{stamp}-{secrets.token_hex(2)}"
    record = BuildRecord(build_id, image, state_dir / "builds" / build_id, options=options or {})
    record.save()
    return record


def _lock_held(state_dir: Path, image: str) -> bool:
    """True while some process holds the image's build lock (see ``builder.local.lock``)."""
    import fcntl

    path = state_dir / "locks" / f"{image}.lock"
    if not path.exists():
        return False
    with open(path, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def load(path: Path) -> BuildRecord:
    data = json.loads((path / "build.json").read_text(encoding="utf-8"))
    data.pop("duration", None)
    data["directory"] = Path(data["directory"])
    data["phases"] = [Phase(**p) for p in data.get("phases", [])]
    known = set(BuildRecord.__dataclass_fields__)
    return BuildRecord(**{k: v for k, v in data.items() if k in known})  # records of newer builders load too


def history(state_dir: Path, image: str | None = None) -> list[BuildRecord]:
    """Every recorded build, oldest first; a build whose process died while running shows as interrupted."""
    root = state_dir / "builds"
    records = []
    for path in sorted(root.glob("*/build.json")) if root.is_dir() else []:
        try:
            record = load(path.parent)
        except (OSError, ValueError, TypeError):
            continue
        if image and record.image != image:
            continue
        if record.status == RUNNING and not _lock_held(state_dir, record.image):
            record.status = ABANDONED  # its process died without cleaning up (kill -9, power loss)
        records.append(record)
    return sorted(records, key=lambda r: r.started)
