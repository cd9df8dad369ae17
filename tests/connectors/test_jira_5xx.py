"""The answers the ``jira`` client gives up on at once (500, 502, 504, a 503 without
Retry-After), retried by the connector under the one RetryPolicy: attempts counted by the
sandbox, both sleeps patched (the client's, to prove it did not retry; ours, to read the
waits). A PUT that posts comments is never re-sent blind after a 5xx: the comments are
read back first, and only what is missing goes again.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from typing import Any

import jira.resilientsession
import pytest

from connectors.exceptions import RemoteError, RetriableError
from connectors.jira import JiraConnector
from connectors.sandbox.faults import Fault
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import ANCHOR, FIELDS, connector_for

SEARCH = "GET /rest/api/2/search/jql"
PUT = "PUT /rest/api/2/issue/{key}"
COMMENTS = "GET /rest/api/2/issue/{key}/comment"
MARKER = "[jira-crm-sync:flag:at_risk:001Dn0000000007IAA]"
ISSUES = 150  # two search pages of 100

#: The refusals the client does not retry, as the sandbox injects them.
GAVE_UP = {
    "500": {"kind": "500"},
    "502": {"kind": "502"},
    "503-without-retry-after": {"kind": "503"},
    "504-gateway-timeout": {"kind": "timeout", "delay_ms": 0},
    "proxy-page-502": {"kind": "html"},
}


@pytest.fixture
def client_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every back-off the jira client would have slept, instead of sleeping."""
    slept: list[float] = []
    monkeypatch.setattr(jira.resilientsession, "time", types.SimpleNamespace(sleep=slept.append))
    return slept


@pytest.fixture
def box() -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(issues=ISSUES, accounts=5, seed=9, anchor=ANCHOR)
    with sandbox.in_process() as ends:
        yield sandbox, ends.jira_url


def fresh(site: tuple[Sandbox, str], ours: list[float], **overrides: Any) -> JiraConnector:
    """A connector that has made no call, whose own waits land in ``ours``."""
    sandbox, url = site
    connector = connector_for(sandbox, url, **overrides)
    connector._sleep = ours.append
    return connector


def ready(site: tuple[Sandbox, str], ours: list[float], **overrides: Any) -> JiraConnector:
    """Connected, fields read, stats zeroed."""
    connector = fresh(site, ours, **overrides)
    connector.connect()
    connector.field_catalog()
    site[0].jira_app.stats.reset()
    return connector


def fault(sandbox: Sandbox, spec: dict[str, Any], **more: Any) -> None:
    sandbox.jira_app.faults.add(Fault.from_json({**spec, **more}))


def made(sandbox: Sandbox, endpoint: str) -> int:
    return int(sandbox.jira_app.stats.snapshot()["by_endpoint"].get(endpoint, 0))


def pull_count(connector: JiraConnector) -> int:
    return sum(len(page) for page in connector.pull_issues(FIELDS))


@pytest.mark.parametrize("refusal", GAVE_UP.values(), ids=GAVE_UP.keys())
def test_a_refusal_the_client_gives_up_on_is_retried_here(
    box: tuple[Sandbox, str], client_sleeps: list[float], refusal: dict[str, Any]
) -> None:
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    fault(sandbox, refusal, count=2, endpoint="search/jql")
    assert pull_count(connector) == ISSUES  # everything pulled
    assert made(sandbox, SEARCH) == 2 + 2  # two pages, two refused attempts
    assert ours == [1.0, 2.0] and client_sleeps == []  # backed off by us, not the client


def test_retries_spent_end_the_call_as_retriable(
    box: tuple[Sandbox, str], client_sleeps: list[float]
) -> None:
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    fault(sandbox, {"kind": "502"}, count=4, endpoint="search/jql")
    with pytest.raises(RetriableError, match=r"HTTP 502 .*GET /rest/api/2/search/jql"):
        pull_count(connector)
    assert made(sandbox, SEARCH) == 4  # max_retries (3) + 1 attempts
    assert ours == [1.0, 2.0, 4.0] and client_sleeps == []
    assert pull_count(connector) == ISSUES  # the next cycle succeeds


