"""``nvbandwidth -t host_to_device_memcpy_ce device_to_host_memcpy_ce device_to_device_memcpy_read_ce``.

Each test prints ``Running <test>.``, a title line, a column header of GPU indices and one row per source
(``N/A`` on the diagonal), then ``SUM <test> <GB/s>`` (NVIDIA/nvbandwidth#15 v0.2, #50 v0.8).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from builder.verify.parsers.errors import ParseError

TOOL = "nvbandwidth"


@dataclass
class Matrix:
    test: str
    title: str = ""
    columns: list[int] = field(default_factory=list)
    rows: dict[int, list[float]] = field(default_factory=dict)  # row index -> GB/s per column (NaN: N/A)
    total: float | None = None

    def cells(self) -> list[tuple[int, int, float]]:
        """(row, column, GB/s) for every measured cell."""
        return [(r, self.columns[i], v) for r, values in self.rows.items() for i, v in enumerate(values)
                if not math.isnan(v)]


def _value(token: str) -> float:
    if token == "N/A":
        return math.nan
    try:
        return float(token)
    except ValueError:
        raise ParseError(TOOL, f"not a bandwidth: {token!r}") from None


def parse(text: str) -> dict[str, Matrix]:
    """Matrices by test name; ParseError when no test printed a matrix."""
    tests: dict[str, Matrix] = {}
    current: Matrix | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if m := re.match(r"^Running (\w+)\.?$", stripped):
            current = tests[m.group(1)] = Matrix(m.group(1))
        elif current is None or not stripped:
            continue
        elif m := re.match(r"^SUM (\w+) (\S+)$", stripped):
            if m.group(1) in tests:
                tests[m.group(1)].total = _value(m.group(2))
            current = None
        elif "bandwidth" in stripped and not current.title:
            current.title = stripped
        elif not current.columns and re.fullmatch(r"\d+(\s+\d+)*", stripped):
            current.columns = [int(t) for t in stripped.split()]
        elif current.columns and re.match(r"^\d+\s", stripped):
            tokens = stripped.split()
            if len(tokens) != len(current.columns) + 1:
                raise ParseError(TOOL, f"{current.test}: row has {len(tokens) - 1} values for "
                                       f"{len(current.columns)} columns: {stripped!r}")
            current.rows[int(tokens[0])] = [_value(t) for t in tokens[1:]]
    found = {name: m for name, m in tests.items() if m.rows}
    if not found:
        raise ParseError(TOOL, "no bandwidth matrix found")
    return found
