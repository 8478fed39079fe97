"""``ibstat`` and ``ibv_devinfo`` output: InfiniBand adapters and their ports."""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.verify.parsers.errors import ParseError


@dataclass(frozen=True)
class Port:
    ca: str
    port: int
    state: str  # "Active", "Down", "Initializing", ...
    physical_state: str = ""
    rate_gbps: int | None = None
    link_layer: str = ""

    @property
    def active(self) -> bool:
        return self.state.lower() in ("active", "port_active")


def parse_ibstat(text: str) -> list[Port]:
    """Ports of every CA in ``ibstat`` output."""
    ports: list[Port] = []
    ca = None
    current: dict | None = None

    def flush() -> None:
        if current is not None and ca is not None:
            rate = current.get("Rate")
            ports.append(Port(ca, current["port"], current.get("State", ""), current.get("Physical state", ""),
                              int(float(rate)) if rate and re.fullmatch(r"[0-9]+(\.[0-9]+)?", rate) else None,
                              current.get("Link layer", "")))

    for line in text.splitlines():
        if m := re.match(r"^CA '([^']+)'", line):
            flush()
            ca, current = m.group(1), None
        elif m := re.match(r"^\s+Port ([0-9]+):\s*$", line):
            flush()
            current = {"port": int(m.group(1))}
        elif current is not None and (m := re.match(r"^\s+([A-Za-z ]+):\s*(.*?)\s*$", line)):
            current[m.group(1).strip()] = m.group(2)
    flush()
    if text.strip() and not ports and "CA '" not in text:
        raise ParseError("ibstat", "no CA or port found")
    return ports


def parse_ibv_devinfo(text: str) -> list[Port]:
    """Ports of every HCA in ``ibv_devinfo`` output (no rate there: ``ibstat`` gives it)."""
    ports: list[Port] = []
    hca = None
    current: dict | None = None

    def flush() -> None:
        if current is not None and hca is not None:
            state = re.sub(r"\s*\(\d+\)$", "", current.get("state", ""))
            ports.append(Port(hca, current["port"], state, link_layer=current.get("link_layer", "")))

    for line in text.splitlines():
        if m := re.match(r"^hca_id:\s*(\S+)", line):
            flush()
            hca, current = m.group(1), None
        elif m := re.match(r"^\s+port:\s*([0-9]+)\s*$", line):
            flush()
            current = {"port": int(m.group(1))}
        elif current is not None and (m := re.match(r"^\s+(\w+):\s*(.*?)\s*$", line)):
            current[m.group(1)] = m.group(2)
    flush()
    return ports
