"""``rocm-smi --showproductname`` output, as ``--json`` or as text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class AmdGpu:
    card: int
    series: str
    model: str = ""


def parse_productname(text: str) -> list[AmdGpu]:
    """GPUs in ``rocm-smi --showproductname [--json]`` output, ordered by card index."""
    stripped = text.strip()
    gpus: dict[int, dict[str, str]] = {}
    if stripped.startswith("{"):
        for card, values in json.loads(stripped).items():
            match = re.match(r"card(\d+)$", card)
            if match:
                gpus[int(match.group(1))] = {k.lower(): str(v) for k, v in values.items()}
    else:
        for line in text.splitlines():
            match = re.match(r"^GPU\[(\d+)\]\s*:\s*([^:]+?):\s*(.*?)\s*$", line)
            if match:
                gpus.setdefault(int(match.group(1)), {})[match.group(2).strip().lower()] = match.group(3)
    if not gpus:
        raise ValueError("no GPUs in rocm-smi output")
    return [AmdGpu(card, values.get("card series", values.get("card sku", "")), values.get("card model", ""))
            for card, values in sorted(gpus.items())]
