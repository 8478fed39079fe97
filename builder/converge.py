"""Converge ``ansible/image.yml`` into a root filesystem through the ``community.general.chroot`` connection."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from builder.errors import InputError, OperationError
from builder.paths import ANSIBLE_CONFIG, ANSIBLE_DIR, PLAYBOOK
from builder.render import load_vars
from builder.rootfs import chroot_mounts
from builder.stack.layers import TAGS

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


def _feed_paths(vars_file: Path, sources: dict[Path, Path] | None = None) -> list[tuple[Path, Path]]:
    """Local folders a ``file://`` feed serves from, as (path in the root, host folder bind-mounted there).

    The host folder is the same path unless ``sources`` maps the path (or a folder above it) elsewhere.
    """
    try:
        data = load_vars(vars_file) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read variables: {exc}", file=vars_file) from exc
    if not isinstance(data, dict) or "builder_image" not in data:
        raise InputError("not a rendered variables file (no builder_image); run `builder render`", file=vars_file)
    base = str(data.get("package_feed_base", ""))
    urls = [base, *(d.get("url", "") for d in (data.get("builder_downloads") or {}).values())]
    paths = {Path(urlsplit(u).path).parent if u != base else Path(urlsplit(u).path)
             for u in urls if u.startswith("file://")}
    pairs = [(path, _host_folder(path, sources or {})) for path in sorted(paths)]
    return [(path, host) for path, host in pairs if host.is_dir()]


def _host_folder(path: Path, sources: dict[Path, Path]) -> Path:
    for inside, host in sources.items():
        if path == inside or inside in path.parents:
            return host / path.relative_to(inside)
    return path


def _bind(root: Path, inside: Path, source: Path) -> Path:
    point = root / str(inside).lstrip("/")
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(point)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(point)], check=False, capture_output=True)
    return point


@contextlib.contextmanager
def feeds_mounted(rootfs: Path, feeds: list[tuple[Path, Path]]) -> Iterator[None]:
    """``file://`` feed folders bind-mounted read-only into ``rootfs`` (path inside, host folder) meanwhile."""
    points = [_bind(rootfs, inside, host) for inside, host in feeds]
    try:
        yield
    finally:
        for point in reversed(points):
            subprocess.run(["umount", str(point)], check=False, capture_output=True)
            _prune(rootfs, point)


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
    message = str(data.get("msg") or data.get("stderr") or data.get("module_stderr") or "").strip()
    if (not message or message.endswith("Unknown error.")) and data.get("message"):
        return str(data["message"]).strip().splitlines()[0][:500]  # include_vars & co.: the reason, first line
    return message.splitlines()[-1][:500] if message else "failed"


class _ErrorBlock:
    """The text of an ``[ERROR]:`` block (its first lines and ``Origin:``), as ansible-core prints it."""

    def __init__(self, first: str) -> None:
        self.lines = [first]
        self.origin = ""
        self.open = True

    def feed(self, text: str) -> None:
        if not self.open:
            return
        if text.startswith("Origin: "):
            self.origin = text.removeprefix("Origin: ").strip()
            self.open = False
        elif not text.strip() or text.startswith(("fatal: ", "failed: ", "PLAY RECAP", "<<< caused by")):
            self.open = bool(not text.strip() and len(self.lines) == 1)  # "Task failed." may follow a blank
        elif len(self.lines) < 3 and text.strip() != "Task failed.":
            self.lines.append(text.strip())

    def text(self) -> str:
        message = " ".join(self.lines)[:500]
        return f"{message} (at {_short(self.origin)})" if self.origin else message


def _short(path: str) -> str:
    return path.replace(f"{ANSIBLE_DIR}/", "ansible/")


def _tail(lines: list[str], count: int = 3) -> str:
    found = [line.strip() for line in lines if line.strip() and not _RECAP.match(line)][-count:]
    return " | ".join(found)[:500]


def converge(rootfs: Path, vars_file: Path, *, log: Path, tags: list[str] | None = None,
             on_task: Callable[[str], None] | None = None, check_mode: bool = False,
             extra_vars: dict | None = None, feed_sources: dict[Path, Path] | None = None) -> ConvergeResult:
    """Run the playbook against ``rootfs``; raise OperationError naming the failed task.

    ``file://`` feeds are bind-mounted read-only into the root at their path; ``feed_sources`` maps such a path
    (as the variables name it) to the host folder to mount there instead.
    """
    rootfs = rootfs.resolve()
    if not (rootfs / "usr/bin").is_dir():
        raise InputError("not a root filesystem (no usr/bin)", file=rootfs)
    unknown = [t for t in tags or [] if t not in TAGS]
    if unknown:
        raise InputError(f"unknown tag(s) {', '.join(unknown)} (known: {', '.join(TAGS)})", field="tags")
    feeds = _feed_paths(vars_file, feed_sources)
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
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / ANSIBLE_CONFIG.name), "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1"}
    result = ConvergeResult(log=log)
    current, failed_task, reason = "", None, ""
    error: _ErrorBlock | None = None
    recent: list[str] = []
    with chroot_mounts(rootfs), open(log, "w", encoding="utf-8") as out, feeds_mounted(rootfs, feeds):
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=ANSIBLE_DIR)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            text = line.rstrip("\n")
            recent = [*recent[-19:], text]
            if error is not None:
                error.feed(text)
            if match := _TASK.match(text):
                current = match.group("name")
                result.tasks += 1
                if on_task:
                    on_task(current)
            elif text.startswith(("[ERROR]: ", "ERROR! ")) and error is None:
                first = text.removeprefix("[ERROR]: ").removeprefix("ERROR! ").removeprefix("Task failed: ")
                error = _ErrorBlock(first)
                if failed_task is None and current:
                    failed_task, reason = current, first
            elif text.startswith(("fatal: ", "failed: ")) and (
                    failed_task is None or (failed_task == current and reason.endswith("Unknown error."))):
                failed_task, reason = current, _failure(text)
            elif match := _RECAP.match(text):
                result.ok, result.changed, result.unreachable, result.failed = map(int, match.groups())
        code = proc.wait()
    if code != 0 or result.failed or result.unreachable:
        if failed_task:
            where = f"task '{failed_task}' failed: {reason}"
            if error is not None and error.origin:
                where += f" (at {_short(error.origin)})"
        else:
            where = f"ansible-playbook exited {code}: " + (error.text() if error else _tail(recent) or "no output")
        raise OperationError(f"converge of {rootfs} failed: {where}", log)
    return result
