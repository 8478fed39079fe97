"""Host facts from standard tools: ``nproc``, ``free -k``, ``lsblk -dno NAME`` and ``ip -o link show``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.verify.parsers.errors import ParseError


def parse_nproc(text: str) -> int:
    """The single number ``nproc --all`` prints."""
    value = text.strip()
    if not value.isdigit() or int(value) < 1:
        raise ParseError("nproc", f"expected a positive number, found {value[:40]!r}")
    return int(value)


@dataclass(frozen=True)
class Memory:
    total_kib: int
    swap_kib: int


def parse_free(text: str) -> Memory:
    """``Mem:`` and ``Swap:`` totals (KiB) of ``free -k`` (procps)."""
    totals: dict[str, int] = {}
    for line in text.splitlines():
        if m := re.match(r"^(Mem|Swap):\s+(\d+)\b", line.strip()):
            totals[m.group(1)] = int(m.group(2))
    if "Mem" not in totals:
        raise ParseError("free", "no 'Mem:' line")
    return Memory(totals["Mem"], totals.get("Swap", 0))


def nvme_namespaces(text: str) -> list[str]:
    """Block devices named like AzNHC counts them, ``nvme<N>n1`` (customTests/azure_nvme_count.nhc@0e0a1ac2)."""
    return [name for name in text.split() if re.fullmatch(r"nvme\d+n1", name)]


def parse_ip_link(text: str) -> dict[str, str]:
    """Interface name -> state (``UP``, ``DOWN``, ``UNKNOWN``) from ``ip -o link show``."""
    links: dict[str, str] = {}
    for line in text.splitlines():
        if m := re.match(r"^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<[^>]*>.*?\bstate\s+(\S+)", line):
            links[m.group(1)] = m.group(2)
    if text.strip() and not links:
        raise ParseError("ip link", "no interface lines found")
    return links
