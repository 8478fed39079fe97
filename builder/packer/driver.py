"""Drive the ``packer`` binary: find it (version check), ``init``, ``validate`` and a streamed
``build -machine-readable`` whose output becomes events as it arrives.

Hand-written on purpose: packer-py buffers all output until Packer exits, which rules out live progress,
signal forwarding and a per-build timeout. Packer runs in its own process group; Ctrl-C/SIGTERM are
forwarded to that group as SIGINT so Packer deletes its temporary resource group, then we exit 130.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import EXIT_INTERRUPTED, BuilderError, InputError, OperationError
from builder.packer.events import Artifact, ArtifactCollector, Event, parse_line
from builder.versions import at_least

INSTALL_HINT = ("install Packer from https://developer.hashicorp.com/packer/install (HashiCorp apt repository: "
                "apt-get install packer) or point the PACKER environment variable at the binary")
ON_ERROR = ("cleanup", "abort")
GRACE_SECONDS = 600.0  # how long Packer may take to delete its resources after an interrupt
REFORWARD_SECONDS = 2.0  # how often an interrupt is repeated to the provisioners' processes until Packer exits

EventHandler = Callable[[Event], None]


class PackerInterrupted(BuilderError):
    """The build was interrupted (Ctrl-C, SIGTERM); Packer was asked to clean up first."""

    exit_code = EXIT_INTERRUPTED


@dataclass(frozen=True)
class PackerBinary:
    path: str
    version: str


@dataclass
class RunResult:
    """Outcome of one streamed Packer run."""

    command: list[str]
    returncode: int
    artifacts: list[Artifact] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.interrupted

    def artifact_id(self) -> str | None:
        """The id of the builder's artifact (post-processor artifacts only as a fallback)."""
        with_id = [a for a in self.artifacts if a.id]
        own = [a for a in with_id if not a.builder_id.startswith("packer.post-processor")]
        return (own or with_id)[0].id if with_id else None


def parse_version(text: str) -> str | None:
    found = re.search(r"v?(\d+\.\d+\.\d+)", text)
    return found.group(1) if found else None


def find_packer(minimum: str, explicit: str | None = None) -> PackerBinary:
    """Locate ``packer`` (``explicit``, ``$PACKER``, then ``PATH``) and check it is at least ``minimum``."""
    candidate = explicit or os.environ.get("PACKER") or shutil.which("packer")
    if not candidate or not (shutil.which(candidate) or Path(candidate).is_file()):
        raise OperationError(f"packer not found; {INSTALL_HINT}")
    path = shutil.which(candidate) or str(Path(candidate).resolve())
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=60, check=False,
                             env=packer_env())
    except OSError as exc:
        raise OperationError(f"cannot run {path}: {exc}; {INSTALL_HINT}") from exc
    version = parse_version(out.stdout)
    if version is None:
        raise OperationError(f"cannot tell the version of {path} (output: {out.stdout.strip()[:200]!r})")
    if not at_least(version, minimum):
        raise OperationError(f"packer {version} at {path} is too old: this template needs >= {minimum}; "
                             f"{INSTALL_HINT}")
    return PackerBinary(path, version)


def packer_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Packer runs with: no telemetry check-ins, no colour codes."""
    return {**os.environ, "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1", **(extra or {})}


def var_args(var_files: Sequence[Path] = (), variables: dict[str, str] | None = None) -> list[str]:
    args = [f"-var-file={f}" for f in var_files]
    args += [f"-var={k}={v}" for k, v in (variables or {}).items()]
    return args


def init_command(packer: str, template: Path) -> list[str]:
    return [packer, "init", str(template)]


def validate_command(packer: str, template: Path, var_files: Sequence[Path] = (),
                     variables: dict[str, str] | None = None) -> list[str]:
    return [packer, "validate", *var_args(var_files, variables), str(template)]


def build_command(packer: str, template: Path, var_files: Sequence[Path] = (),
                  variables: dict[str, str] | None = None, on_error: str = "cleanup") -> list[str]:
    if on_error not in ON_ERROR:
        raise InputError(f"invalid value {on_error!r}: expected one of {', '.join(ON_ERROR)}", field="--on-error")
    return [packer, "build", "-machine-readable", f"-on-error={on_error}", *var_args(var_files, variables),
            str(template)]


def show(command: Sequence[str]) -> str:
    """The command as a shell line (what ``--dry-run`` prints)."""
    return shlex.join(command)


def run_checked(command: list[str], *, cwd: Path | None = None, timeout: float = 600,
                env: dict[str, str] | None = None) -> str:
    """Run a short Packer command (init, validate, fmt); raise OperationError with its output on failure."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False,
                              env=packer_env(env))
    except subprocess.TimeoutExpired as exc:
        raise OperationError(f"`{show(command)}` did not finish within {timeout:.0f} s") from exc
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise OperationError(f"`{show([Path(command[0]).name, *command[1:2]])}` failed (exit {proc.returncode}):"
                             f"\n{output}")
    return output


