"""Emulator timing settings and the fault-injection queue (set at start or through ``/_emulator/*``)."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

FAULT_KINDS = ("throttle", "error", "reset", "drop_response", "hold", "lro_fail", "replication_fail")


@dataclass
class EmulatorConfig:
    """``operation_delay``: seconds for gallery/image/delete/update operations; ``replication_delay``: per region
    (``region_delays`` overrides by short region name); ``retry_after``: seconds sent on operations, or None for
    the remaining time of the operation."""

    operation_delay: float = 0.5
    replication_delay: float = 2.0
    region_delays: dict[str, float] = field(default_factory=dict)
    retry_after: float | None = None
    page_size: int = 100

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown emulator setting '{key}'")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fault:
    """One injected fault. ``count`` requests (or operations) matching ``method`` and the ``path`` regex get it."""

    kind: str
    count: int = 1
    method: str | None = None
    path: str | None = None
    status: int = 500
    retry_after: float | None = None
    region: str | None = None
    code: str = "InternalServerError"
    message: str = "Injected fault."
    # hold: the request waits (outside the store lock) until released through POST /_emulator/faults/release
    released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path, re.IGNORECASE) is not None


class Faults:
    """Thread-safe queue of faults; each firing uses up one ``count``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[Fault] = []
        self.fired = 0
        self.holding = 0  # requests waiting on a "hold" fault now

    def add(self, spec: dict[str, Any]) -> Fault:
        if "released" in spec:
            raise ValueError("unknown fault field 'released'")
        fault = Fault(**spec)
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind '{fault.kind}' (one of {', '.join(FAULT_KINDS)})")
        with self._lock:
            self.items.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            for fault in self.items:
                fault.released.set()
            self.items.clear()

    def take(self, kinds: tuple[str, ...], method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.items:
                if fault.kind in kinds and fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    self.fired += 1
                    return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_spec(f) for f in self.items if f.count > 0]

    def hold(self, fault: Fault, timeout: float = 120.0) -> None:
        """Block the calling request thread until ``release()`` (or ``timeout``, so a test can never hang it)."""
        with self._lock:
            self.holding += 1
        try:
            fault.released.wait(timeout)
        finally:
            with self._lock:
                self.holding -= 1

    def release(self) -> None:
        with self._lock:
            for fault in self.items:
                fault.released.set()


def _spec(fault: Fault) -> dict[str, Any]:
    return {f.name: getattr(fault, f.name) for f in fields(fault) if f.name != "released"}
