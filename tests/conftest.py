"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.server import HttpsServer, Tls, make_tls


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A CA and loopback certificate for the test session."""
    return make_tls(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def serve(tls: Tls) -> Iterator[Callable[[SandboxApp], str]]:
    """Serve apps over real HTTPS for one test: ``serve(app) -> base URL``."""
    servers: list[HttpsServer] = []

    def start(app: SandboxApp) -> str:
        server = HttpsServer(app, tls).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def _no_ambient_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine sets REQUESTS_CA_BUNDLE, which `requests` lets override a session's
    own ``verify``; tests state their CA explicitly (connectors handle the override)."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
