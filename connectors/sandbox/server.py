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


#: The longest request line (method, URI, version) served; a longer one is answered 414.
MAX_REQUEST_LINE = 65536
#: How much of an over-long request is read and dropped before the 414, so that closing
#: the socket does not reset the connection (and lose the answer) with bytes unread.
DRAIN_LIMIT = 16 * 2**20


class _QuietHandler(WSGIRequestHandler):
    """Request handler that logs at debug level instead of printing every request, and
    answers an over-long request line with the app's 414 instead of dropping it."""

    app: SandboxApp | None = None

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", "") or ""
        log.debug("%s %s -> %s", getattr(self, "command", ""), path.split("?", 1)[0], code)

    def handle_one_request(self) -> None:
        """http.server's loop body with our request-line limit (its own 414 is not sent
        before the rest of the request is read, so clients saw a reset connection)."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self._uri_too_long()
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501, f"Unsupported method ({self.command!r})")
                return
            method()
            self.wfile.flush()
        except TimeoutError as exc:
            self.log_error("Request timed out: %r", exc)
            self.close_connection = True

    def _uri_too_long(self) -> None:
        self.requestline, self.request_version, self.command = "", "HTTP/1.1", ""
        budget = DRAIN_LIMIT
        line = self.raw_requestline
        while not line.endswith(b"\n") and budget > 0:  # the rest of the request line
            line = self.rfile.readline(min(budget, 65536))
            if not line:
                break
            budget -= len(line)
        length = 0
        while budget > 0:  # the headers, up to the blank line
            header = self.rfile.readline(min(budget, 65536))
            budget -= len(header)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        if 0 < length <= budget:
            self.rfile.read(length)
        message = f"The request URI is longer than {MAX_REQUEST_LINE} bytes."
        if self.app is not None:
            answer = self.app.backend.error(414, message, "URI_TOO_LONG")
            body, headers = answer.body, dict(answer.headers)
        else:
            body, headers = message.encode(), {"Content-Type": "text/plain"}
        self.close_connection = True
        self.send_response(414, "URI Too Long")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug(message, *args)


class HttpsServer:
    """One app on a threaded HTTPS server (werkzeug's, as moto's ThreadedMotoServer uses)."""

    def __init__(self, app: SandboxApp, tls: Tls, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        # One handler class per server, so an over-long request line gets this app's 414.
        handler = type("SandboxRequestHandler", (_QuietHandler,), {"app": app})
        self._server: BaseWSGIServer = make_server(
            host,
            port,
            app.wsgi,
            threaded=True,
            request_handler=handler,
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
