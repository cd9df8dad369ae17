"""Pulling issues and listing keys against the sandbox Jira, with call counts asserted."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import jql
from connectors.calls import CallMeter
from connectors.jira import (
    IssueCursor,
    JiraConnector,
    JiraSettings,
    RawIssue,
    jira_meter,
    open_jira,
)
from connectors.sandbox.jira.search import PAGE_RULES, PageRule
from connectors.sandbox.stack import Sandbox

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)
FIELDS = ["summary", "status", "labels", "customfield_10100", "customfield_10016"]


class Clock:
    """One controllable clock shared by the sandbox and the connector."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def connector_for(
    box: Sandbox,
    url: str,
    ca_bundle: Path | None = None,
    clock: Clock | None = None,
    meter: CallMeter | None = None,
    **overrides: object,
) -> JiraConnector:
    """A connector signed in the way the sandbox's mode expects."""
    c = box.credentials
    auth: dict[str, object] = (
        {"email": c.jira_email, "api_token": c.jira_api_token}
        if box.jira_mode == "cloud"
        else {"personal_access_token": c.jira_pat}
    )
    options: dict[str, object] = {"projects": tuple(box.jira.project_order), **auth, **overrides}
    settings = JiraSettings(
        url=url,
        ca_bundle=str(ca_bundle) if ca_bundle else None,
        **options,  # type: ignore[arg-type]
    )
    return open_jira(settings, meter or jira_meter(), clock=clock)


def pull_all(
    connector: JiraConnector, since: IssueCursor | None = None
) -> tuple[list[RawIssue], IssueCursor | None, list[int]]:
    pull = connector.pull_issues(FIELDS, since)
    issues: list[RawIssue] = []
    sizes: list[int] = []
    for page in pull:
        sizes.append(len(page))
        issues.extend(page)
    return issues, pull.cursor, sizes


@pytest.fixture
def cloud() -> Iterator[tuple[Sandbox, str]]:
    box = Sandbox(issues=3000, accounts=20, seed=7, anchor=ANCHOR)
    with box.in_process() as ends:
        yield box, ends.jira_url


def test_full_pull_on_cloud_uses_the_minimum_of_calls(cloud: tuple[Sandbox, str]) -> None:
    box, url = cloud
    meter = jira_meter()
    connector = connector_for(box, url, meter=meter)
    issues, cursor, sizes = pull_all(connector)

    n = len(box.jira.issues)
    assert n == 3000
    assert len(issues) == n and len({i["key"] for i in issues}) == n
    assert all(s == 100 for s in sizes[:-1])
    assert set(issues[0]["fields"]) == {*FIELDS, "updated"}
    stats = box.jira_app.stats.snapshot()
    assert stats["by_endpoint"] == {
        "GET /rest/api/2/serverInfo": 1,
        "GET /rest/api/2/myself": 1,
        "GET /rest/api/2/field": 1,
        "GET /rest/api/2/search/jql": math.ceil(n / 100),
    }
    assert stats["writes"] == 0
    assert meter.snapshot() == stats  # our meter sees exactly what the server saw
    assert cursor is not None
    newest = max(box.jira.issues.values(), key=lambda i: i.updated).updated
    assert cursor.updated_ms == int(newest.timestamp() * 1000)


def test_key_listing_takes_5000_a_page_and_shows_deletes(cloud: tuple[Sandbox, str]) -> None:
    box, url = cloud
    connector = connector_for(box, url)
    connector.connect()
    box.jira_app.stats.reset()

    pages = list(connector.list_keys())
    assert [len(p) for p in pages] == [3000]
    assert box.jira_app.stats.snapshot()["by_endpoint"] == {"GET /rest/api/2/search/jql": 1}
    listed = {key for page in pages for _, key in page}
    assert listed == set(box.jira.issues)
    ids = {issue_id for page in pages for issue_id, _ in page}
    assert ids == {str(i.id) for i in box.jira.issues.values()}

    gone = sorted(listed)[17]
    box.jira.delete_issue(gone)
    after = {key for page in connector.list_keys() for _, key in page}
    assert listed - after == {gone}


def test_server_pages_by_start_at_at_1000(tmp_path: Path) -> None:
    box = Sandbox(issues=2500, accounts=10, seed=3, jira_mode="server", anchor=ANCHOR)
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url)
        issues, _, sizes = pull_all(connector)
        assert not connector.client.is_cloud  # detected from serverInfo (deployment auto)
        assert sizes == [1000, 1000, 500]
        assert len({i["key"] for i in issues}) == 2500
        keys = [len(p) for p in connector.list_keys()]
        assert keys == [1000, 1000, 500]  # Server caps key pages at its maximum too
        assert box.jira_app.stats.snapshot()["by_endpoint"] == {
            "GET /rest/api/2/serverInfo": 1,
            "GET /rest/api/2/myself": 1,
            "GET /rest/api/2/field": 1,
            "GET /rest/api/2/search": 6,
        }