class _Forwarder:
    """While a build runs: SIGINT/SIGTERM -> SIGINT to Packer's process group (a third signal kills it).

    One signal to the group is not enough: a process between ``fork`` and ``exec`` (a provisioner's shell
    starting its next command) receives it with the shell's inherited handler, which only sets a flag, and
    the ``exec`` that follows discards it. The new command (``sleep 600`` in the tests, ``ansible-playbook``
    on Azure) then runs to its end while Packer waits for it: on a loaded machine that window is wide, and the
    driver test waited the whole sleep. So once interrupted, the driver repeats SIGINT every
    ``REFORWARD_SECONDS`` to the group's processes that are not Packer itself (Packer's own processes share its
    executable and get it once, as before, so the clean-up Packer starts on the first one is left alone), and
    kills the group ``grace`` seconds after the first signal if Packer is still running.
    """

    def __init__(self, proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
        self.proc = proc
        self.count = 0
        self.grace = grace
        self._previous: dict[int, object] = {}
        self._repeater: threading.Thread | None = None
        self._done = threading.Event()
        self._exe = _exe(proc.pid)

    def __enter__(self) -> _Forwarder:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
        self.interrupt(signal.SIGKILL if self.count >= 3 else signal.SIGINT)

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        """Forward ``sig`` to the group; on the first interrupt start repeating it to the provisioners."""
        self.send(sig)
        if sig == signal.SIGINT and self._repeater is None:
            self._repeater = threading.Thread(target=self._repeat, name="packer-interrupt", daemon=True)
            self._repeater.start()

    def _repeat(self) -> None:
        deadline = time.monotonic() + self.grace
        while not self._done.wait(REFORWARD_SECONDS) and self.proc.poll() is None:
            if time.monotonic() >= deadline:
                self.send(signal.SIGKILL)
                return
            for pid in _group_members(self.proc.pid):
                if pid != self.proc.pid and (self._exe is None or _exe(pid) != self._exe):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGINT)

    def send(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _group_members(pgid: int) -> list[int]:
    """The processes in process group ``pgid`` (from /proc)."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
    return members


def stream(command: list[str], *, on_event: EventHandler | None = None, log: Path | None = None,
           timeout: float | None = None, cwd: Path | None = None, env: dict[str, str] | None = None,
           grace: float = GRACE_SECONDS) -> RunResult:
    """Run a ``-machine-readable`` Packer command, turning each output line into an event as it arrives.

    ``timeout`` (seconds): Packer is interrupted (so it cleans up) and killed ``grace`` seconds later.
    Raises PackerInterrupted after a forwarded Ctrl-C/SIGTERM once Packer has exited.
    """
    collector = ArtifactCollector()
    errors: list[str] = []
    ui_errors: list[str] = []
    started = time.monotonic()
    log_handle = log.open("a", encoding="utf-8") if log else None
    if log_handle:
        log_handle.write(f"# {show(command)}\n")
        log_handle.flush()
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                cwd=cwd, env=packer_env(env), start_new_session=True, errors="replace")
    except OSError as exc:
        raise OperationError(f"cannot run {command[0]}: {exc}; {INSTALL_HINT}") from exc
    timed_out = threading.Event()
    with _Forwarder(proc, grace) as forwarder:
        timers = []
        if timeout:
            def expire() -> None:
                timed_out.set()
                forwarder.interrupt(signal.SIGINT)  # repeated to the provisioners; killed after ``grace``

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
            timers.append(timer)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if log_handle:
                    log_handle.write(line)
                    log_handle.flush()
                event = parse_line(line)
                if event is None:
                    stripped = line.strip()
                    if not stripped:
                        continue
                    event = Event("message", stripped)
                collector.add(event)
                if event.kind == "build-error":
                    errors.append(event.text.strip())
                elif event.kind == "error" and event.text.strip():
                    ui_errors.append(event.text.strip())
                if on_event:
                    on_event(event)
            returncode = proc.wait()
        finally:
            for t in timers:
                t.cancel()
            if proc.poll() is None:
                forwarder.send(signal.SIGKILL)
                proc.wait()
            if log_handle:
                log_handle.close()
    result = RunResult(command, returncode, collector.artifacts, errors or ui_errors, timed_out.is_set(),
                       forwarder.count > 0, time.monotonic() - started)
    if result.interrupted:
        raise PackerInterrupted("interrupted: Packer was asked to remove its temporary resources"
                                + (f" (log: {log})" if log else ""))
    return result
