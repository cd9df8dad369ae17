"""A few Jira calls in flight (connectors.jira.lanes) against the in-process sandbox: up to
WIDTH at once, never more, results in the items' order, each lane on its own client, a
failure raised only once every call has ended, the twins closed with the lanes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from connectors.exceptions import ConnectorError
from connectors.jira import CommentInfo, JiraConnector
from connectors.jira.lanes import WIDTH, Lanes
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import ANCHOR, connector_for


@pytest.fixture
def site() -> Iterator[tuple[Sandbox, JiraConnector]]:
    box = Sandbox(issues=40, accounts=5, seed=4, anchor=ANCHOR)
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url)
        connector.connect()
        yield box, connector


def slow_comment_reads(box: Sandbox) -> dict[str, int]:
    """Delay every comment read (so the others are sent meanwhile) and count how many are
    in flight."""
    app, lock = box.jira_app, threading.Lock()
    original = app.handle
    flight = {"now": 0, "most": 0, "ended": 0}

    def handle(request: SandboxRequest) -> SandboxResponse:
        if not request.path.endswith("/comment"):
            return original(request)
        with lock:
            flight["now"] += 1
            flight["most"] = max(flight["most"], flight["now"])
        try:
            time.sleep(0.03)
            return original(request)
        finally:
            with lock:
                flight["now"] -= 1
                flight["ended"] += 1

    app.handle = handle  # type: ignore[method-assign]
    return flight


def _infos(jira: JiraConnector, key: str) -> list[CommentInfo]:
    return list(jira.comment_infos(key))


def test_reads_run_a_few_at_once_and_come_back_in_order(
    site: tuple[Sandbox, JiraConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, jira = site
    closed: list[int] = []
    close = JiraConnector.close

    def closing(self: JiraConnector) -> None:
        closed.append(id(self))
        close(self)

    monkeypatch.setattr(JiraConnector, "close", closing)
    keys = sorted(box.jira.issues)[:12]
    for number, key in enumerate(keys):
        box.jira.add_comment(key, f"comment {number}")
    flight = slow_comment_reads(box)
    clients: set[int] = set()

    def read(client: JiraConnector, key: str) -> list[CommentInfo]:
        clients.add(id(client.client))
        return _infos(client, key)

    with Lanes(jira) as lanes:
        got = lanes.map(read, keys)
        twins = list(lanes._twins)
    assert [[c.body for c in infos][-1] for infos in got] == [
        f"comment {n}" for n in range(len(keys))
    ]
    assert 1 < flight["most"] <= WIDTH
    assert len(clients) == WIDTH and id(jira.client) not in clients  # a client per lane
    assert sorted(closed) == sorted(id(twin) for twin in twins)  # and not the connector


def test_one_item_runs_on_the_connector_itself_without_threads(
    site: tuple[Sandbox, JiraConnector],
) -> None:
    box, jira = site
    key = sorted(box.jira.issues)[0]
    with Lanes(jira) as lanes:
        assert lanes.map(lambda client, k: client is jira, [key]) == [True]
        assert lanes._twins == []


def test_a_failure_is_raised_after_every_other_read_ended(
    site: tuple[Sandbox, JiraConnector],
) -> None:
    box, jira = site
    keys = sorted(box.jira.issues)[:8]
    flight = slow_comment_reads(box)

    def read(client: JiraConnector, key: str) -> list[CommentInfo]:
        infos = _infos(client, key)
        if key == keys[1]:
            raise ConnectorError(f"cannot read {key}", side="jira")
        return infos

    with Lanes(jira) as lanes, pytest.raises(ConnectorError, match=f"cannot read {keys[1]}"):
        lanes.map(read, keys)
    assert flight["now"] == 0 and flight["ended"] == len(keys)  # none left running
