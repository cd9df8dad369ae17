"""Serving sandbox apps over real HTTPS on loopback, with a CA generated for the run."""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from connectors.sandbox.app import SandboxApp

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Tls:
    """A CA (whose PEM clients trust through ``ca_path``) and the server's certificate."""

    ca_path: Path
    server_pem_path: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context presenting the loopback certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.server_pem_path))
        return context


def make_tls(directory: Path, hosts: tuple[str, ...] = LOOPBACK_NAMES) -> Tls:
    """Generate a CA and a certificate for ``hosts``; write their PEMs into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="jira-crm-sync sandbox")
    cert = ca.issue_cert(*hosts)
    ca_path = directory / "ca.pem"
    server_pem = directory / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    server_pem.chmod(0o600)
    return Tls(ca_path=ca_path, server_pem_path=server_pem)


class _QuietHandler(WSGIRequestHandler):
    """Request handler that logs at debug level instead of printing every request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug(message, *args)


class HttpsServer:
    """One app on a threaded HTTPS server (werkzeug's, as moto's ThreadedMotoServer uses)."""

    def __init__(self, app: SandboxApp, tls: Tls, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(
            host,
            port,
            app.wsgi,
            threaded=True,
            request_handler=_QuietHandler,
            ssl_context=tls.server_context(),
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:8443``."""
        address = self._server.server_address[0]
        host = address.decode() if isinstance(address, bytes) else str(address)
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    def start(self) -> HttpsServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
