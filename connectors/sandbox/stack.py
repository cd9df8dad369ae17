"""Both emulators together: one world, served in-process or over HTTPS on loopback."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import responses

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.jira.fields import LOCALES
from connectors.sandbox.jira.models import JiraBackend
from connectors.sandbox.salesforce.models import DEFAULT_REFRESH_TOKEN, SalesforceBackend
from connectors.sandbox.server import HttpsServer, Tls, make_tls
from connectors.sandbox.world import World, generate_world

#: Base URLs of the in-process mount (never resolved: ``responses`` answers them).
IN_PROCESS_JIRA_URL = "https://sandbox.atlassian.net"
IN_PROCESS_SALESFORCE_URL = "https://sandbox.my.salesforce.com"
SALESFORCE_LOGIN_URLS = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True)
class Credentials:
    """What the sandbox accepts; fresh random secrets unless given."""

    jira_email: str
    jira_api_token: str
    jira_pat: str
    salesforce_username: str
    salesforce_password: str
    salesforce_security_token: str
    salesforce_consumer_key: str
    salesforce_consumer_secret: str
    salesforce_access_token: str
    #: Server/Data Center's Basic sign-in (user name and password), for clients that only
    #: do Basic (singer taps, curl -u); Cloud's Basic is email + API token instead.
    jira_username: str = "sandbox"
    jira_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    #: For clients that log in with the refresh_token grant (singer taps, airbyte).
    salesforce_refresh_token: str = DEFAULT_REFRESH_TOKEN

    @classmethod
    def generate(cls) -> Credentials:
        """New random secrets for one sandbox run."""
        return cls(
            jira_email="sandbox@example.com",
            jira_api_token=secrets.token_urlsafe(18),
            jira_pat=secrets.token_urlsafe(24),
            salesforce_username="sandbox@example.com",
            salesforce_password=secrets.token_urlsafe(12),
            salesforce_security_token=secrets.token_urlsafe(9),
            salesforce_consumer_key="3MVG9sandbox." + secrets.token_urlsafe(24),
            salesforce_consumer_secret=secrets.token_hex(16),
            salesforce_access_token="00DSANDBOX!" + secrets.token_urlsafe(48),
            salesforce_refresh_token="5Aep861" + secrets.token_urlsafe(60),
        )


@dataclass(frozen=True)
class Endpoints:
    """Where the two APIs answer, and the CA that clients must trust (None in-process)."""

    jira_url: str
    salesforce_url: str
    ca_bundle: Path | None


class Sandbox:
    """A seeded world behind an emulated Jira and an emulated Salesforce."""

    def __init__(
        self,
        issues: int = 500,
        accounts: int = 100,
        seed: int = 1,
        jira_mode: str = "cloud",
        latency_ms: int = 0,
        anchor: datetime | None = None,
        credentials: Credentials | None = None,
        jira_time_zone: str = "Asia/Shanghai",
        daily_api_limit: int = 100_000,
        locale: str = "en",
    ) -> None:
        if jira_mode not in ("cloud", "server"):
            raise ValueError("jira_mode must be 'cloud' or 'server'")
        if locale not in LOCALES:
            raise ValueError(f"locale must be one of {', '.join(LOCALES)}")
        self.seed = seed
        self.jira_mode = jira_mode
        #: The Jira site's language (field names; the world itself is the seed's).
        self.locale = locale
        self.credentials = credentials or Credentials.generate()
        self.world: World = generate_world(issues, accounts, seed, anchor)
        c = self.credentials
        self.jira = JiraBackend(
            self.world,
            deployment=jira_mode,
            email=c.jira_email,
            api_token=c.jira_api_token,
            personal_access_token=c.jira_pat,
            username=c.jira_username,
            password=c.jira_password,
            time_zone=jira_time_zone,
            locale=locale,
        )
        self.salesforce = SalesforceBackend(
            self.world,
            access_token=c.salesforce_access_token,
            username=c.salesforce_username,
            password=c.salesforce_password,
            security_token=c.salesforce_security_token,
            consumer_key=c.salesforce_consumer_key,
            consumer_secret=c.salesforce_consumer_secret,
            daily_api_limit=daily_api_limit,
            refresh_token=c.salesforce_refresh_token,
        )
        self.jira_app = SandboxApp(self.jira, latency_ms=latency_ms, seed=seed)
        self.salesforce_app = SandboxApp(self.salesforce, latency_ms=latency_ms, seed=seed + 1)
        self._servers: list[HttpsServer] = []
        self.endpoints: Endpoints | None = None

    # -- mounting ---------------------------------------------------------------------------

    @contextmanager
    def in_process(self, mock: responses.RequestsMock | None = None) -> Iterator[Endpoints]:
        """Answer the sandbox URLs inside ``responses`` (a new mock unless one is given)."""
        own = mock is None
        active = mock or responses.RequestsMock(assert_all_requests_are_fired=False)
        self.salesforce.instance_url = IN_PROCESS_SALESFORCE_URL
        self.jira_app.mount(active, IN_PROCESS_JIRA_URL)
        self.salesforce_app.mount(active, IN_PROCESS_SALESFORCE_URL)
        for login_url in SALESFORCE_LOGIN_URLS:
            self.salesforce_app.mount(active, login_url)
        endpoints = Endpoints(IN_PROCESS_JIRA_URL, IN_PROCESS_SALESFORCE_URL, None)
        if own:
            with active:
                yield endpoints
        else:
            yield endpoints

    def serve(
        self,
        tls_dir: Path,
        host: str = "127.0.0.1",
        jira_port: int = 0,
        salesforce_port: int = 0,
        tls: Tls | None = None,
    ) -> Endpoints:
        """Start both HTTPS servers on loopback; :meth:`stop` ends them."""
        tls = tls or make_tls(tls_dir)
        jira_server = HttpsServer(self.jira_app, tls, host, jira_port).start()
        self._servers.append(jira_server)
        salesforce_server = HttpsServer(self.salesforce_app, tls, host, salesforce_port).start()
        self._servers.append(salesforce_server)
        self.salesforce.instance_url = salesforce_server.url
        self.endpoints = Endpoints(jira_server.url, salesforce_server.url, tls.ca_path)
        return self.endpoints

    def stop(self) -> None:
        """Stop the HTTPS servers, if any."""
        while self._servers:
            self._servers.pop().stop()

    # -- what the `sandbox` command prints and writes ---------------------------------------

    def ready_document(self) -> dict[str, Any]:
        """The one JSON line ``jira-crm-sync sandbox`` prints when ready (SPEC section 8).

        ``jira_token`` is what the product signs in with (Cloud's API token, Server's
        personal access token); ``jira_username`` and ``jira_password`` are the Basic
        credentials the site takes, for clients that only do Basic: on Cloud the email and
        API token (Atlassian's Basic auth), on Server/Data Center a user name and password.
        """
        if self.endpoints is None:
            raise RuntimeError("the sandbox is not serving")
        c = self.credentials
        cloud = self.jira_mode == "cloud"
        return {
            "jira_url": self.endpoints.jira_url,
            "jira_email": c.jira_email,
            "jira_token": c.jira_api_token if cloud else c.jira_pat,
            "salesforce_instance_url": self.endpoints.salesforce_url,
            "salesforce_access_token": c.salesforce_access_token,
            "ca_bundle": str(self.endpoints.ca_bundle) if self.endpoints.ca_bundle else None,
            "jira_username": c.jira_email if cloud else c.jira_username,
            "jira_password": c.jira_api_token if cloud else c.jira_password,
            # For clients that log in by the refresh_token grant (SPEC section 8's keys
            # above stay as they are).
            "salesforce_client_id": c.salesforce_consumer_key,
            "salesforce_client_secret": c.salesforce_consumer_secret,
            "salesforce_refresh_token": c.salesforce_refresh_token,
        }
