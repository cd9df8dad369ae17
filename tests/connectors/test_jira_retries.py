"""429, 503 and dropped connections: the ``jira`` client's own retries, counted, sleep patched.

ResilientSession makes ``max_retries + 1`` attempts. It retries 429 (waiting
``2 * Retry-After`` or ``10 * 2**n`` s, capped at 60, times a 0.5-1.0 jitter), 503 only
when it carries Retry-After, and connection errors (``10 * 2**n`` s). Nothing in the
connector retries those on top of it; what the client gives up on at once (500, 502,
504, a 503 without Retry-After) the connector retries: tests/connectors/test_jira_5xx.py.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jira.resilientsession
import pytest

from connectors.exceptions import BudgetExhausted, RetriableError
from connectors.jira import JiraConnector, jira_meter
from connectors.jira.pacing import Pacer
from connectors.sandbox.faults import Fault
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import ANCHOR, FIELDS, connector_for

SEARCH = "GET /rest/api/2/search/jql"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every back-off the client would have slept, instead of sleeping."""
    slept: list[float] = []
    monkeypatch.setattr(jira.resilientsession, "time", types.SimpleNamespace(sleep=slept.append))
    # Our pacer, too, waits out the window a 429's rate-limit headers announced; with the
    # client's sleep patched no time passes, so it would wait for real (apart: the client's
    # back-offs are what these tests count).
    paced: list[float] = []
    init = Pacer.__init__

    def pacer_init(self: Pacer, **kwargs: Any) -> None:
        init(self, **kwargs)
        self.sleep = paced.append

    monkeypatch.setattr(Pacer, "__init__", pacer_init)
    return slept


@pytest.fixture(params=["in-process", "https"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Sandbox, str, Any]]:
    box = Sandbox(issues=450, accounts=5, seed=9, anchor=ANCHOR)
    if request.param == "https":
        ends = box.serve(tmp_path)
        try:
            yield box, ends.jira_url, ends.ca_bundle
        finally:
            box.stop()
    else:
        with box.in_process() as ends:
            yield box, ends.jira_url, None


def fault(box: Sandbox, **spec: Any) -> None:
    box.jira_app.faults.add(Fault.from_json(spec))


def ready(box: Sandbox, url: str, ca: Any, **overrides: Any) -> JiraConnector:
    connector = connector_for(box, url, ca, **overrides)
    connector.connect()
    connector.field_catalog()
    box.jira_app.stats.reset()
    return connector


def pull_count(connector: JiraConnector) -> int:
    return sum(len(page) for page in connector.pull_issues(FIELDS))


def searches(box: Sandbox) -> int:
    return int(box.jira_app.stats.snapshot()["by_endpoint"].get(SEARCH, 0))


def test_429_survived_with_retry_after(site: tuple[Sandbox, str, Any], sleeps: list[float]) -> None:
    box, url, ca = site
    connector = ready(box, url, ca)
    fault(box, kind="429", count=2, retry_after=3, endpoint="search/jql")
    assert pull_count(connector) == 450
    assert searches(box) == 5 + 2  # five pages, two of the attempts refused
    assert len(sleeps) == 2
    assert all(3 <= s <= 6 for s in sleeps)  # 2 x Retry-After, with 0.5-1.0 jitter


def test_429_exhausted_is_retriable(site: tuple[Sandbox, str, Any], sleeps: list[float]) -> None:
    box, url, ca = site
    connector = ready(box, url, ca)
    fault(box, kind="429", count=4, retry_after=1, endpoint="search/jql")
    with pytest.raises(RetriableError) as caught:
        pull_count(connector)
    assert searches(box) == 4  # max_retries (3) + 1 attempts
    assert len(sleeps) == 3
    assert caught.value.retry_after == 1
    assert "429" in str(caught.value)


def test_max_retries_is_configurable(sleeps: list[float]) -> None:
    box = Sandbox(issues=50, accounts=5, seed=9, anchor=ANCHOR)
    with box.in_process() as ends:
        connector = ready(box, ends.jira_url, None, max_retries=1)
        fault(box, kind="429", count=5, endpoint="search/jql")
        with pytest.raises(RetriableError):
            pull_count(connector)
    assert searches(box) == 2
    assert len(sleeps) == 1 and 10 <= sleeps[0] <= 20  # no Retry-After: 10 * 2**1, jittered


def test_503_with_retry_after_survived(site: tuple[Sandbox, str, Any], sleeps: list[float]) -> None:
    box, url, ca = site
    connector = ready(box, url, ca)
    fault(box, kind="503", count=3, retry_after=2, endpoint="search/jql")
    assert pull_count(connector) == 450
    assert searches(box) == 5 + 3
    assert len(sleeps) == 3


def test_503_without_retry_after_is_not_retried_by_the_client_but_by_us(
    sleeps: list[float],
) -> None:
    box = Sandbox(issues=50, accounts=5, seed=9, anchor=ANCHOR)
    with box.in_process() as ends:
        connector = ready(box, ends.jira_url, None)
        ours: list[float] = []
        connector._sleep = ours.append
        fault(box, kind="503", count=1, endpoint="search/jql")
        assert pull_count(connector) == 50
        assert searches(box) == 2 and sleeps == [] and ours == [1.0]


