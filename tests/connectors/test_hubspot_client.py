"""The HubSpot client: sign-in (private app, OAuth renewal), pacing by the portal's
headers, retries and error conversion; against the sandbox over HTTPS, and with an httpx
MockTransport where a fault is easier to state at the transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trustme

from connectors.exceptions import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    RemoteError,
    RetriableError,
    UnreachableError,
)
from connectors.hubspot import HubSpotConnector, HubSpotSettings, client
from connectors.hubspot.transport import MeteredTransport, PlainHttpRefused, new_meter
from connectors.retry import RetryPolicy
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.faults import Fault
from connectors.sandbox.server import Tls
from tests.connectors.hubspot_portal import FakeClock, Portal, served_portal

PROPS = "/crm/v3/properties/companies"


@pytest.fixture
def portal(serve: Callable[[SandboxApp], str], tls: Tls) -> Portal:
    return served_portal(serve, tls, accounts=10)


def mocked(
    handler: Callable[[httpx.Request], httpx.Response], **settings: object
) -> tuple[HubSpotConnector, FakeClock]:
    clock = FakeClock()
    values: dict[str, object] = {"access_token": "pat-secret-token"}
    values.update(settings)
    connector = HubSpotConnector(
        HubSpotSettings(**values),  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=3),
        sleep=clock.sleep,
        clock=clock,
        wall=clock,
    )
    return connector, clock


def ok(body: object = None, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json=body if body is not None else {"results": []}, headers=headers
    )


# -- sign-in -------------------------------------------------------------------------------


def test_a_refused_private_app_token_names_the_setting_not_the_token(portal: Portal) -> None:
    connector = portal.connector(access_token="pat-na1-wrong-secret")
    with pytest.raises(AuthError, match=r"\[crm.hubspot\] access_token") as caught:
        connector.call("read", "GET", PROPS)
    assert "pat-na1-wrong-secret" not in str(caught.value)


def test_oauth_tokens_are_renewed_before_they_expire(portal: Portal) -> None:
    connector = portal.connector(auth="oauth")
    connector.connect()
    assert portal.backend.token_grants == 1
    connector.call("read", "GET", PROPS)
    portal.clock.advance(1800 - 200)  # within the 300 s margin of the 1800 s lifetime
    connector.call("read", "GET", PROPS)
    assert portal.backend.token_grants == 2
    assert connector.meter.snapshot()["by_endpoint"]["POST /oauth/v1/token"] == 2
    assert connector.meter.total == 5  # two grants, the details, two reads: none refused


def test_a_401_renews_the_oauth_token_once(portal: Portal) -> None:
    connector = portal.connector(auth="oauth")
    connector.connect()
    portal.app.faults.add(Fault.from_json({"kind": "expired_session", "count": 1}))
    assert connector.call("read", "GET", PROPS)["results"]
    assert portal.backend.token_grants == 2


def test_a_401_right_after_renewing_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/token":
            return ok({"access_token": "fresh", "expires_in": 1800})
        return ok({"status": "error", "message": "expired"}, 401)

    connector, _ = mocked(
        handler,
        auth="oauth",
        access_token=None,
        client_id="id",
        client_secret="s3cr3t",
        refresh_token="r3fresh",
    )
    with pytest.raises(AuthError, match="right after renewing") as caught:
        connector.call("read", "GET", PROPS)
    assert connector.meter.snapshot()["by_endpoint"]["POST /oauth/v1/token"] == 2
    assert "s3cr3t" not in str(caught.value) and "r3fresh" not in str(caught.value)


def test_a_refused_refresh_token_names_the_settings(portal: Portal) -> None:
    connector = portal.connector(auth="oauth", refresh_token="na1-revoked")
    with pytest.raises(AuthError, match="refresh_token") as caught:
        connector.connect()
    assert "na1-revoked" not in str(caught.value)


def test_a_private_app_token_is_not_renewed_on_401() -> None:
    connector, _ = mocked(lambda r: ok({"status": "error", "message": "bad"}, 401))
    with pytest.raises(AuthError, match="access_token"):
        connector.call("read", "GET", PROPS)
    assert connector.meter.total == 1


def test_a_missing_scope_is_named(portal: Portal) -> None:
    portal.backend.scopes.discard("tickets")
    with pytest.raises(AuthError, match="lacks the scope tickets"):
        portal.connector().call("read tickets", "GET", "/crm/v3/objects/tickets")


# -- pacing --------------------------------------------------------------------------------


def test_a_429_honours_retry_after() -> None:
    answers = [
        ok({"status": "error", "policyName": "TEN_SECONDLY_ROLLING"}, 429, **{"Retry-After": "7"}),
        ok(),
    ]
    connector, clock = mocked(lambda r: answers.pop(0))
    connector.call("read", "GET", PROPS)
    assert clock.slept == [7.0] and connector.meter.total == 2


def test_a_429_without_retry_after_waits_for_the_next_window() -> None:
    answers = [ok({"status": "error"}, 429), ok()]
    connector, clock = mocked(lambda r: answers.pop(0))
    connector.call("read", "GET", PROPS)
    assert clock.slept == [10.0]


def test_the_burst_is_paced_by_the_headers_before_any_429(portal: Portal) -> None:
    portal.backend.burst_limit = 12
    connector = portal.connector(burst_reserve=2)
    for _ in range(40):
        connector.call("read", "GET", PROPS)
    assert connector.meter.total == 40  # no call was refused and sent again
    assert connector.paced > 0 and all(0 < s <= 10 for s in portal.clock.slept)


def test_without_pacing_the_same_burst_is_refused(portal: Portal) -> None:
    portal.backend.burst_limit = 12
    connector = portal.connector(burst_reserve=-1, attempts=5)  # never waits ahead
    for _ in range(40):
        connector.call("read", "GET", PROPS)
    assert connector.meter.total > 40  # 429s, each honoured through Retry-After


def test_a_spent_daily_limit_stops_before_sending(portal: Portal) -> None:
    portal.backend.daily_limit = 5
    connector = portal.connector()
    for _ in range(5):
        connector.call("read", "GET", PROPS)
    with pytest.raises(BudgetExhausted, match="daily API limit"):
        connector.call("read", "GET", PROPS)
    assert connector.meter.total == 5


def test_a_daily_429_is_a_spent_budget() -> None:
    connector, _ = mocked(lambda r: ok({"status": "error", "policyName": "DAILY"}, 429))
    with pytest.raises(BudgetExhausted, match="shared with its other apps"):
        connector.call("read", "GET", PROPS)
    assert connector.meter.total == 1


@pytest.mark.parametrize("per_second", [client.SEARCH_PER_SECOND, 1000.0])
def test_searches_keep_under_the_per_second_limit(
    portal: Portal, monkeypatch: pytest.MonkeyPatch, per_second: float
) -> None:
    monkeypatch.setattr(client, "SEARCH_PER_SECOND", per_second)
    connector = portal.connector(attempts=5)
    for _ in range(12):
        connector.search("companies", {"filterGroups": [], "limit": 1})
    if per_second == 1000.0:
        assert connector.meter.total > 12  # the portal refused some: 5 a second
    else:
        assert connector.meter.total == 12


# -- failures ------------------------------------------------------------------------------


def test_5xx_is_retried_then_reported(portal: Portal) -> None:
    portal.app.faults.add(Fault.from_json({"kind": "503", "count": 2}))
    connector = portal.connector()
    assert connector.call("read", "GET", PROPS)["results"]
    assert connector.meter.total == 3
    portal.app.faults.add(Fault.from_json({"kind": "500", "count": 3}))
    with pytest.raises(RetriableError, match="after 3 attempts"):
        connector.call("read", "GET", PROPS)


def test_a_write_that_may_have_been_applied_is_not_sent_again() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/files/v3/files":
            return ok({"id": "77"}, 201)
        return ok({"status": "error", "message": "boom"}, 500)

    connector, _ = mocked(handler)
    with pytest.raises(RemoteError, match="may have been applied"):
        connector.attach_file("12", "Status", "s.html", b"x")
    assert calls == ["/files/v3/files", "/crm/v3/objects/notes"]


def test_a_dropped_connection_during_a_note_is_not_resent(portal: Portal) -> None:
    company = next(iter(portal.backend.records["0-2"]))
    portal.app.faults.add(
        Fault.from_json(
            {"kind": "drop", "count": 1, "endpoint": "/crm/v3/objects/{type}", "method": "POST"}
        )
    )
    with pytest.raises(RetriableError, match="not safe to repeat"):
        portal.connector().attach_file(company, "Status", "s.html", b"x")
    assert portal.backend.records["0-4"] == {}


def test_an_answer_that_is_not_json_is_a_remote_error() -> None:
    connector, _ = mocked(lambda r: httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(RemoteError, match="not JSON"):
        connector.call("read", "GET", PROPS)


def test_plain_http_is_refused_in_config_and_at_the_transport() -> None:
    with pytest.raises(ConfigError, match="clear text"):
        HubSpotSettings(base_url="http://api.hubapi.com", access_token="t").check()
    sent: list[httpx.Request] = []
    transport = MeteredTransport(
        new_meter(), inner=httpx.MockTransport(lambda r: sent.append(r) or ok())
    )
    with pytest.raises(PlainHttpRefused, match="plain http"):
        transport.handle_request(httpx.Request("GET", "http://api.hubapi.com/crm/v3/owners"))
    assert sent == []


def test_a_certificate_from_another_ca_is_unreachable(portal: Portal, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    connector = portal.connector(ca_bundle=str(other), attempts=1)
    with pytest.raises(UnreachableError, match="ca_bundle"):
        connector.call("read", "GET", PROPS)


def test_the_allowance_is_the_portals_daily_usage(portal: Portal) -> None:
    connector = portal.connector()
    connector.call("read", "GET", PROPS)
    allowance = connector.allowance()
    assert allowance.total == portal.backend.daily_limit
    assert allowance.remaining == portal.backend.daily_limit - 2
    assert allowance.holder == "the portal"


def test_every_attempt_is_metered_by_endpoint(portal: Portal) -> None:
    connector = portal.connector()
    connector.search("companies", {"filterGroups": [], "limit": 1})
    connector.call(
        "read", "POST", "/crm/v3/objects/companies/batch/read", json={"inputs": [{"id": "1"}]}
    )
    snapshot = connector.meter.snapshot()
    assert snapshot["reads"] == 2 and snapshot["writes"] == 0
    assert set(snapshot["by_endpoint"]) == {
        "POST /crm/v3/objects/{type}/search",
        "POST /crm/v3/objects/{type}/batch/read",
    }
    assert json.dumps(snapshot)  # plain values


def test_links_to_companies_come_from_the_portals_details(portal: Portal) -> None:
    connector = portal.connector()
    assert connector.instance_url == "https://app.hubspot.com"  # no call before connect
    connector.connect()
    assert connector.instance_url == "https://app.hubspot.com/contacts/4400100/company"
    connector.connect()
    assert connector.meter.snapshot()["by_endpoint"] == {"GET /account-info/v3/details": 1}
    configured = portal.connector(portal_id=77)
    configured.connect()
    assert configured.instance_url == "https://app.hubspot.com/contacts/77/company"
    assert configured.meter.total == 0


def test_an_oauth_app_without_the_usage_endpoint_reports_no_allowance() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v1/token":
            return ok({"access_token": "fresh", "expires_in": 1800})
        if request.url.path.startswith("/account-info"):
            return ok({"status": "error", "category": "MISSING_SCOPES"}, 403)
        return ok(**{"X-HubSpot-RateLimit-Max": "110", "X-HubSpot-RateLimit-Remaining": "109"})

    connector, _ = mocked(
        handler,
        auth="oauth",
        access_token=None,
        client_id="i",
        client_secret="s",
        refresh_token="r",
    )
    allowance = connector.allowance()
    assert (allowance.remaining, allowance.total) == (None, None)
    assert connector.meter.snapshot()["by_endpoint"]["GET /crm/v3/objects/{type}"] == 1


def test_the_cycles_budget_stops_before_sending(portal: Portal) -> None:
    connector = portal.connector()
    connector.meter.reset(budget=2)
    connector.call("read", "GET", PROPS)
    connector.call("read", "GET", PROPS)
    with pytest.raises(BudgetExhausted, match="budget of 2 calls"):
        connector.call("read", "GET", PROPS)
    assert portal.fired("GET /crm/v3/properties/{type}") == 2
