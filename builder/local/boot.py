"""Boot test: start a disk the way an Azure Gen2 VM boots it (UEFI, GRUB, ``console=ttyS0``) under QEMU with
TCG and OVMF, and wait for the boot marker on the serial console within a time limit."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError, OperationError
from builder.local.disk import BOOT_MARKER

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
DEFAULT_TIMEOUT = 300.0
POLL = 0.1  # seconds between looks at the serial log (the marker is seen at most this late)


@dataclass
class BootResult:
    ok: bool
    seconds: float
    serial_log: Path
    reason: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "seconds": round(self.seconds, 1), "serial_log": str(self.serial_log),
                "reason": self.reason}


def disk_format(disk: Path) -> str:
    if disk.suffix.lower() == ".vhd":
        return "vpc"
    if disk.suffix.lower() == ".qcow2":
        return "qcow2"
    return "raw"


def qemu_command(disk: Path, vars_file: Path, serial_log: Path, memory_mib: int = 2048) -> list[str]:
    """QEMU with TCG (KVM hangs on this class of machine), UEFI pflash, the disk read-only via ``-snapshot``."""
    return ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-cpu", "max", "-smp", "2",
            "-m", str(memory_mib), "-nodefaults", "-display", "none", "-no-reboot",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_file}",
            "-drive", f"file={disk},format={disk_format(disk)},if=virtio,snapshot=on",
            "-nic", "user,model=virtio-net-pci", "-serial", f"file:{serial_log}"]


def check_prerequisites(disk: Path) -> None:
    if not disk.is_file():
        raise InputError(f"no such disk: {disk}", field="disk")
    if shutil.which("qemu-system-x86_64") is None:
        raise InputError("qemu-system-x86_64 is missing; install it with `bash .ci/setup` "
                         "(apt-get install qemu-system-x86)")
    if not OVMF_CODE.exists() or not OVMF_VARS.exists():
        raise InputError(f"UEFI firmware {OVMF_CODE} is missing; install it with `apt-get install ovmf`")


def boot_test(disk: Path, work_dir: Path, timeout: float = DEFAULT_TIMEOUT, marker: str = BOOT_MARKER,
              tick: Callable[[str], None] = lambda _: None) -> BootResult:
    """Boot ``disk``; ok when ``marker`` appears on the serial console before ``timeout`` seconds."""
    check_prerequisites(disk)
    work_dir.mkdir(parents=True, exist_ok=True)
    serial_log = work_dir / "serial.log"
    serial_log.unlink(missing_ok=True)
    vars_file = work_dir / "OVMF_VARS.fd"
    shutil.copy(OVMF_VARS, vars_file)
    qemu_log = work_dir / "qemu.log"
    start = time.monotonic()
    with open(qemu_log, "wb") as out:
        proc = subprocess.Popen(qemu_command(disk, vars_file, serial_log), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        last, seen, offset = "", "", 0
        while True:
            elapsed = time.monotonic() - start
            chunk, offset = _read_from(serial_log, offset)
            if chunk:  # only what is new, plus enough of the old tail to find a marker split across reads
                text = seen[-len(marker):] + chunk
                if marker in text:
                    return BootResult(True, elapsed, serial_log)
                seen = seen[-4096:] + chunk
                line = _last_line(seen[-4096:])
                if line and line != last:
                    tick(line)
                    last = line
            if proc.poll() is not None:
                return BootResult(False, elapsed, serial_log,
                                  f"QEMU exited ({proc.returncode}) before the boot marker; see {qemu_log}")
            if elapsed > timeout:
                return BootResult(False, elapsed, serial_log, f"no boot marker within {timeout:.0f} s")
            time.sleep(POLL)
    finally:
        _stop(proc)
        vars_file.unlink(missing_ok=True)


def _read_from(path: Path, offset: int) -> tuple[str, int]:
    """What was appended to ``path`` since ``offset``, and the new offset."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return "", offset
    return data.decode(errors="replace"), offset + len(data)


def require_boot(result: BootResult) -> None:
    if not result.ok:
        raise OperationError(f"boot test failed: {result.reason}", result.serial_log)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
