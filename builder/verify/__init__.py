"""Verification suites (pytest-testinfra) with expectations from the catalog.

``run_suite(catalog, image, connection=..., host=..., suite=..., select=...) -> VerifyResult``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from builder.verify.results import CheckResult, VerifyResult
    from builder.verify.runner import run_suite

__all__ = ["CheckResult", "VerifyResult", "run_suite"]


def __getattr__(name: str) -> Any:
    if name == "run_suite":
        from builder.verify.runner import run_suite

        return run_suite
    if name in ("VerifyResult", "CheckResult"):
        from builder.verify import results

        return getattr(results, name)
    raise AttributeError(name)