def test_max_retries_bounds_our_retries_too(box: tuple[Sandbox, str]) -> None:
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours, max_retries=1)
    fault(sandbox, {"kind": "500"}, count=5, endpoint="search/jql")
    with pytest.raises(RetriableError):
        pull_count(connector)
    assert made(sandbox, SEARCH) == 2 and ours == [1.0]


@pytest.mark.parametrize(("retry_after", "waited"), [(7, 7.0), (900, 60.0)])
def test_retry_after_on_a_5xx_is_honoured_and_capped(
    box: tuple[Sandbox, str], retry_after: int, waited: float
) -> None:
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    fault(sandbox, {"kind": "500", "retry_after": retry_after}, endpoint="search/jql")
    assert pull_count(connector) == ISSUES
    assert ours == [waited]


def test_what_the_client_retried_itself_is_not_retried_again(
    box: tuple[Sandbox, str], client_sleeps: list[float]
) -> None:
    """A 503 with Retry-After and a 429: the client's retries, not ours on top (4 calls,
    not 16)."""
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    fault(sandbox, {"kind": "503", "retry_after": 1}, count=4, endpoint="search/jql")
    with pytest.raises(RetriableError, match="503"):
        pull_count(connector)
    assert made(sandbox, SEARCH) == 4 and len(client_sleeps) == 3 and ours == []


# -- every read and idempotent write ------------------------------------------------------


def _first_key(sandbox: Sandbox) -> str:
    return sorted(sandbox.jira.issues)[0]


