"""HTTPS server, request routing and fault injection of the ARM emulator.

Routes live in ``builder/emulator/routes_*.py``: each module defines ``register(router: Router)``, so other
areas add endpoints (for example marketplace images) by adding a module, without editing this one.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pkgutil
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from builder.emulator.certs import ensure_certificate
from builder.emulator.config import EmulatorConfig, Faults
from builder.emulator.store import Store

CONTROL_PREFIX = "/_emulator/"


class ArmError(Exception):
    """An ARM error response: ``{"error": {"code", "message", "target"}}``."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target
        self.headers = headers or {}

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return Response(self.status, {"error": error}, dict(self.headers))


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    emulator: Emulator

    def api_version(self, accepted: frozenset[str]) -> str:
        version = self.query.get("api-version")
        if not version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if version not in accepted:
            raise ArmError(400, "NoRegisteredProviderFound",
                           f"No registered resource provider found for API version '{version}'. "
                           f"The supported api-versions are '{', '.join(sorted(accepted))}'.")
        return version


Handler = Callable[[Request, re.Match], Response]


class Router:
    """Ordered table of ``(method, path regex, handler)``; the first full match wins."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method.upper(), re.compile(pattern, re.IGNORECASE), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, re.Match] | None:
        path_known = False
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match:
                path_known = True
                if route_method == method:
                    return handler, match
        if path_known:
            raise ArmError(405, "MethodNotAllowed", f"The method '{method}' is not allowed on '{path}'.")
        return None


def discover_routes(router: Router) -> list[str]:
    """Import every ``builder.emulator.routes_*`` module and let it register its routes."""
    package = importlib.import_module("builder.emulator")
    names = sorted(i.name for i in pkgutil.iter_modules(package.__path__) if i.name.startswith("routes_"))
    for name in names:
        importlib.import_module(f"builder.emulator.{name}").register(router)
    return names


class Emulator:
    """State, settings, faults and statistics shared by all request threads."""

    def __init__(self, state_dir: Path, config: EmulatorConfig | None = None) -> None:
        self.state_dir = state_dir
        self.config = config or EmulatorConfig()
        self.faults = Faults()
        self.store = Store(state_dir)
        self.router = Router()
        self.route_modules = discover_routes(self.router)
        self.base_url = ""
        self.requests: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.stats_lock = threading.Lock()

    def count(self, method: str, path: str) -> None:
        with self.stats_lock:
            self.requests[method] += 1
            if method not in ("GET", "HEAD"):
                self.writes[f"{method} {path}"] += 1

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes) -> Response | None:
        """Answer one request; None means: drop the connection (injected reset)."""
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        control = path.startswith(CONTROL_PREFIX.rstrip("/"))
        dropped = None
        if not control:
            self.count(method, path)
            held = self.faults.take(("hold",), method, path)
            if held is not None:  # a delayed request: it waits here, outside the store lock, until released
                self.faults.hold(held)
            fault = self.faults.take(("throttle", "error", "reset"), method, path)
            if fault is not None:
                if fault.kind == "reset":
                    return None
                status = 429 if fault.kind == "throttle" else fault.status
                code = "TooManyRequests" if fault.kind == "throttle" else fault.code
                extra = {"Retry-After": _seconds(fault.retry_after)} if fault.retry_after is not None else {}
                return ArmError(status, code, fault.message, headers=extra).response()
            if not headers.get("authorization", "").startswith("Bearer "):
                return ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header "
                                "is missing.").response()
            # a lost response: the request is carried out, then the connection drops before the answer
            dropped = self.faults.take(("drop_response",), method, path)
        try:
            body = json.loads(raw_body) if raw_body.strip() else None
        except ValueError:
            return ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                            "deserialized.").response()
        try:
            found = self.router.resolve(method, path)
            if found is None:
                raise ArmError(404, "NotFound" if control else "InvalidResourceType",
                               f"No route for '{method} {path}'.")
            handler, match = found
            with self.store.lock:
                response = handler(Request(method, path, query, headers, body, self), match)
        except ArmError as exc:
            response = exc.response()
        return None if dropped is not None else response


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "builder-arm-emulator/1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one write (flushed after each request)

    def log_message(self, format: str, *args: Any) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.emulator.handle(self.command, self.path, headers, raw)
        if response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = b"" if response.body is None or self.command == "HEAD" else json.dumps(response.body).encode()
        self.send_response(response.status)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", f"{time.time_ns():x}")
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_POST = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class EmulatorServer:
    """The emulator listening on ``127.0.0.1:port`` (0 = a free port) with its own certificate."""

    def __init__(self, state_dir: Path, port: int = 0, config: EmulatorConfig | None = None,
                 verbose: bool = False) -> None:
        self.emulator = Emulator(state_dir, config)
        self.cert, key = ensure_certificate(state_dir)
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.emulator = self.emulator
        self.httpd.verbose = verbose
        self.port = self.httpd.server_address[1]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.emulator.base_url = self.base_url
        self._thread: threading.Thread | None = None

    def ready_line(self) -> str:
        return json.dumps({"base_url": self.base_url, "cert": str(self.cert)})

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="arm-emulator",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        if self._thread is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
        self._thread = None
