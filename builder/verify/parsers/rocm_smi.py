"""``rocm-smi --showproductname`` output, as ``--json`` or as text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from builder.verify.parsers.errors import ParseError


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
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise ParseError("rocm-smi", f"not JSON: {exc}") from None
        for card, values in (data.items() if isinstance(data, dict) else []):
            match = re.match(r"card([0-9]+)$", card)
            if match and isinstance(values, dict):
                gpus[int(match.group(1))] = {str(k).lower(): str(v) for k, v in values.items()}
    else:
        for line in text.splitlines():
            match = re.match(r"^GPU\[([0-9]+)\]\s*:\s*([^:]+?):\s*(.*?)\s*$", line)
            if match:
                gpus.setdefault(int(match.group(1)), {})[match.group(2).strip().lower()] = match.group(3)
    if not gpus:
        raise ParseError("rocm-smi", "no GPUs in the output")
    return [AmdGpu(card, values.get("card series", values.get("card sku", "")), values.get("card model", ""))
            for card, values in sorted(gpus.items())]