#: (endpoint counted, the fault's endpoint filter, the call, what it must return).
READS: dict[str, tuple[str, str, Callable[[JiraConnector, Sandbox], Any], Any]] = {
    "serverInfo": (
        "GET /rest/api/2/serverInfo",
        "/serverInfo",
        lambda c, _s: c.connect().deployment,
        "cloud",
    ),
    "myself": (
        "GET /rest/api/2/myself",
        "/myself",
        lambda c, s: c.connect().user == s.jira.me.account_id,
        True,
    ),
    "field": (
        "GET /rest/api/2/field",
        "/field",
        lambda c, _s: c.resolve_field("Salesforce Account"),
        "customfield_10100",
    ),
    "mypermissions": (
        "GET /rest/api/2/mypermissions",
        "/mypermissions",
        lambda c, s: c.my_permissions(["BROWSE_PROJECTS"], s.jira.project_order[0]),
        {"BROWSE_PROJECTS": True},
    ),
    "comments": (
        COMMENTS,
        "/comment",
        lambda c, s: c.comment_bodies(_first_key(s)),
        ["a person's comment"],
    ),
    "property": (
        "GET /rest/api/2/issue/{key}/properties/{propertyKey}",
        "/properties/",
        lambda c, s: c.get_property(_first_key(s), "jira-crm-sync"),
        {"flag": "watch"},
    ),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_every_read_survives_a_502(
    box: tuple[Sandbox, str],
    read: tuple[str, str, Callable[[JiraConnector, Sandbox], Any], Any],
) -> None:
    sandbox, _ = box
    endpoint, where, call, want = read
    key = _first_key(sandbox)
    sandbox.jira.add_comment(key, "a person's comment")
    sandbox.jira.properties.setdefault(key, {})["jira-crm-sync"] = {"flag": "watch"}
    ours: list[float] = []
    connector = fresh(box, ours)
    fault(sandbox, {"kind": "502"}, endpoint=where, method="GET")
    assert call(connector, sandbox) == want
    assert made(sandbox, endpoint) == 2 and ours == [1.0]


def test_a_label_and_field_put_is_resent_after_a_5xx(
    box: tuple[Sandbox, str], client_sleeps: list[float]
) -> None:
    """Applied, then answered 502 by a proxy: sending labels again changes nothing."""
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    key = _first_key(sandbox)
    fault(sandbox, {"kind": "html"}, method="PUT")
    assert connector.update_issue(key, add_labels=["customer-at-risk"])
    assert sandbox.jira.issue(key).labels.count("customer-at-risk") == 1
    assert made(sandbox, PUT) == 2 and ours == [1.0] and client_sleeps == []


def test_an_issue_property_put_is_resent_after_a_5xx(box: tuple[Sandbox, str]) -> None:
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    key = _first_key(sandbox)
    fault(sandbox, {"kind": "500"}, method="PUT", endpoint="/properties/")
    connector.set_property(key, "jira-crm-sync", {"flag": "at_risk"})
    assert sandbox.jira.properties[key]["jira-crm-sync"] == {"flag": "at_risk"}
    assert made(sandbox, "PUT /rest/api/2/issue/{key}/properties/{propertyKey}") == 2


# -- a PUT that posts comments --------------------------------------------------------------


def _unposted(connector: JiraConnector, key: str) -> Callable[[list[str]], list[str]]:
    """What the push gives: the bodies whose marker the issue does not carry yet."""

    def missing(bodies: list[str]) -> list[str]:
        on_issue = connector.comment_bodies(key)
        return [b for b in bodies if not any(MARKER in text for text in on_issue)]

    return missing


def _comments(sandbox: Sandbox, key: str) -> list[str]:
    return [str(c.body) for c in sandbox.jira.comments.get(key, [])]


def test_a_comment_put_refused_by_a_500_is_read_back_then_sent_again(
    box: tuple[Sandbox, str], client_sleeps: list[float]
) -> None:
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    key = _first_key(sandbox)
    fault(sandbox, {"kind": "500"}, method="PUT")
    body = f"at risk {MARKER}"
    assert connector.update_issue(
        key, add_labels=["customer-at-risk"], comments=[body], unposted=_unposted(connector, key)
    )
    assert _comments(sandbox, key) == [body]
    assert "customer-at-risk" in sandbox.jira.issue(key).labels
    assert (made(sandbox, PUT), made(sandbox, COMMENTS)) == (2, 1)
    assert ours == [1.0] and client_sleeps == []


@pytest.mark.parametrize(("labels", "puts"), [(["customer-at-risk"], 2), ([], 1)])
def test_a_comment_put_applied_then_answered_502_is_not_posted_twice(
    box: tuple[Sandbox, str], labels: list[str], puts: int
) -> None:
    """Jira applied it, a proxy answered 502: the read-back finds the comment; only the
    labels go again (harmless), or nothing when there are none."""
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    key = _first_key(sandbox)
    fault(sandbox, {"kind": "html"}, method="PUT")
    body = f"at risk {MARKER}"
    assert connector.update_issue(
        key, add_labels=labels, comments=[body], unposted=_unposted(connector, key)
    )
    assert _comments(sandbox, key) == [body]
    assert (made(sandbox, PUT), made(sandbox, COMMENTS)) == (puts, 1)


def test_a_comment_put_is_not_resent_without_a_way_to_read_back(
    box: tuple[Sandbox, str],
) -> None:
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    key = _first_key(sandbox)
    fault(sandbox, {"kind": "html"}, method="PUT")
    with pytest.raises(RetriableError, match="502"):
        connector.update_issue(key, comments=[f"at risk {MARKER}"])
    assert len(_comments(sandbox, key)) == 1 and made(sandbox, PUT) == 1 and ours == []


def test_a_failed_read_back_ends_the_write_unsent(box: tuple[Sandbox, str]) -> None:
    """The comments cannot be read after the 502: the PUT is not sent again this cycle
    (the next cycle's verify reads them back)."""
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    key = _first_key(sandbox)
    fault(sandbox, {"kind": "html"}, method="PUT")
    fault(sandbox, {"kind": "html", "status": 200}, endpoint="/comment", method="GET")
    with pytest.raises(RemoteError, match="not JSON"):
        connector.update_issue(
            key, comments=[f"at risk {MARKER}"], unposted=_unposted(connector, key)
        )
    assert len(_comments(sandbox, key)) == 1
    assert (made(sandbox, PUT), made(sandbox, COMMENTS)) == (1, 1)


def test_a_comment_put_refused_every_time_is_bounded_by_the_same_attempts(
    box: tuple[Sandbox, str],
) -> None:
    sandbox, _ = box
    ours: list[float] = []
    connector = ready(box, ours)
    key = _first_key(sandbox)
    fault(sandbox, {"kind": "500"}, count=10, method="PUT")
    with pytest.raises(RetriableError, match="500"):
        connector.update_issue(
            key, comments=[f"at risk {MARKER}"], unposted=_unposted(connector, key)
        )
    assert _comments(sandbox, key) == []
    assert (made(sandbox, PUT), made(sandbox, COMMENTS)) == (4, 3)
    assert ours == [1.0, 2.0, 4.0]
