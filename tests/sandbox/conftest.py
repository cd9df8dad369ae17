"""The sandbox suites run over both transports: ``transport`` gives each test the emulator
in-process (the app answering inside ``responses``, no socket: moto's backend-without-HTTP
mode) and over real HTTPS on loopback (werkzeug's threaded server, TLS with a CA made for
the session, urllib3's own sockets and parsing).

Tests keep the vendor URLs they always used (``https://sandbox.atlassian.net``,
``https://login.salesforce.com``...), so the unmodified clients behave exactly as they
would against the vendor: over HTTPS those names resolve to the loopback server that
serves the app (a ``--resolve`` style seam in urllib3's ``create_connection``, nothing
else changes), its certificate names them, and while mounted ``REQUESTS_CA_BUNDLE``
points every ``requests`` session at the session's CA (a client's own ``verify`` is not
needed, and one that sets it to the CA works as well).

The HTTPS servers are started once per session and handed the app of each test: starting
and stopping a server per test costs up to half a second (``serve_forever`` polls).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses
import urllib3.util.connection

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.http import Router, SandboxRequest, SandboxResponse
from connectors.sandbox.server import LOOPBACK_NAMES, HttpsServer, Tls, make_tls

#: Every host name a sandbox test mounts an app at (the HTTPS certificate names them).
HOSTS = (
    "sandbox.atlassian.net",
    "sandbox.my.salesforce.com",
    "login.salesforce.com",
    "test.salesforce.com",
    "echo.test",
)
TRANSPORTS = ("in-process", "https")


class _Idle:
    """The backend of a server slot no test is using: every call is refused."""

    router = Router()

    def reset(self) -> None:
        return None

    def error(self, status: int, message: str, code: str | None = None) -> SandboxResponse:
        return SandboxResponse.json({"error": message}, status=status)

    def expire_sessions(self) -> SandboxResponse:
        return self.error(401, "no app is mounted here")

    def before_call(self, request: SandboxRequest, write: bool) -> SandboxResponse | None:
        return self.error(503, "no app is mounted here")

    def after_call(self, request: SandboxRequest, response: SandboxResponse) -> None:
        return None


class _Slot(SandboxApp):
    """An app standing in, on one long-lived HTTPS server, for whichever app a test mounts
    (its WSGI entry and its backend's error shape, which the server's 414 uses)."""

    def __init__(self) -> None:
        super().__init__(_Idle())
        self.target: SandboxApp | None = None

    def use(self, app: SandboxApp | None) -> None:
        self.target = app
        self.backend = app.backend if app is not None else _Idle()

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = self.target
        if target is None:
            return super().wsgi(environ, start_response)
        return target.wsgi(environ, start_response)


@dataclass
class _Resolver:
    """Host name -> loopback port, consulted by urllib3 before it opens a socket."""

    ports: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = urllib3.util.connection.create_connection

        def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            host, port = address
            with self._lock:
                mapped = self.ports.get(host.lower())
            return original(
                ("127.0.0.1", mapped) if mapped is not None else (host, port), *args, **kwargs
            )

        monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)


class HttpsPool:
    """Long-lived HTTPS servers on loopback, each lent to one mounted app at a time."""

    def __init__(self, tls: Tls) -> None:
        self.tls = tls
        self._servers: list[tuple[HttpsServer, _Slot]] = []
        self._busy: set[int] = set()

    def lend(self, app: SandboxApp) -> tuple[int, int]:
        """A free server now serving ``app``: (slot index, port)."""
        free = [index for index in range(len(self._servers)) if index not in self._busy]
        if free:
            index = free[0]
        else:
            fresh = _Slot()
            self._servers.append((HttpsServer(fresh, self.tls).start(), fresh))
            index = len(self._servers) - 1
        server, slot = self._servers[index]
        slot.use(app)
        self._busy.add(index)
        return index, server.port

    def give_back(self, index: int) -> None:
        self._servers[index][1].use(None)
        self._busy.discard(index)

    def close(self) -> None:
        for server, _slot in self._servers:
            server.stop()
        self._servers.clear()


@dataclass
class Transport:
    """How a test reaches the emulators: ``in-process`` or ``https``."""

    name: str
    pool: HttpsPool | None = None
    resolver: _Resolver | None = None

    @property
    def https(self) -> bool:
        return self.name == "https"

    @property
    def ca_path(self) -> Path | None:
        """The CA a client must trust (None in-process)."""
        return self.pool.tls.ca_path if self.pool is not None else None

    @contextmanager
    def mount(self, app: SandboxApp, *base_urls: str) -> Iterator[None]:
        """Answer ``app`` at every one of ``base_urls`` (``https://host``) for the body."""
        hosts = []
        for url in base_urls:
            parts = urlsplit(url)
            assert parts.scheme == "https" and parts.port is None and parts.path in ("", "/"), url
            assert parts.hostname in HOSTS, f"{parts.hostname} is not in {HOSTS}"
            hosts.append(parts.hostname)
        if not self.https:
            with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
                for url in base_urls:
                    app.mount(mock, url)
                yield
            return
        assert self.pool is not None and self.resolver is not None
        index, port = self.pool.lend(app)
        before = dict(self.resolver.ports)
        self.resolver.ports.update(dict.fromkeys(hosts, port))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = str(self.ca_path)
        try:
            yield
        finally:
            if bundle is None:
                os.environ.pop("REQUESTS_CA_BUNDLE", None)
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = bundle
            self.resolver.ports.clear()
            self.resolver.ports.update(before)
            self.pool.give_back(index)


@pytest.fixture(scope="session")
def https_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsPool]:
    tls = make_tls(tmp_path_factory.mktemp("sandbox-tls"), (*HOSTS, *LOOPBACK_NAMES))
    pool = HttpsPool(tls)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(params=TRANSPORTS)
def transport(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Transport]:
    """Each test that takes it runs in-process and over HTTPS on loopback."""
    if request.param == "in-process":
        yield Transport("in-process")
        return
    pool: HttpsPool = request.getfixturevalue("https_pool")
    resolver = _Resolver()
    resolver.install(monkeypatch)
    yield Transport("https", pool, resolver)
