"""Pacing by Jira's rate-limit headers (connectors/jira/pacing.py) against the sandbox's
limits (connectors/sandbox/jira/limits.py), on one simulated clock: the client slows down
before the per-second limit refuses it, honours the per-issue write limit's Retry-After
for that issue only, and is never slowed by a site that sends no such header."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jira.resilientsession
import pytest
import requests

from connectors.jira import JiraConnector
from connectors.jira.pacing import Pacer
from connectors.sandbox.jira.limits import PER_ISSUE
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import ANCHOR, connector_for

BASE = datetime(2026, 12, 4, tzinfo=UTC)


class SimTime:
    """Monotonic seconds that only a sleep moves, and the wall clock that goes with them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def wall(self) -> datetime:
        return BASE + timedelta(seconds=self.now)


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, JiraConnector, SimTime]]:
    box = Sandbox(issues=20, accounts=5, seed=4, anchor=ANCHOR)
    sim = SimTime()
    box.jira.limits.clock = lambda: sim.now
    box.jira.limits.wall = sim.wall
    # The client's own retry of a 429 sleeps Retry-After (and more): on the same clock.
    monkeypatch.setattr(jira.resilientsession.time, "sleep", sim.sleep)
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url)
        pacer = connector.client.pacer
        assert isinstance(pacer, Pacer)
        pacer.clock = lambda: sim.now
        pacer.wall = lambda: sim.wall().timestamp()
        pacer.sleep = sim.sleep
        connector.connect()
        yield box, connector, sim


def test_reads_slow_down_before_the_per_second_limit_and_are_never_refused(
    paced: tuple[Sandbox, JiraConnector, SimTime],
) -> None:
    box, connector, sim = paced
    box.jira.limits.per_second = 3
    for _ in range(10):
        connector.reread_field_catalog()
    assert box.jira.limits.refused == {}  # no 429: the pacer waited first
    assert sim.now >= 2.0  # 10 calls at 3 a second take at least two windows' waits
    assert connector.client.pacer is not None and connector.client.pacer.waits >= 2


def test_the_per_issue_write_limit_delays_that_issue_only(
    paced: tuple[Sandbox, JiraConnector, SimTime],
) -> None:
    box, connector, sim = paced
    box.jira.limits.issue_writes, box.jira.limits.issue_window = 1, 10.0
    first, other = sorted(box.jira.issues)[:2]
    connector.update_issue(first, add_labels=["a"])
    connector.update_issue(first, add_labels=["b"])  # 429, Retry-After 10, then applied
    assert box.jira.limits.refused == {PER_ISSUE: 1}
    assert sim.now >= 10.0 and {"a", "b"} <= set(box.jira.issue(first).labels)
    before = sim.now
    connector.update_issue(other, add_labels=["a"])  # another issue: not held back
    assert sim.now == before


def test_a_site_without_rate_limit_headers_is_never_slowed(
    paced: tuple[Sandbox, JiraConnector, SimTime],
) -> None:
    _box, connector, sim = paced
    for _ in range(5):
        connector.reread_field_catalog()
    assert sim.slept == [] and connector.client.pacer is not None
    assert connector.client.pacer.waits == 0


def test_the_sandbox_sends_jiras_headers_when_limits_are_on(
    paced: tuple[Sandbox, JiraConnector, SimTime],
) -> None:
    box, connector, _sim = paced
    box.jira.limits.per_second = 2
    url = connector.client.url("field")
    response = connector.client.get(url)
    assert response.headers["X-RateLimit-Limit"] == "2"
    assert response.headers["X-RateLimit-Remaining"] == "1"
    assert response.headers["X-RateLimit-Reset"] == "2026-12-04T00:00:01.000Z"
    assert response.headers["Beta-RateLimit-Policy"] == '"jira-burst-based";q=2;w=1'
    refused = box.jira.limits.admit("GET /rest/api/2/field", None)
    assert refused is None  # the second of two
    refused = box.jira.limits.admit("GET /rest/api/2/field", None)
    assert refused is not None and refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit-Reason"] == "jira-burst-based"


def _answer(status: int, headers: dict[str, str], url: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response.request = requests.Request("GET", url).prepare()
    return response


def test_the_quota_header_spreads_what_is_left_over_its_window() -> None:
    """Beta-RateLimit (the points quota of apps: r= left, t= seconds to its reset) near its
    end spreads the calls left over the time left; another endpoint is not slowed."""
    sim = SimTime()
    pacer = Pacer(clock=lambda: sim.now, wall=lambda: sim.wall().timestamp(), sleep=sim.sleep)
    url = "https://site.test/rest/api/2/search/jql"
    pacer.after(_answer(200, {"Beta-RateLimit": '"global-app-quota";r=3;t=40'}, url))
    pacer.before("GET", url)
    assert sim.slept == [10.0]  # 40 s left for 3 calls: one every 10 s
    pacer.before("GET", "https://site.test/rest/api/2/field")
    assert sim.slept == [10.0]
    pacer.after(_answer(429, {"Retry-After": "7"}, url))  # a 429 without the headers
    pacer.before("GET", url)
    assert sim.slept[-1] == pytest.approx(7.0)
