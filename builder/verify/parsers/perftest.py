"""perftest ``ib_write_bw`` client output: the result table.

Header ``#bytes #iterations BW peak[Gb/sec] BW average[Gb/sec] MsgRate[Mpps]`` (``[MB/sec]`` without
``--report_gbits``), one row per message size (linux-rdma/perftest#273, #234).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.verify.parsers.errors import ParseError

TOOL = "ib_write_bw"
_HEADER = re.compile(r"#bytes\s+#iterations\s+BW peak\[(\w+)/sec\]\s+BW average\[(\w+)/sec\]")


@dataclass(frozen=True)
class BwRow:
    size_bytes: int
    iterations: int
    peak: float
    average: float
    unit: str  # "Gb" (--report_gbits) or "MB"

    @property
    def average_gbps(self) -> float:
        """Average bandwidth in Gb/s (MB/s rows converted: 1 MB/s = 0.008 Gb/s)."""
        return self.average if self.unit == "Gb" else self.average * 8 / 1000


def parse(text: str) -> list[BwRow]:
    """Rows of the result table; ParseError when there is no table or a row is unreadable."""
    unit = None
    rows: list[BwRow] = []
    for line in text.splitlines():
        if m := _HEADER.search(line):
            unit = m.group(2)
            continue
        tokens = line.split()
        if unit is None or len(tokens) < 4 or not tokens[0].isdigit():
            continue
        try:
            rows.append(BwRow(int(tokens[0]), int(tokens[1]), float(tokens[2]), float(tokens[3]), unit))
        except ValueError:
            raise ParseError(TOOL, f"unreadable result row: {line.strip()!r}") from None
    if not rows:
        raise ParseError(TOOL, "no result table found")
    return rows
