"""Output of nccl-tests / rccl-tests (``all_reduce_perf``): the run's shape, the result table and the summary.

Layouts read (NVIDIA/nccl-tests src/util.cu@a0b82b22 ``writeResultHeader``/``writeBenchmarkLineBody``):
``size count type redop [root] time algbw busbw #wrong time algbw busbw #wrong [timestamp]``, the per-iteration
layout (``i_min i_max i_p99 i_cv%`` after each ``#wrong``), ``N/A`` when validation is off, and the wrong-element
count printed with ``%g`` (``1.04858e+06`` from 10^6 on). Layouts up to 2.11 head the column ``error`` and print a
rounding delta there (``1e-06``, NVIDIA/nccl-tests#176), not a count: correctness then comes from the
``Out of bounds values`` line only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from builder.verify.parsers.errors import ParseError

TOOL = "all_reduce_perf"


@dataclass(frozen=True)
class Row:
    size_bytes: int
    count: int
    dtype: str
    redop: str
    oop_time_us: float
    oop_algbw: float
    oop_busbw: float
    oop_wrong: int | None  # None: not a count (``N/A``, or an old layout's error delta)
    ip_time_us: float
    ip_algbw: float
    ip_busbw: float
    ip_wrong: int | None

    @property
    def busbw(self) -> float:
        """Best of out-of-place and in-place bus bandwidth (GB/s); NaN when neither is a number."""
        values = [v for v in (self.oop_busbw, self.ip_busbw) if not math.isnan(v)]
        return max(values) if values else math.nan

    @property
    def wrong(self) -> int:
        return (self.oop_wrong or 0) + (self.ip_wrong or 0)


@dataclass
class NcclResult:
    rows: list[Row] = field(default_factory=list)
    avg_busbw: float | None = None
    out_of_bounds: int | None = None
    n_gpus: int | None = None  # per process (``nGpus``)
    min_bytes: int | None = None
    max_bytes: int | None = None
    devices: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # host of each rank, in rank order
    error_column: str = "#wrong"  # "error" in layouts <= 2.11
    failed_lines: list[str] = field(default_factory=list)  # lines with FAILED (AzNHC fails on any)

    @property
    def ranks(self) -> int:
        return len(self.devices)

    @property
    def nodes(self) -> int:
        return len(set(self.hosts))

    @property
    def wrong(self) -> int:
        return sum(row.wrong for row in self.rows)

    @property
    def peak_busbw(self) -> float | None:
        """Bus bandwidth at the largest message size."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda r: r.size_bytes).busbw

    @property
    def max_size(self) -> int | None:
        return max((r.size_bytes for r in self.rows), default=None)


_RANK = re.compile(r"Rank\s+\d+\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+\s+\[[^]]*\]\s+(.+)$")
_HEADER = re.compile(r"^#\s*size\s+count\s+type\b")


def _number(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        if token.lower() in ("n/a", "-nan", "nan", "inf", "-inf"):
            return math.nan
        raise ParseError(TOOL, f"not a number in the result table: {token!r}") from None


def _wrong(token: str, column: str) -> int | None:
    if column != "#wrong" or token == "N/A":
        return None
    value = _number(token)  # %g: "1.04858e+06" is a count printed with six significant digits
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise ParseError(TOOL, f"#wrong is not a count: {token!r}")
    return int(value)


def _columns(header: str) -> list[str]:
    return header.lstrip("#").split()


def _row(tokens: list[str], columns: list[str]) -> Row:
    try:
        size, count = int(tokens[0]), int(tokens[1])
    except ValueError:
        raise ParseError(TOOL, f"size and count are not integers: {' '.join(tokens[:2])!r}") from None
    busbw = [i for i, c in enumerate(columns) if c == "busbw"]
    wrong = [i for i, c in enumerate(columns) if c in ("#wrong", "error")]
    if len(busbw) != 2 or len(wrong) != 2 or len(tokens) < wrong[1] + 1:
        raise ParseError(TOOL, f"result row does not match the header: {' '.join(tokens)!r}")
    column = columns[wrong[0]]
    o, i = busbw[0] - 2, busbw[1] - 2  # time, algbw, busbw
    return Row(size, count, tokens[2], tokens[3], _number(tokens[o]), _number(tokens[o + 1]),
               _number(tokens[o + 2]), _wrong(tokens[wrong[0]], column), _number(tokens[i]),
               _number(tokens[i + 1]), _number(tokens[i + 2]), _wrong(tokens[wrong[1]], column))


_DEFAULT = {12: _columns("size count type redop time algbw busbw #wrong time algbw busbw #wrong"),
            13: _columns("size count type redop root time algbw busbw #wrong time algbw busbw #wrong")}


def parse(text: str) -> NcclResult:
    """Parse ``all_reduce_perf`` output; ParseError when it holds no result row or a row it cannot read."""
    result = NcclResult()
    columns: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if "FAILED" in stripped:
            result.failed_lines.append(stripped)
        if stripped.startswith("#"):
            if _HEADER.match(stripped):
                columns = _columns(stripped)
                if "error" in columns:
                    result.error_column = "error"
            elif m := re.search(r"Avg bus bandwidth\s*:\s*(\S+)", stripped):
                result.avg_busbw = _number(m.group(1))
            elif m := re.search(r"Out of bounds values\s*:\s*(\d+)", stripped):
                result.out_of_bounds = int(m.group(1))
            elif m := re.search(r"nThread\s+\d+\s+nGpus\s+(\d+)\s+minBytes\s+(\d+)\s+maxBytes\s+(\d+)", stripped):
                result.n_gpus, result.min_bytes, result.max_bytes = map(int, m.groups())
            elif m := _RANK.search(stripped):
                result.hosts.append(m.group(1))
                result.devices.append(m.group(2).strip())
            continue
        tokens = stripped.split()
        if not tokens[0].isdigit() or len(tokens) < 12:
            continue  # NCCL INFO/WARN lines, MPI banners
        layout = columns or _DEFAULT.get(len(tokens))
        if layout is None:
            raise ParseError(TOOL, f"result row without a header: {stripped!r}")
        result.rows.append(_row(tokens, layout))
    if not result.rows:
        raise ParseError(TOOL, "no result rows found")
    return result
