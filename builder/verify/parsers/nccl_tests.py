"""Output of nccl-tests / rccl-tests (``all_reduce_perf``): the result table and the summary lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    size_bytes: int
    count: int
    dtype: str
    redop: str
    oop_time_us: float
    oop_algbw: float
    oop_busbw: float
    oop_wrong: int | None
    ip_time_us: float
    ip_algbw: float
    ip_busbw: float
    ip_wrong: int | None

    @property
    def busbw(self) -> float:
        """Best of out-of-place and in-place bus bandwidth (GB/s)."""
        return max(self.oop_busbw, self.ip_busbw)

    @property
    def wrong(self) -> int:
        return (self.oop_wrong or 0) + (self.ip_wrong or 0)


@dataclass
class NcclResult:
    rows: list[Row] = field(default_factory=list)
    avg_busbw: float | None = None
    out_of_bounds: int | None = None
    n_gpus: int | None = None
    devices: list[str] = field(default_factory=list)

    @property
    def peak_busbw(self) -> float | None:
        """Bus bandwidth at the largest message size: what the SKU minimum is measured against."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda r: r.size_bytes).busbw

    @property
    def max_size(self) -> int | None:
        return max((r.size_bytes for r in self.rows), default=None)


def _number(token: str) -> float:
    return float("nan") if token in ("N/A", "-nan", "nan") else float(token)


def _wrong(token: str) -> int | None:
    return None if token == "N/A" else int(token)


def parse(text: str) -> NcclResult:
    """Parse ``all_reduce_perf`` output; raises ValueError when it holds no result row."""
    result = NcclResult()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if m := re.search(r"Avg bus bandwidth\s*:\s*([\d.]+)", stripped):
                result.avg_busbw = float(m.group(1))
            elif m := re.search(r"Out of bounds values\s*:\s*(\d+)", stripped):
                result.out_of_bounds = int(m.group(1))
            elif m := re.search(r"nThread\s+\d+\s+nGpus\s+(\d+)", stripped):
                result.n_gpus = int(m.group(1))
            elif m := re.search(r"Rank\s+\d+.*device\s+\d+\s+\[[^]]+\]\s+(.+)$", stripped):
                result.devices.append(m.group(1).strip())
            continue
        tokens = stripped.split()
        # size count type redop root time algbw busbw #wrong time algbw busbw #wrong (root since 2.10)
        if len(tokens) in (12, 13) and tokens[0].isdigit():
            if len(tokens) == 13:
                tokens = tokens[:4] + tokens[5:]
            result.rows.append(Row(int(tokens[0]), int(tokens[1]), tokens[2], tokens[3],
                                   _number(tokens[4]), _number(tokens[5]), _number(tokens[6]), _wrong(tokens[7]),
                                   _number(tokens[8]), _number(tokens[9]), _number(tokens[10]), _wrong(tokens[11])))
    if not result.rows:
        raise ValueError("no nccl-tests result rows found")
    return result
