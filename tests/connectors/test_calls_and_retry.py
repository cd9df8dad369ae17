"""Call metering, budgets and the retry policy, through a real requests session."""

from __future__ import annotations

import re

import pytest
import requests
import responses

from connectors.calls import CallMeter, instrument
from connectors.exceptions import BudgetExhausted
from connectors.retry import RetryPolicy, TransientFailure

TEMPLATES = [(re.compile(r"/things/[^/]+"), "/things/{id}")]


def test_meter_counts_each_attempt_by_template_and_refuses_past_the_budget() -> None:
    meter = CallMeter("crm", TEMPLATES, budget=3, read_only_posts=("/search",))
    session = instrument(requests.Session(), meter)
    with responses.RequestsMock() as mock:
        mock.add("GET", re.compile(r"https://api\.test/.*"), json={})
        mock.add("POST", re.compile(r"https://api\.test/.*"), json={})
        session.get("https://api.test/things/1")
        session.post("https://api.test/search")
        session.post("https://api.test/things/2")
        with pytest.raises(BudgetExhausted, match="budget of 3 calls"):
            session.get("https://api.test/things/3")
        assert len(mock.calls) == 3  # the refused call never left the process
    assert meter.snapshot() == {
        "total": 3,
        "reads": 2,
        "writes": 1,
        "by_endpoint": {"GET /things/{id}": 1, "POST /search": 1, "POST /things/{id}": 1},
    }
    assert meter.remaining == 0
    meter.reset(budget=None)
    assert meter.total == 0 and meter.remaining is None


def test_policy_waits_retry_after_then_backs_off_and_gives_up() -> None:
    policy = RetryPolicy(attempts=4, initial_wait=1.0, multiplier=2.0, max_wait=30.0)
    waits: list[float] = []
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise TransientFailure("429", retry_after=120)
        if len(attempts) < 4:
            raise TransientFailure("503")
        return "done"

    assert policy.call(flaky, sleep=waits.append) == "done"
    assert waits == [30.0, 2.0, 4.0]  # Retry-After capped at max_wait; then exponential

    def always() -> str:
        raise TransientFailure("still down")

    waits.clear()
    with pytest.raises(TransientFailure, match="still down"):
        policy.call(always, sleep=waits.append)
    assert len(waits) == 3  # four attempts, three waits


def test_policy_does_not_retry_other_errors() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("not transient")

    with pytest.raises(ValueError):
        RetryPolicy().call(broken, sleep=lambda s: None)
    assert calls == [1]
