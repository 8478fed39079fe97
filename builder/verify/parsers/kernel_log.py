"""Kernel and system log lines: NVIDIA Xid events and IPoIB "lost carrier" events.

Format-agnostic: reads ``dmesg -T`` (``[Sun Feb 23 16:24:18 2025] NVRM: Xid (PCI:0000:9b:00): 119, ...``,
leptonai/gpud components/accelerator/nvidia/xid/testdata@4a8de33a), syslog / ``journalctl`` short lines
(``Aug 17 06:18:01 host systemd-networkd[5398]: ib6: lost carrier``, Azure/azurehpc-health-checks
test/data/1dev_6flap_syslog@0e0a1ac2) and ``journalctl -o short-iso``. A timestamp is kept where the line
carries a full one (dmesg -T, ISO); syslog lines have no year, so their window is left to the command.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from builder.verify.parsers.errors import ParseError

# AzNHC customTests/azure_gpu_xid.nhc@0e0a1ac2 greps "Xid.*: $XID,"; the driver prints "NVRM: Xid (PCI:...): N, ..."
_XID = re.compile(r"NVRM: Xid \((PCI:[^)]*)\): (\d+),\s*(.*)$")
_DMESG_T = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")
_ISO = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")
# AzNHC customTests/azure_ib_link_flapping.nhc@0e0a1ac2: grep -i 'lost carrier', device = first ib[0-9a-zA-Z_]+
_CARRIER = re.compile(r"lost carrier", re.IGNORECASE)
_IB_DEVICE = re.compile(r"ib[0-9a-zA-Z_]+")


@dataclass(frozen=True)
class Xid:
    code: int
    pci: str
    message: str
    time: datetime | None = None


def _time(line: str) -> datetime | None:
    try:
        if m := _DMESG_T.match(line):
            return datetime.strptime(re.sub(" +", " ", m.group(1)), "%a %b %d %H:%M:%S %Y")
        if m := _ISO.match(line):
            return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None  # a stamp that is not a date (Feb 30): the event is kept, without a time
    return None


def parse_xids(text: str) -> list[Xid]:
    """Every Xid event in the log text (an empty list is a clean log)."""
    if "\x00" in text:
        raise ParseError("kernel log", "binary data in the log text")
    return [Xid(int(m.group(2)), m.group(1), m.group(3).strip(), _time(line))
            for line in text.splitlines() if (m := _XID.search(line))]


def fatal_xids(events: list[Xid], fatal: set[int], since: datetime | None = None) -> list[Xid]:
    """The events with a fatal code, at or after ``since`` where the line has a timestamp."""
    return [e for e in events if e.code in fatal and (since is None or e.time is None or e.time >= since)]


def link_flaps(text: str) -> Counter[str]:
    """Number of "lost carrier" lines per IPoIB device (AzNHC counts the first ``ib…`` word of the line)."""
    if "\x00" in text:
        raise ParseError("system log", "binary data in the log text")
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if _CARRIER.search(line) and (m := _IB_DEVICE.search(line)):
            counts[m.group()] += 1
    return counts
