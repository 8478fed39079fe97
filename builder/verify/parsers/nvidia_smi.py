"""``nvidia-smi --query-gpu=... --format=csv`` and ``nvidia-smi nvlink --status``."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from builder.verify.parsers.errors import ParseError

QUERY_FIELDS = ("index", "name", "driver_version", "persistence_mode", "ecc.mode.current", "memory.total",
                "pci.bus_id")
QUERY_COMMAND = f"nvidia-smi --query-gpu={','.join(QUERY_FIELDS)} --format=csv,noheader,nounits"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    driver_version: str
    persistence_mode: str
    ecc_mode: str
    memory_mib: int | None
    bus_id: str


def _header_key(column: str) -> str:
    """``memory.total [MiB]`` -> ``memory.total``."""
    return column.split("[")[0].strip()


def parse_query_gpu(text: str, fields: tuple[str, ...] = QUERY_FIELDS) -> list[Gpu]:
    """Rows of ``--query-gpu`` CSV output, with or without the header line and units."""
    rows = [row for row in csv.reader(io.StringIO(text.strip()), skipinitialspace=True) if row]
    if rows and _header_key(rows[0][0]) == fields[0] and not rows[0][0].strip().isdigit():
        fields = tuple(_header_key(c) for c in rows[0])
        rows = rows[1:]
    gpus = []
    for row in rows:
        if len(row) != len(fields):
            raise ParseError("nvidia-smi", f"CSV row has {len(row)} columns, expected {len(fields)}: {row!r}")
        values = dict(zip(fields, (c.strip() for c in row), strict=True))
        if not re.fullmatch(r"[0-9]+", values.get("index", "")) or "name" not in values \
                or "driver_version" not in values:
            raise ParseError("nvidia-smi", f"CSV row without index, name and driver_version: {row!r}")
        memory = re.match(r"[0-9]+", values.get("memory.total", ""))
        gpus.append(Gpu(index=int(values["index"]), name=values["name"], driver_version=values["driver_version"],
                        persistence_mode=values.get("persistence_mode", ""),
                        ecc_mode=values.get("ecc.mode.current", ""),
                        memory_mib=int(memory.group()) if memory else None, bus_id=values.get("pci.bus_id", "")))
    return gpus


@dataclass(frozen=True)
class NvLink:
    gpu: int
    link: int
    speed_gbps: float | None  # GB/s per link as nvidia-smi reports it; None when inactive

    @property
    def active(self) -> bool:
        return self.speed_gbps is not None


_GPU_LINE = re.compile(r"^GPU ([0-9]+):")
_LINK_LINE = re.compile(r"^\s*Link ([0-9]+):\s*(.+?)\s*$")


def parse_nvlink_status(text: str) -> dict[int, list[NvLink]]:
    """``nvidia-smi nvlink --status``: links per GPU index (an inactive link has no speed)."""
    links: dict[int, list[NvLink]] = {}
    gpu = None
    for line in text.splitlines():
        head = _GPU_LINE.match(line)
        if head:
            gpu = int(head.group(1))
            links[gpu] = []
            continue
        match = _LINK_LINE.match(line)
        if match and gpu is not None:
            speed = re.match(r"([0-9]+(?:\.[0-9]+)?)\s*GB/s", match.group(2))
            links[gpu].append(NvLink(gpu, int(match.group(1)), float(speed.group(1)) if speed else None))
    return links