def test_server_page_size_follows_what_the_server_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        PAGE_RULES, "search", PageRule(default=50, maximum=300, maximum_identity=300)
    )
    box = Sandbox(issues=1000, accounts=10, seed=3, jira_mode="server", anchor=ANCHOR)
    with box.in_process() as ends:
        _, _, sizes = pull_all(connector_for(box, ends.jira_url))
    assert sizes == [300, 300, 300, 100]
    assert box.jira_app.stats.snapshot()["by_endpoint"]["GET /rest/api/2/search"] == 4


def test_full_pull_over_https(tmp_path: Path) -> None:
    box = Sandbox(issues=2000, accounts=10, seed=5, anchor=ANCHOR)
    ends = box.serve(tmp_path)
    try:
        meter = jira_meter()
        connector = connector_for(box, ends.jira_url, ends.ca_bundle, meter=meter)
        issues, _, _ = pull_all(connector)
        keys = sum(len(p) for p in connector.list_keys())
    finally:
        box.stop()
    assert len(issues) == keys == 2000
    stats = box.jira_app.stats.snapshot()
    assert stats["by_endpoint"]["GET /rest/api/2/search/jql"] == 20 + 1
    assert stats["total"] == 3 + 21
    assert meter.snapshot() == stats


def test_incremental_pull_across_a_time_zone_boundary() -> None:
    clock = Clock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    box = Sandbox(issues=1500, accounts=10, seed=11, anchor=ANCHOR)
    box.jira.clock = clock
    keys = sorted(box.jira.issues)
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url, clock=clock)
        assert connector.connect().time_zone == "Asia/Shanghai"
        box.jira.update_issue(keys[10], summary="changed at 08:00 UTC")
        clock.advance(hours=4)
        box.jira.update_issue(keys[11], summary="changed at 12:00 UTC")
        first, cursor, _ = pull_all(connector)
        assert len(first) == 1500 and cursor is not None
        assert cursor.updated_ms == int(clock.now.timestamp() * 1000)

        # 16:30 UTC is already the next day (00:30) in the user's zone, Asia/Shanghai.
        clock.now = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
        clock.advance(minutes=1)
        box.jira.update_issue(keys[3], labels=["changed"])
        clock.advance(minutes=1)
        box.jira.set_status(box.jira.issue(keys[700]), "Blocked")
        clock.advance(minutes=1)

        box.jira_app.stats.reset()
        changed, cursor, _ = pull_all(connector, cursor)
        assert sorted(i["key"] for i in changed) == [keys[3], keys[700]]
        assert box.jira_app.stats.snapshot()["by_endpoint"] == {"GET /rest/api/2/search/jql": 1}
        assert cursor is not None
        assert cursor.updated_ms == int((clock.now - timedelta(minutes=1)).timestamp() * 1000)

        # The first cursor (12:00 UTC) written as a zone-less date is read in Shanghai,
        # 8 hours earlier: it returns issues that did not change since the first pull.
        naive = jql.all_of(connector.scope_jql(), 'updated >= "2026-03-01 12:00"')
        naive_keys = {i.key for i in box.jira.search.matches(naive)}
        assert {keys[10], keys[11]} <= naive_keys

        again, _, _ = pull_all(connector, cursor)
        assert again == []  # both are inside the overlap window, and not delivered twice


def test_change_landing_inside_the_overlap_is_pulled_once() -> None:
    clock = Clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    box = Sandbox(issues=400, accounts=10, seed=2, anchor=ANCHOR)
    box.jira.clock = clock
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url, clock=clock)
        _, cursor, _ = pull_all(connector)
        key = sorted(box.jira.issues)[42]
        clock.advance(minutes=10)
        box.jira.update_issue(sorted(box.jira.issues)[1], summary="moves the cursor")
        _, cursor, _ = pull_all(connector, cursor)
        assert cursor is not None
        high = datetime.fromtimestamp(cursor.updated_ms / 1000, UTC)

        # A change committed late, stamped 2 minutes before the cursor (inside the overlap).
        box.jira.update_issue(key, labels=["late"], updated=high - timedelta(minutes=2))
        clock.advance(minutes=1)
        late, cursor, _ = pull_all(connector, cursor)
        assert [i["key"] for i in late] == [key]
        assert late[0]["fields"]["labels"] == ["late"]

        clock.advance(minutes=1)
        repeat, cursor2, _ = pull_all(connector, cursor)
        assert repeat == []
        assert cursor2 == cursor


def test_cursor_round_trips_through_json() -> None:
    cursor = IssueCursor(1772323200000, frozenset({("A-1", 1772323100000), ("B-2", 1772323200000)}))
    assert IssueCursor.from_json(cursor.to_json()) == cursor


def test_pull_asks_only_for_the_given_fields(cloud: tuple[Sandbox, str]) -> None:
    box, url = cloud
    connector = connector_for(box, url, projects=(box.jira.project_order[0],))
    pull = connector.pull_issues(["customfield_10100"])
    page = next(iter(pull))
    assert set(page[0]["fields"]) == {"customfield_10100", "updated"}
    assert {i["key"].split("-")[0] for i in page} == {box.jira.project_order[0]}
