"""Retries, session renewal and budgets against the sandbox's injected faults (sleep patched).

The documented policy (RetryPolicy defaults): up to 5 attempts per call; waits of 1, 2, 4
and 8 seconds between them, or the server's Retry-After (capped at 60 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.exceptions import AuthError, BudgetExhausted, RetriableError
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.salesforce.auth import new_meter
from connectors.sandbox.faults import Fault
from connectors.sandbox.stack import IN_PROCESS_SALESFORCE_URL, Sandbox

QUERY = "GET /services/data/v59.0/query/"
SOAP = "POST /services/Soap/u/{version}"


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=0, accounts=30, seed=9)
    with sandbox.in_process():
        yield sandbox


def connector_for(box: Sandbox, sleeps: list[float], **kwargs: Any) -> SalesforceConnector:
    c = box.credentials
    return SalesforceConnector(
        SalesforceSettings(
            username=c.salesforce_username,
            password=c.salesforce_password,
            security_token=c.salesforce_security_token,
        ),
        sleep=sleeps.append,
        **kwargs,
    )


def count(connector: SalesforceConnector) -> int:
    return sum(len(page) for page in connector.pull_accounts())


def test_429_with_retry_after_is_survived(box: Sandbox) -> None:
    sleeps: list[float] = []
    connector = connector_for(box, sleeps)
    box.salesforce_app.faults.add(Fault("429", count=2, retry_after=7, endpoint="query"))
    assert count(connector) == 30
    assert connector.meter.by_endpoint[QUERY] == 3
    assert sleeps == [7.0, 7.0]


def test_retry_after_is_capped(box: Sandbox) -> None:
    sleeps: list[float] = []
    connector = connector_for(box, sleeps)
    box.salesforce_app.faults.add(Fault("429", count=1, retry_after=3600, endpoint="query"))
    assert count(connector) == 30
    assert sleeps == [60.0]


def test_503_is_survived_with_backoff(box: Sandbox) -> None:
    sleeps: list[float] = []
    connector = connector_for(box, sleeps)
    box.salesforce_app.faults.add(Fault("503", count=3, endpoint="query"))
    assert count(connector) == 30
    assert connector.meter.by_endpoint[QUERY] == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_dropped_connections_are_retried(box: Sandbox) -> None:
    sleeps: list[float] = []
    connector = connector_for(box, sleeps)
    box.salesforce_app.faults.add(Fault("drop", count=1, endpoint="describe"))
    assert count(connector) == 30
    assert sleeps == [1.0]


def test_exhausted_retries_raise_retriable(box: Sandbox) -> None:
    sleeps: list[float] = []
    connector = connector_for(box, sleeps)
    box.salesforce_app.faults.add(Fault("503", count=5, endpoint="query"))
    with pytest.raises(RetriableError, match="5 attempts"):
        count(connector)
    assert connector.meter.by_endpoint[QUERY] == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


def test_faults_over_the_control_api_are_survived_over_https(tmp_path: Any) -> None:
    box = Sandbox(issues=0, accounts=30, seed=9)
    ends = box.serve(tmp_path)
    try:
        sleeps: list[float] = []
        c = box.credentials
        connector = SalesforceConnector(
            SalesforceSettings(
                username=c.salesforce_username,
                password=c.salesforce_password,
                security_token=c.salesforce_security_token,
                login_url=ends.salesforce_url,
                ca_bundle=str(ends.ca_bundle),
            ),
            sleep=sleeps.append,
        )
        connector.connect()
        connector.session.post(
            f"{ends.salesforce_url}/_sandbox/faults",
            json=[
                {"kind": "429", "count": 1, "retry_after": 2, "endpoint": "query"},
                {"kind": "503", "count": 1, "endpoint": "query"},
            ],
        ).raise_for_status()
        assert count(connector) == 30
    finally:
        box.stop()
    assert sleeps == [2.0, 2.0]


def test_expired_session_is_renewed_once(box: Sandbox) -> None:
    sleeps: list[float] = []
    connector = connector_for(box, sleeps)
    connector.connect()
    box.salesforce_app.faults.add(Fault("expired_session", count=1, endpoint="query"))
    assert count(connector) == 30
    assert connector.logins == 2
    assert connector.meter.by_endpoint[SOAP] == 2
    assert sleeps == []


def test_a_session_refused_right_after_login_is_an_auth_error(box: Sandbox) -> None:
    connector = connector_for(box, [])
    connector.connect()
    box.salesforce_app.faults.add(Fault("expired_session", count=2, endpoint="describe"))
    with pytest.raises(AuthError, match="right after a successful login"):
        count(connector)
    assert connector.logins == 2


def test_expired_access_token_asks_for_a_fresh_one(box: Sandbox) -> None:
    connector = SalesforceConnector(
        SalesforceSettings(
            auth="session",
            instance_url=IN_PROCESS_SALESFORCE_URL,
            access_token=box.credentials.salesforce_access_token,
        )
    )
    box.salesforce_app.faults.add(Fault("expired_session", count=1))
    with pytest.raises(AuthError, match="access_token") as caught:
        count(connector)
    assert box.credentials.salesforce_access_token not in str(caught.value)


def test_daily_api_limit_stops_cleanly() -> None:
    box = Sandbox(issues=0, accounts=30, seed=9, daily_api_limit=2)
    with box.in_process():
        connector = connector_for(box, [])
        assert count(connector) == 30  # describe + one query page
        assert connector.api_usage is not None
        assert (connector.api_usage.used, connector.api_usage.total) == (2, 2)
        with pytest.raises(BudgetExhausted, match="daily API limit") as caught:
            list(connector.pull_cases())
    assert "2/2" in str(caught.value)
    assert connector.meter.by_endpoint["GET /services/data/v59.0/sobjects/{sobject}/describe"] == 2


def test_our_own_budget_refuses_the_call_before_sending(box: Sandbox) -> None:
    connector = connector_for(box, [], meter=new_meter(budget=2))  # login + describe
    with pytest.raises(BudgetExhausted, match="budget of 2 calls"):
        count(connector)
    assert box.salesforce_app.stats.snapshot()["total"] == 2


def test_retry_after_as_seconds_or_http_date() -> None:
    from email.utils import format_datetime

    from connectors.salesforce.errors import parse_retry_after

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(format_datetime(later, usegmt=True))
    assert seconds is not None and 25 <= seconds <= 30
