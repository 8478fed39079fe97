"""Converge ``ansible/image.yml`` into a root filesystem through the ``community.general.chroot`` connection."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from builder.errors import InputError, OperationError
from builder.layers import FINAL_ROLES, LAYERS
from builder.rootfs import chroot_mounts

ANSIBLE_DIR = Path(__file__).resolve().parent.parent / "ansible"
PLAYBOOK = ANSIBLE_DIR / "image.yml"
TAGS = (*(layer.name for layer in LAYERS), *FINAL_ROLES)
_TASK = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.+?)\] \*+$")
_RECAP = re.compile(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")
_FATAL = re.compile(r"^(?:fatal|failed): \[[^\]]+\](?::| \(item=.*?\)) ?(?:FAILED! |UNREACHABLE! )?=> (?P<body>.*)$")


@dataclass
class ConvergeResult:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    tasks: int = 0
    log: Path | None = None


def _feed_paths(vars_file: Path) -> list[Path]:
    """Local folders a ``file://`` feed serves from (bind-mounted into the root at the same path)."""
    try:
        data = yaml.safe_load(vars_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read variables: {exc}", file=vars_file) from exc
    if not isinstance(data, dict) or "builder_image" not in data:
        raise InputError("not a rendered variables file (no builder_image); run `builder render`", file=vars_file)
    base = str(data.get("package_feed_base", ""))
    urls = [base, *(d.get("url", "") for d in (data.get("builder_downloads") or {}).values())]
    paths = {Path(urlsplit(u).path).parent if u != base else Path(urlsplit(u).path)
             for u in urls if u.startswith("file://")}
    return sorted(p for p in paths if p.is_dir())


def _bind(root: Path, source: Path) -> Path:
    point = root / str(source).lstrip("/")
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(point)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(point)], check=False, capture_output=True)
    return point


def _prune(root: Path, point: Path) -> None:
    """Remove the empty folders a bind mount point left behind."""
    current = point
    while current != root and current.is_dir() and not any(current.iterdir()):
        current.rmdir()
        current = current.parent


def _failure(line: str) -> str:
    body = _FATAL.match(line)
    if not body:
        return line
    try:
        data = json.loads(body.group("body"))
    except json.JSONDecodeError:
        return body.group("body")[:500]
    message = data.get("msg") or data.get("stderr") or data.get("module_stderr") or ""
    return str(message).strip().splitlines()[-1][:500] if str(message).strip() else "failed"


def converge(rootfs: Path, vars_file: Path, *, log: Path, tags: list[str] | None = None,
             on_task: Callable[[str], None] | None = None, check_mode: bool = False,
             extra_vars: dict | None = None) -> ConvergeResult:
    """Run the playbook against ``rootfs``; raise OperationError naming the failed task."""
    rootfs = rootfs.resolve()
    if not (rootfs / "usr/bin").is_dir():
        raise InputError("not a root filesystem (no usr/bin)", file=rootfs)
    unknown = [t for t in tags or [] if t not in TAGS]
    if unknown:
        raise InputError(f"unknown tag(s) {', '.join(unknown)} (known: {', '.join(TAGS)})", field="tags")
    feeds = _feed_paths(vars_file)
    log.parent.mkdir(parents=True, exist_ok=True)
    inventory = log.with_suffix(".inventory.ini")
    inventory.write_text(f"rootfs ansible_host={rootfs} ansible_connection=community.general.chroot "
                         f"ansible_python_interpreter=/usr/bin/python3\n")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOK),
               "-e", f"@{vars_file.resolve()}"]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    if tags:
        command += ["--tags", ",".join(tags)]
    if check_mode:
        command += ["--check"]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1"}
    result = ConvergeResult(log=log)
    current, failed_task, reason = "", None, ""
    with chroot_mounts(rootfs), open(log, "w", encoding="utf-8") as out:
        points = [_bind(rootfs, path) for path in feeds]
        try:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                    cwd=ANSIBLE_DIR)
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                text = line.rstrip("\n")
                if match := _TASK.match(text):
                    current = match.group("name")
                    result.tasks += 1
                    if on_task:
                        on_task(current)
                elif text.startswith("[ERROR]: ") and failed_task is None:
                    failed_task, reason = current, text.removeprefix("[ERROR]: ").removeprefix("Task failed: ")
                elif text.startswith(("fatal: ", "failed: ")) and failed_task is None:
                    failed_task, reason = current, _failure(text)
                elif match := _RECAP.match(text):
                    result.ok, result.changed, result.unreachable, result.failed = map(int, match.groups())
            code = proc.wait()
        finally:
            for point in reversed(points):
                subprocess.run(["umount", str(point)], check=False, capture_output=True)
                _prune(rootfs, point)
    if code != 0 or result.failed or result.unreachable:
        where = f"task '{failed_task}' failed: {reason}" if failed_task else f"ansible-playbook exited {code}"
        raise OperationError(f"converge of {rootfs} failed: {where}", log)
    return result