def test_dropped_connection_survived(site: tuple[Sandbox, str, Any], sleeps: list[float]) -> None:
    box, url, ca = site
    connector = ready(box, url, ca)
    fault(box, kind="drop", count=1, endpoint="search/jql")
    assert pull_count(connector) == 450
    assert searches(box) == 5 + 1
    assert len(sleeps) == 1 and 10 <= sleeps[0] <= 20


def test_dropped_connections_exhausted_are_retriable(sleeps: list[float]) -> None:
    box = Sandbox(issues=50, accounts=5, seed=9, anchor=ANCHOR)
    with box.in_process() as ends:
        connector = ready(box, ends.jira_url, None)
        fault(box, kind="drop", count=4, endpoint="search/jql")
        with pytest.raises(RetriableError, match="connection"):
            pull_count(connector)
    assert searches(box) == 4 and len(sleeps) == 3


def test_write_retried_by_the_client_applies_once(sleeps: list[float]) -> None:
    box = Sandbox(issues=50, accounts=5, seed=9, anchor=ANCHOR)
    with box.in_process() as ends:
        connector = ready(box, ends.jira_url, None)
        key = sorted(box.jira.issues)[0]
        fault(box, kind="429", count=1, retry_after=1, method="PUT")
        connector.update_issue(key, add_labels=["customer-at-risk"])
    assert box.jira.issue(key).labels.count("customer-at-risk") == 1
    assert box.jira_app.stats.snapshot()["by_endpoint"] == {"PUT /rest/api/2/issue/{key}": 2}
    assert len(sleeps) == 1


def test_connect_survives_a_429_on_server_info(sleeps: list[float]) -> None:
    box = Sandbox(issues=10, accounts=5, seed=9, anchor=ANCHOR)
    with box.in_process() as ends:
        fault(box, kind="429", count=1, retry_after=1, endpoint="serverInfo")
        facts = connector_for(box, ends.jira_url).connect()
    assert facts.deployment == "cloud"
    by_endpoint = box.jira_app.stats.snapshot()["by_endpoint"]
    assert by_endpoint["GET /rest/api/2/serverInfo"] == 2


def test_budget_stops_before_the_call() -> None:
    box = Sandbox(issues=300, accounts=5, seed=9, anchor=ANCHOR)
    meter = jira_meter(budget=4)
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url, meter=meter)
        pull = connector.pull_issues(FIELDS)  # serverInfo, myself, field: 3 calls
        pages = iter(pull)
        assert len(next(pages)) == 100
        with pytest.raises(BudgetExhausted):
            next(pages)
    assert box.jira_app.stats.snapshot()["total"] == 4 == meter.total


PUT = "PUT /rest/api/2/issue/{key}"
MARKER = "[jira-crm-sync:flag:at_risk:001Dn0000000007IAA]"


def _comments_and_puts(box: Sandbox, key: str) -> tuple[int, int]:
    made = box.jira_app.stats.snapshot()["by_endpoint"].get(PUT, 0)
    return len(box.jira.comments.get(key, [])), int(made)


def test_a_put_with_comments_is_not_resent_after_a_dropped_answer(
    site: tuple[Sandbox, str, Any], sleeps: list[float]
) -> None:
    """Jira applied the PUT, then the connection dropped: the client would resend it and
    post the comment twice. It is sent once; the cycle ends and the next one re-checks."""
    box, url, ca = site
    connector = ready(box, url, ca)
    key = sorted(box.jira.issues)[3]
    fault(box, kind="drop_after", count=1, method="PUT")
    with pytest.raises(RetriableError):
        connector.update_issue(key, add_labels=["customer-at-risk"], comments=[f"x {MARKER}"])
    assert _comments_and_puts(box, key) == (1, 1)
    assert sleeps == []


def test_a_put_with_comments_refused_by_429_is_retried_here_after_retry_after(
    site: tuple[Sandbox, str, Any], sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, url, ca = site
    connector = ready(box, url, ca)
    ours: list[float] = []
    connector._sleep = ours.append
    key = sorted(box.jira.issues)[3]
    fault(box, kind="429", count=2, retry_after=4, method="PUT")
    assert connector.update_issue(key, comments=[f"x {MARKER}"])
    assert _comments_and_puts(box, key) == (1, 3)
    assert (ours, sleeps) == ([4.0, 4.0], [])


def test_a_put_of_labels_only_keeps_the_clients_retries(
    site: tuple[Sandbox, str, Any], sleeps: list[float]
) -> None:
    box, url, ca = site
    connector = ready(box, url, ca)
    key = sorted(box.jira.issues)[3]
    fault(box, kind="drop_after", count=1, method="PUT")
    assert connector.update_issue(key, add_labels=["customer-at-risk"])
    assert "customer-at-risk" in box.jira.issue(key).labels
    assert _comments_and_puts(box, key)[1] == 2 and len(sleeps) == 1  # resent: harmless
