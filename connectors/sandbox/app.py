"""One emulated API: routes of a backend, wrapped with stats, faults, latency and the
control API, and mounted in-process (``responses``) or as WSGI (a real HTTPS server).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote, urlsplit

from connectors.sandbox.faults import (
    AFTER_KINDS,
    CONTENT_KINDS,
    Fault,
    FaultInjector,
    FaultSpecError,
)
from connectors.sandbox.http import (
    DropConnection,
    Route,
    Router,
    SandboxRequest,
    SandboxResponse,
)

if TYPE_CHECKING:
    import requests
    import responses as responses_lib

CONTROL_PREFIX = "/_sandbox"


class Backend(Protocol):
    """What an API emulator provides to :class:`SandboxApp`."""

    router: Router

    def reset(self) -> None:
        """Restore the seeded world."""

    def error(self, status: int, message: str, code: str | None = None) -> SandboxResponse:
        """A response in this vendor's error shape."""

    def expire_sessions(self) -> SandboxResponse:
        """Invalidate sessions as the vendor does; return the 401 the current call gets."""

    def before_call(self, request: SandboxRequest, write: bool) -> SandboxResponse | None:
        """Per-call vendor behaviour (auth, API budget); a response stops the call."""

    def after_call(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """Decorate a response (e.g. limit headers)."""


class Stats:
    """Calls per endpoint template and method, reads and writes (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_endpoint: Counter[str] = Counter()
        self.reads = 0
        self.writes = 0

    def count(self, key: str, write: bool) -> None:
        """Count one call."""
        with self._lock:
            self.by_endpoint[key] += 1
            if write:
                self.writes += 1
            else:
                self.reads += 1

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self.by_endpoint.clear()
            self.reads = self.writes = 0

    def snapshot(self) -> dict[str, Any]:
        """The document ``GET /_sandbox/stats`` answers."""
        with self._lock:
            return {
                "total": self.reads + self.writes,
                "reads": self.reads,
                "writes": self.writes,
                "by_endpoint": dict(sorted(self.by_endpoint.items())),
            }


class SandboxApp:
    """A backend served with stats, faults, latency and the ``/_sandbox/`` control API."""

    def __init__(self, backend: Backend, latency_ms: int = 0, seed: int = 0) -> None:
        self.backend = backend
        self.latency_ms = latency_ms
        self.stats = Stats()
        self.faults = FaultInjector(seed)
        # One lock per API: the backend models are plain Python structures.
        self.lock = threading.RLock()
        self.sleep: Callable[[float], None] = time.sleep

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request; raises DropConnection for an injected dropped connection."""
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            return self._control(request)
        refused = self._too_long(request)
        if refused is not None:
            return refused
        route, params, path_known = self.backend.router.match(request.method, request.path)
        if route is None:
            if path_known:
                return self.backend.error(405, f"Method {request.method} is not allowed here.")
            return self.backend.error(404, f"No resource at {unquote(request.path)}.", "NOT_FOUND")
        request.path_params = {key: unquote(value) for key, value in params.items()}
        write = route.writes(request)
        self.stats.count(route.stats_key, write)
        if self.latency_ms:
            self.sleep(self.latency_ms / 1000.0)
        fault = self.faults.draw(request.method, route.stats_key)
        if fault is not None and fault.kind not in AFTER_KINDS:
            injected = self._apply_fault(fault)
            if injected is not None:
                return injected
        response = self._serve(route, request, write)
        if fault is not None and fault.kind == "drop_after":
            raise DropConnection("connection dropped after the call was applied")
        if fault is not None and fault.kind in CONTENT_KINDS:
            # The call was served (a write applied); a proxy or a cut transfer garbles it.
            return fault.garble(response)
        return response

    def _too_long(self, request: SandboxRequest) -> SandboxResponse | None:
        """The vendor's 414 (URI) or 431 (URI and headers) past its limits, before routing,
        as the vendor's edge answers; None within them. A backend states its limits as
        ``max_uri_bytes`` and ``max_head_bytes`` (the server caps every request line at
        64 KiB besides, see ``server.py``)."""
        max_uri = getattr(self.backend, "max_uri_bytes", None)
        if max_uri is not None and request.uri_length > max_uri:
            return self.backend.error(
                414,
                f"The request URI is {request.uri_length} bytes; the limit is {max_uri}.",
                "URI_TOO_LONG",
            )
        max_head = getattr(self.backend, "max_head_bytes", None)
        if max_head is not None and request.head_length > max_head:
            return self.backend.error(
                431,
                f"The request URI and headers are {request.head_length} bytes; the limit is "
                f"{max_head}.",
                "REQUEST_HEADER_FIELDS_TOO_LARGE",
            )
        return None

    def _serve(self, route: Route, request: SandboxRequest, write: bool) -> SandboxResponse:
        with self.lock:
            stop = self.backend.before_call(request, write)
            if stop is not None:
                response = stop
            else:
                try:
                    response = route.handler(request)
                except json.JSONDecodeError as exc:
                    response = self.backend.error(
                        400, f"Malformed JSON body: {exc.msg}.", "JSON_PARSER_ERROR"
                    )
            self.backend.after_call(request, response)
        return response

    def _apply_fault(self, fault: Fault) -> SandboxResponse | None:
        kind = fault.kind
        if kind in ("slow", "timeout"):
            self.sleep(fault.delay_ms / 1000.0)
            return None if kind == "slow" else self.backend.error(504, "Gateway timeout.")
        if kind == "drop":
            raise DropConnection("connection dropped by fault injection")
        if kind == "expired_session":
            with self.lock:
                return self.backend.expire_sessions()
        status = int(kind)
        response = self.backend.error(status, _FAULT_MESSAGES.get(status, "Server error."))
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    def _control(self, request: SandboxRequest) -> SandboxResponse:
        path = request.path[len(CONTROL_PREFIX) :].rstrip("/")
        method = request.method
        if path == "/stats" and method == "GET":
            return SandboxResponse.json(self.stats.snapshot())
        if path == "/stats/reset" and method == "POST":
            self.stats.reset()
            return SandboxResponse.json(self.stats.snapshot())
        if path == "/faults" and method == "GET":
            return SandboxResponse.json(
                {"faults": self.faults.active(), "fired": self.faults.fired}
            )
        if path == "/faults" and method == "DELETE":
            self.faults.clear()
            return SandboxResponse.json({"faults": []})
        if path == "/faults" and method == "POST":
            try:
                payload = request.json()
                items = payload if isinstance(payload, list) else [payload]
                faults = [Fault.from_json(item) for item in items]
            except (ValueError, FaultSpecError) as exc:
                return SandboxResponse.json({"error": str(exc)}, status=400)
            for fault in faults:
                self.faults.add(fault)
            return SandboxResponse.json({"faults": self.faults.active()}, status=201)
        if path == "/reset" and method == "POST":
            with self.lock:
                self.backend.reset()
            self.faults.clear()
            self.stats.reset()
            return SandboxResponse.json({"reset": True})
        if path == "/latency" and method == "POST":
            payload = request.json() or {}
            latency = payload.get("latency_ms") if isinstance(payload, dict) else None
            if not isinstance(latency, int) or latency < 0:
                return SandboxResponse.json({"error": "'latency_ms' must be >= 0"}, status=400)
            self.latency_ms = latency
            return SandboxResponse.json({"latency_ms": latency})
        own = getattr(self.backend, "control", None)
        if own is not None:
            with self.lock:
                answer: SandboxResponse | None = own(request, path)
            if answer is not None:
                return answer
        return SandboxResponse.json(
            {"error": f"unknown control endpoint {method} {request.path}"}, status=404
        )

    # -- WSGI (real HTTP server) ------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI entry point, served by the threaded HTTPS server in ``server.py``."""
        # Route on the path as sent (still percent-encoded) so that a parameter holding
        # "%2F" stays one segment and each parameter is decoded exactly once.
        request_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        if request_uri:
            path = urlsplit(request_uri).path or "/"
        else:
            path = quote(
                (environ.get("PATH_INFO") or "/").encode("latin-1"), safe="/:@!$&'()*+,;=-._~"
            )
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-"): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        request = SandboxRequest.build(
            environ["REQUEST_METHOD"],
            path,
            environ.get("QUERY_STRING", ""),
            headers,
            body,
            base_url=f"{environ.get('wsgi.url_scheme', 'https')}://{host}",
        )
        try:
            response = self.handle(request)
        except DropConnection:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            start_response("500 Dropped", [("Connection", "close")])
            return [b""]
        status_line = f"{response.status} {_REASONS.get(response.status, 'Status')}"
        header_list = list(response.headers.items())
        header_list.append(("Content-Length", str(len(response.body))))
        start_response(status_line, header_list)
        return [response.body]

    # -- in-process (responses) -------------------------------------------------------------

    def mount(self, mock: responses_lib.RequestsMock, base_url: str) -> None:
        """Serve this app at ``base_url`` inside a ``responses`` mock."""
        base = base_url.rstrip("/")
        pattern = re.compile(re.escape(base) + r"(?:[/?].*)?$")

        def callback(prepared: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
            parts = urlsplit(prepared.url or "")
            raw_body = prepared.body
            if isinstance(raw_body, str):
                body = raw_body.encode("utf-8")
            elif raw_body is None:
                body = b""
            elif isinstance(raw_body, bytes):
                body = raw_body
            else:  # a file-like or generator body
                body = b"".join(
                    chunk if isinstance(chunk, bytes) else str(chunk).encode() for chunk in raw_body
                )
            request = SandboxRequest.build(
                prepared.method or "GET",
                parts.path or "/",
                parts.query,
                dict(prepared.headers),
                body,
                base_url=base,
            )
            try:
                response = self.handle(request)
            except DropConnection as exc:
                import requests as requests_lib

                raise requests_lib.exceptions.ConnectionError(
                    f"Connection aborted: {exc}"
                ) from None
            return response.status, response.headers, response.body

        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            mock.add_callback(method, pattern, callback=callback)


_FAULT_MESSAGES = {
    429: "Rate limit exceeded.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service unavailable.",
}

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    300: "Multiple Choices",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload Too Large",
    414: "URI Too Long",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
