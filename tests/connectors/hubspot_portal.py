"""A HubSpot sandbox portal and connectors pointed at it, shared by the HubSpot tests.

The portal's clock, the connector's clocks and its sleep are one fake clock, so pacing,
token expiry, index lag and the limits' windows are exercised without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.crm import Configured, CustomerNeed, Needs, ReportNeed, SurveyNeed
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.retry import RetryPolicy
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.hubspot import HubSpotBackend
from connectors.sandbox.hubspot.models import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PRIVATE_APP_TOKEN,
    DEFAULT_REFRESH_TOKEN,
)
from connectors.sandbox.hubspot.transport import IN_PROCESS_URL, InProcessTransport
from connectors.sandbox.server import Tls
from connectors.sandbox.world import generate_world

#: An hour from now, in whole seconds: after every seeded record (the world is anchored
#: at the present).
START = float(int(time.time()) + 3600)
REPORT_FIELDS = ("company_id", "jira_project_key", "issues_total", "health", "last_synced")


@dataclass
class FakeClock:
    """Seconds since the epoch; ``sleep`` advances it and records each wait."""

    now: float = START
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def needs(report: str = "jira_project_status", survey: bool = True) -> Needs:
    """What a cycle needs, in the sandbox portal's names."""

    def c(name: str) -> Configured:
        return Configured(name, f"[test] {name}")

    return Needs(
        CustomerNeed(c("customer_group"), c("csat_score"), c("jira_project_keys")),
        ReportNeed(c(report), c("jira_sync_key"), tuple(c(f) for f in REPORT_FIELDS)),
        SurveyNeed(
            c("feedback_submissions"),
            c("company"),
            c("hs_response_value"),
            c("hs_submission_timestamp"),
        )
        if survey
        else None,
    )


@dataclass
class Portal:
    """One sandbox portal served over HTTPS (``url``) or in-process (``transport``)."""

    backend: HubSpotBackend
    app: SandboxApp
    clock: FakeClock
    url: str
    ca_bundle: str | None
    transport: httpx.BaseTransport | None = None

    def settings(self, **overrides: Any) -> HubSpotSettings:
        values: dict[str, Any] = {
            "base_url": self.url,
            "access_token": DEFAULT_PRIVATE_APP_TOKEN,
            "ca_bundle": self.ca_bundle,
        }
        if overrides.get("auth") == "oauth":
            values.update(
                access_token=None,
                client_id=DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_CLIENT_SECRET,
                refresh_token=DEFAULT_REFRESH_TOKEN,
            )
        values.update(overrides)
        return HubSpotSettings(**values)

    def connector(self, attempts: int = 3, **overrides: Any) -> HubSpotConnector:
        return HubSpotConnector(
            self.settings(**overrides),
            transport=self.transport,
            retry=RetryPolicy(attempts=attempts),
            sleep=self.clock.sleep,
            clock=self.clock,
            wall=self.clock,
        )

    def fired(self, key: str) -> int:
        """Calls the sandbox answered at one endpoint template (``POST /crm/...``)."""
        return int(self.app.stats.snapshot()["by_endpoint"].get(key, 0))


def make_backend(accounts: int = 40, **kwargs: Any) -> tuple[HubSpotBackend, FakeClock]:
    clock = FakeClock()
    backend = HubSpotBackend(
        generate_world(issues=0, accounts=accounts, seed=7), clock=clock, **kwargs
    )
    return backend, clock


def served_portal(
    serve: Callable[[SandboxApp], str], tls: Tls, accounts: int = 40, **kwargs: Any
) -> Portal:
    """A portal over real HTTPS on loopback."""
    backend, clock = make_backend(accounts, **kwargs)
    app = SandboxApp(backend)
    app.sleep = clock.sleep
    return Portal(backend, app, clock, serve(app), str(tls.ca_path))


def in_process_portal(accounts: int = 40, **kwargs: Any) -> Portal:
    """A portal answered in-process by an httpx transport."""
    backend, clock = make_backend(accounts, **kwargs)
    app = SandboxApp(backend)
    app.sleep = clock.sleep
    return Portal(backend, app, clock, IN_PROCESS_URL, None, InProcessTransport(app))


def live_pages(pages: Iterator[Any]) -> list[Any]:
    return list(pages)
