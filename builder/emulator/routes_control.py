"""Test-control routes under ``/_emulator/``: settings, fault injection (and releasing held requests), request
statistics, reset."""

from __future__ import annotations

import re

from builder.emulator.server import ArmError, Request, Response, Router


def _dict(req: Request) -> dict:
    if not isinstance(req.body, dict):
        raise ArmError(400, "InvalidRequestContent", "expected a JSON object")
    return req.body


def get_config(req: Request, m: re.Match) -> Response:
    return Response(200, req.emulator.config.as_dict())


def put_config(req: Request, m: re.Match) -> Response:
    try:
        req.emulator.config.update(_dict(req))
    except ValueError as exc:
        raise ArmError(400, "InvalidParameter", str(exc)) from exc
    return Response(200, req.emulator.config.as_dict())


def add_fault(req: Request, m: re.Match) -> Response:
    try:
        req.emulator.faults.add(_dict(req))
    except (TypeError, ValueError) as exc:
        raise ArmError(400, "InvalidParameter", str(exc)) from exc
    return Response(201, {"pending": req.emulator.faults.pending()})


def list_faults(req: Request, m: re.Match) -> Response:
    return Response(200, {"pending": req.emulator.faults.pending(), "fired": req.emulator.faults.fired})


def clear_faults(req: Request, m: re.Match) -> Response:
    req.emulator.faults.clear()
    return Response(204)


def release_faults(req: Request, m: re.Match) -> Response:
    req.emulator.faults.release()
    return Response(200, {"released": True})


def stats(req: Request, m: re.Match) -> Response:
    with req.emulator.stats_lock:
        counts = dict(req.emulator.requests)
        writes = dict(req.emulator.writes)
    return Response(200, {"requests": sum(counts.values()), "by_method": counts, "writes": writes,
                          "faults_fired": req.emulator.faults.fired,
                          "holding": req.emulator.faults.holding, "routes": req.emulator.route_modules})


def register(router: Router) -> None:
    router.add("GET", r"/_emulator/config", get_config)
    router.add("PUT", r"/_emulator/config", put_config)
    router.add("POST", r"/_emulator/faults", add_fault)
    router.add("GET", r"/_emulator/faults", list_faults)
    router.add("DELETE", r"/_emulator/faults", clear_faults)
    router.add("POST", r"/_emulator/faults/release", release_faults)
    router.add("GET", r"/_emulator/stats", stats)
