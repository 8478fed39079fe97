"""``nvidia-smi -q`` (also ``-q -d ECC,PAGE_RETIREMENT,ROW_REMAPPER,PERFORMANCE``): per-GPU health fields.

The output is an indented ``Key : Value`` tree with one ``GPU <bus id>`` block per GPU (layout as in
leptonai/gpud pkg/nvidia-query/testdata and Azure/azurehpc-health-checks test/data). Read here: product name,
persistence, ECC error counts (volatile/aggregate, SRAM/DRAM), retired pages, remapped rows and the active clock
event (throttle) reasons, named ``Clocks Event Reasons`` from driver 535 on and ``Clocks Throttle Reasons`` before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from builder.verify.parsers.errors import ParseError

TOOL = "nvidia-smi -q"
_GPU = re.compile(r"^GPU ([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*$")
_FIELD = re.compile(r"^(\s+)(\S[^:]*?)\s*(?::\s*(.*?))?\s*$")


@dataclass
class GpuHealth:
    bus_id: str
    fields: dict[str, str] = field(default_factory=dict)  # "ECC Errors/Volatile/DRAM Uncorrectable" -> "0"

    def get(self, *path: str) -> str | None:
        return self.fields.get("/".join(path))

    def count(self, *path: str) -> int | None:
        """An integer field; None when absent or ``N/A``."""
        value = self.get(*path)
        return int(value) if value is not None and re.fullmatch(r"[0-9]+", value) else None

    @property
    def name(self) -> str | None:
        return self.get("Product Name")

    def ecc(self, scope: str, memory: str, kind: str) -> int | None:
        """Summed ECC count, e.g. ``ecc("Volatile", "SRAM", "Uncorrectable")`` (Parity + SEC-DED where split)."""
        prefix = f"ECC Errors/{scope}/{memory} {kind}"
        values = [int(v) for k, v in self.fields.items()
                  if (k == prefix or k.startswith(prefix + " ")) and re.fullmatch(r"[0-9]+", v)]
        return sum(values) if values else None

    def throttle_reasons(self) -> list[str]:
        """Names of the active clock event / throttle reasons (``Idle`` included when active)."""
        active = []
        for key, value in self.fields.items():
            parts = key.split("/")
            if parts[0] in ("Clocks Event Reasons", "Clocks Throttle Reasons") and len(parts) > 1 \
                    and value == "Active":
                active.append(parts[-1])
        return active


def parse(text: str) -> list[GpuHealth]:
    """One entry per ``GPU <bus id>`` block; ParseError when there is none."""
    gpus: list[GpuHealth] = []
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines():
        if raw.startswith("#@ "):
            continue
        if m := _GPU.match(raw):
            gpus.append(GpuHealth(m.group(1)))
            stack = []
            continue
        if not gpus or not (m := _FIELD.match(raw)):
            continue
        indent, key, value = len(m.group(1)), m.group(2), m.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([k for _, k in stack] + [key])
        if value is None:
            stack.append((indent, key))
        else:
            gpus[-1].fields[path] = value
    if not gpus:
        raise ParseError(TOOL, "no 'GPU <bus id>' sections found")
    return gpus
