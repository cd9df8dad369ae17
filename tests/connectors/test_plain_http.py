"""Credentials never travel over plain http://, whoever points there (issue 13, item 8).

The config takes https:// URLs only (tests/sync/test_config_guards.py). Here the https://
site itself redirects to plain http:// (a 307 makes a client resend the body, a Salesforce
password login included): the real `jira` and simple-salesforce clients, through our
connectors, must send nothing there and stop with a config error naming the cause.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from connectors.exceptions import ConfigError
from connectors.jira.connector import open_jira
from connectors.jira.settings import JiraSettings
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.settings import SalesforceSettings
from connectors.sandbox.server import Tls
from tests.sync.test_config_guards import plain_listener


@contextmanager
def redirecting_to(tls: Tls, plain_port: int) -> Iterator[str]:
    """An HTTPS server on loopback answering every request with a 307 to plain http://."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{plain_port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    server.socket = tls.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_jira_redirect_to_http_sends_nothing_there(tls: Tls) -> None:
    with plain_listener() as (port, received), redirecting_to(tls, port) as url:
        settings = JiraSettings(
            url=url,
            email="ops@example.com",
            api_token="jira-token-not-for-http",
            ca_bundle=str(tls.ca_path),
            projects=("APOLLO",),
            max_retries=0,
        )
        with pytest.raises(ConfigError, match="plain http://"):
            open_jira(settings).connect()
    assert received == [], received


def test_a_salesforce_login_redirected_to_http_sends_nothing_there(tls: Tls) -> None:
    with plain_listener() as (port, received), redirecting_to(tls, port) as url:
        settings = SalesforceSettings(
            auth="oauth_password",
            login_url=url,
            username="sync@example.com",
            password="salesforce-password-not-for-http",
            consumer_key="key",
            consumer_secret="secret",
            ca_bundle=str(tls.ca_path),
        )
        with pytest.raises(ConfigError, match="plain http://"):
            SalesforceConnector(settings).connect()
    assert received == [], received
