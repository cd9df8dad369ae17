"""The Jira backend below HTTP: page tokens across changes, page-size rules, edits and
their error shapes, faults, reset, and a 100,000-issue world."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.faults import Fault
from connectors.sandbox.jira import JiraBackend
from connectors.sandbox.jira.search import PAGE_RULES, SearchError
from connectors.sandbox.world import World, generate_world
from tests.sandbox.conftest import Transport

BASE = "https://sandbox.atlassian.net"
EMAIL, TOKEN = "sandbox@example.com", "tok"
ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(issues=400, accounts=30, seed=41, anchor=ANCHOR)


@pytest.fixture
def backend(world: World) -> JiraBackend:
    now = [ANCHOR + timedelta(hours=1)]
    return JiraBackend(world, email=EMAIL, api_token=TOKEN, clock=lambda: now[0])


@pytest.fixture
def http(
    backend: JiraBackend, transport: Transport
) -> Iterator[tuple[requests.Session, SandboxApp]]:
    app = SandboxApp(backend)
    with transport.mount(app, BASE):
        session = requests.Session()
        session.auth = (EMAIL, TOKEN)
        yield session, app


def test_page_rules_clip_silently() -> None:
    rule = PAGE_RULES["search/jql"]
    assert rule.size(None) == 50
    assert rule.size(1000) == 100
    assert rule.size(1000, identity_only=True) == 1000
    assert rule.size(9999, identity_only=True) == 5000
    assert PAGE_RULES["search"].size(5000) == 1000


def test_pages_resume_after_changes_between_them(backend: JiraBackend) -> None:
    jql = "created >= -1000d ORDER BY updated ASC"
    first, token = backend.search.token_page(jql, None, 100)
    assert token is not None
    moved = first[10].key
    backend.update_issue(moved, labels=["touched"])  # now the most recently updated
    seen = [i.key for i in first]
    while token:
        page, token = backend.search.token_page(jql, token, 100)
        seen.extend(i.key for i in page)
    assert seen.count(moved) == 2  # read again at the end: a change is never missed
    assert len(seen) == 401 and len(set(seen)) == 400


def test_pages_after_the_first_do_not_rescan(
    backend: JiraBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    jql = "statusCategory != Done"
    _, token = backend.search.token_page(jql, None, 10)
    runs: list[str] = []
    original = backend.search._run
    monkeypatch.setattr(backend.search, "_run", lambda q, c: runs.append(q) or original(q, c))
    while token:
        _, token = backend.search.token_page(jql, token, 10)
    assert runs == []


def test_tokens_are_signed(backend: JiraBackend) -> None:
    _, token = backend.search.token_page("created >= -1000d", None, 10)
    assert token is not None
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(SearchError):
        backend.search.token_page("created >= -1000d", tampered, 10)


def test_search_parameters(http: tuple[requests.Session, SandboxApp]) -> None:
    session, app = http
    url = f"{BASE}/rest/api/2/search/jql"
    named = session.get(url, params={"jql": "created >= -1000d", "fields": "Salesforce Account"})
    assert set(named.json()["issues"][0]) == {"id"}  # names are not field ids: ignored
    repeated = session.get(
        url, params=[("jql", "created >= -1000d"), ("fields", "summary"), ("fields", "labels")]
    ).json()
    assert set(repeated["issues"][0]["fields"]) == {"summary", "labels"}
    too_many = session.get(url, params={"jql": "created >= -1d", "properties": "a,b,c,d,e,f"})
    assert too_many.status_code == 400
    bad_size = session.get(url, params={"jql": "created >= -1d", "maxResults": "many"})
    assert bad_size.status_code == 400
    snapshot = app.stats.snapshot()
    assert snapshot["writes"] == 0 and snapshot["by_endpoint"]["GET /rest/api/2/search/jql"] == 4
    session.post(url, json={"jql": "created >= -1d"})
    assert app.stats.snapshot()["writes"] == 0  # a POST search is a read


def test_edits_update_operations_and_errors(
    http: tuple[requests.Session, SandboxApp], backend: JiraBackend
) -> None:
    session, _ = http
    issue = backend.ordered_issues()[0]
    url = f"{BASE}/rest/api/2/issue/{issue.key}"
    ok = session.put(
        url,
        json={
            "fields": {"duedate": "2025-07-01", "priority": {"name": "High"}},
            "update": {
                "customfield_10100": [{"set": "001Dn000000NEWXYZ"}],
                "labels": [{"set": ["a", "b"]}, {"remove": "a"}],
                "comment": [{"add": {"body": "edited"}}],
            },
        },
    )
    assert ok.status_code == 204
    assert (issue.due.isoformat() if issue.due else None) == "2025-07-01"
    assert (issue.priority, issue.account_id, issue.labels) == ("High", "001Dn000000NEWXYZ", ["b"])
    assert [c.body for c in backend.comments[issue.key]] == ["edited"]
    bad = session.put(
        url,
        json={"fields": {"labels": ["has space"], "customfield_10016": "five", "status": "Done"}},
    )
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "labels": "The label 'has space' contains spaces which is invalid.",
        "customfield_10016": "Operation value must be a number",
        "status": "Field 'status' cannot be set. It is not on the appropriate screen, or unknown.",
    }
    v3 = session.put(
        f"{BASE}/rest/api/3/issue/{issue.key}", json={"fields": {"description": "plain"}}
    )
    assert v3.status_code == 400 and "Atlassian Document" in v3.json()["errors"]["description"]
    missing = session.put(f"{BASE}/rest/api/2/issue/NOPE-1", json={"fields": {}})
    assert missing.status_code == 404


def test_every_change_bumps_updated(world: World) -> None:
    clock = [ANCHOR + timedelta(days=2)]
    backend = JiraBackend(world, clock=lambda: clock[0])
    issue = backend.ordered_issues()[1]
    for step, change in enumerate(
        (
            lambda: backend.add_comment(issue.key, "c"),
            lambda: backend.set_status(issue, "Blocked" if issue.status != "Blocked" else "Done"),
            lambda: backend.update_issue(issue.key, summary="s"),
        )
    ):
        clock[0] += timedelta(minutes=step + 1)
        change()
        assert issue.updated == clock[0]


def test_expired_session_fault_gets_a_jira_401(http: tuple[requests.Session, SandboxApp]) -> None:
    session, app = http
    app.faults.add(Fault(kind="expired_session", count=1))
    response = session.get(f"{BASE}/rest/api/2/myself")
    assert response.status_code == 401 and response.json()["errors"] == {}
    assert session.get(f"{BASE}/rest/api/2/myself").status_code == 200


def test_reset_through_the_control_api(
    http: tuple[requests.Session, SandboxApp], backend: JiraBackend, world: World
) -> None:
    session, _ = http
    key = backend.ordered_issues()[2].key
    session.delete(f"{BASE}/rest/api/2/issue/{key}")
    assert backend.get_issue(key) is None
    assert session.post(f"{BASE}/_sandbox/reset").json() == {"reset": True}
    assert backend.issue(key).summary == next(i.summary for i in world.issues if i.key == key)


def test_limits_and_bulk_settings_through_the_control_api(
    http: tuple[requests.Session, SandboxApp], backend: JiraBackend
) -> None:
    session, _ = http
    backend.limits.clock = lambda: 0.0  # one second that does not pass
    limits = session.post(f"{BASE}/_sandbox/jira/limits", json={"per_second": 1})
    assert limits.json()["per_second"] == 1
    first = session.get(f"{BASE}/rest/api/2/field")
    assert first.headers["X-RateLimit-Limit"] == "1"
    refused = session.get(f"{BASE}/rest/api/2/field")  # the same second
    assert refused.status_code == 429 and refused.headers["RateLimit-Reason"] == (
        "jira-burst-based"
    )
    assert session.get(f"{BASE}/rest/api/2/myself").status_code == 200  # per endpoint
    bad = session.post(f"{BASE}/_sandbox/jira/limits", json={"per_second": 0})
    assert bad.status_code == 400
    session.post(f"{BASE}/_sandbox/jira/limits", json={"per_second": None})
    assert "X-RateLimit-Limit" not in session.get(f"{BASE}/rest/api/2/field").headers
    key = backend.ordered_issues()[0].key
    settings = session.post(
        f"{BASE}/_sandbox/jira/bulk", json={"polls_to_complete": 3, "refuse": {key: "locked"}}
    )
    assert settings.json() == {"polls_to_complete": 3, "refused": [key]}
    assert backend.bulk.refused == {key: "locked"}


def test_a_world_of_100000_issues_loads_and_searches() -> None:
    big = generate_world(issues=100_000, accounts=2_000, seed=1, anchor=ANCHOR)
    backend = JiraBackend(big)
    assert len(backend.issues) == 100_000
    project = big.projects[0].key
    page, _ = backend.search.token_page(f"project = {project}", None, 5000)
    assert page and all(i.project_key == project for i in page)
    assert backend.search.count("statusCategory = Done") == sum(
        1 for i in big.issues if i.status == "Done"
    )
    backend.reset()
    assert len(backend.by_id) == 100_000
