"""Jira Cloud bulk edit through the real ``jira`` client against the sandbox: submit, the
task's progress over polls, per-issue failures, the limits, the permission, Data Center,
faults. In-process, and the round trip once over HTTPS on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.exceptions import RemoteError
from connectors.jira import JiraConnector
from connectors.jira.bulk import BulkEdit, bulk_summary
from connectors.sandbox.faults import Fault
from connectors.sandbox.schema import JIRA_FLAG_FIELD_ID
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import ANCHOR, connector_for

SUBMIT = "POST /rest/api/3/bulk/issues/fields"
POLL = "GET /rest/api/3/bulk/queue/{taskId}"
RISK = BulkEdit(add_labels=("customer-at-risk",), text_field=(JIRA_FLAG_FIELD_ID, "at_risk"))


@pytest.fixture
def site() -> Iterator[tuple[Sandbox, JiraConnector]]:
    box = Sandbox(issues=40, accounts=5, seed=4, anchor=ANCHOR)
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url)
        connector.connect()
        connector.bulk.sleep = lambda seconds: None
        box.jira_app.stats.reset()
        yield box, connector


def _calls(box: Sandbox) -> dict[str, int]:
    return dict(box.jira_app.stats.snapshot()["by_endpoint"])


def _ids(box: Sandbox, keys: list[str]) -> list[str]:
    return [str(box.jira.issue(key).id) for key in keys]


def test_one_submit_edits_every_issue_when_the_task_completes_over_polls(tmp_path: Path) -> None:
    box = Sandbox(issues=40, accounts=5, seed=4, anchor=ANCHOR)
    ends = box.serve(tmp_path)  # over HTTPS on loopback, once
    try:
        connector = connector_for(box, ends.jira_url, ends.ca_bundle)
        box.jira.bulk.polls_to_complete = 2  # the first read sees it RUNNING
        waits: list[float] = []
        connector.bulk.sleep = waits.append
        keys = sorted(box.jira.issues)[:6]
        box.jira.update_issue(keys[0], labels=["keep"])
        task = connector.bulk.submit(RISK, _ids(box, keys))
        assert "customer-at-risk" not in box.jira.issue(keys[1]).labels  # queued, not run
        first = connector.bulk.progress(task)
        assert first is not None and first.status == "RUNNING" and not first.finished
        done = connector.bulk.wait(task)
        assert done is not None and done.complete
        assert done.processed == frozenset(_ids(box, keys)) and done.failed == {}
        assert waits == []  # the second read found it COMPLETE: no pause
        assert box.jira.issue(keys[0]).labels == ["keep", "customer-at-risk"]
        assert all(box.jira.custom_values[k][JIRA_FLAG_FIELD_ID] == "at_risk" for k in keys)
        assert box.jira.bulk.notifications == 0  # sendBulkNotification: false
        stats = _calls(box)
        assert stats[SUBMIT] == 1 and stats[POLL] == 2
    finally:
        box.stop()


def test_per_issue_failures_and_invalid_issues_are_reported_apart(
    site: tuple[Sandbox, JiraConnector],
) -> None:
    box, connector = site
    keys = sorted(box.jira.issues)[:4]
    box.jira.bulk.refused[keys[1]] = "Field labels is not on the issue's edit screen."
    gone = str(box.jira.issue(keys[3]).id)
    box.jira.delete_issue(keys[3])
    done = connector.bulk.wait(connector.bulk.submit(RISK, [*_ids(box, keys[:3]), gone]))
    assert done is not None and done.complete
    assert done.failed == {
        str(box.jira.issue(keys[1]).id): ("Field labels is not on the issue's edit screen.",)
    }
    assert done.processed == frozenset(_ids(box, [keys[0], keys[2]]))
    assert done.invalid == 1
    assert "customer-at-risk" not in box.jira.issue(keys[1]).labels


def test_clearing_and_removing(site: tuple[Sandbox, JiraConnector]) -> None:
    box, connector = site
    key = sorted(box.jira.issues)[0]
    connector.bulk.wait(connector.bulk.submit(RISK, _ids(box, [key])))
    clear = BulkEdit(remove_labels=("customer-at-risk",), text_field=(JIRA_FLAG_FIELD_ID, None))
    connector.bulk.wait(connector.bulk.submit(clear, [key]))  # by key works too
    assert "customer-at-risk" not in box.jira.issue(key).labels
    assert box.jira.custom_values[key][JIRA_FLAG_FIELD_ID] is None


def test_the_limits_and_the_payload_schema_are_enforced(
    site: tuple[Sandbox, JiraConnector],
) -> None:
    box, connector = site
    with pytest.raises(ValueError, match="1 to 1000"):
        connector.bulk.submit(RISK, ["1"] * 1001)
    url = connector.client.url_v3("bulk/issues/fields")
    good = RISK.payload(["10000"])

    def answer(body: dict[str, object]) -> tuple[int, str]:
        response = connector.client._jira._session.post(url, data=json.dumps(body))
        return response.status_code, response.text

    bad = [
        {**good, "selectedIssueIdsOrKeys": [str(n) for n in range(1001)]},
        {**good, "selectedActions": [f"customfield_{n}" for n in range(201)]},
        {**good, "selectedActions": ["labels"]},  # the text field edited but not selected
        {**good, "notify": False},
        {**good, "editedFieldsInput": {"priority": {"priorityId": "1"}}},
    ]
    answers = []
    for body in bad:
        with pytest.raises(Exception) as caught:  # the client raises JIRAError on a 400
            answer(body)
        answers.append(getattr(caught.value, "status_code", None))
    assert answers == [400] * len(bad)
    assert box.jira.bulk.tasks == {}


def test_without_bulk_change_the_submit_is_refused_and_check_says_so(
    site: tuple[Sandbox, JiraConnector],
) -> None:
    box, connector = site
    assert connector.bulk.unavailable() is None and connector.bulk.permission() is None
    box.jira.denied_permissions.add("BULK_CHANGE")
    reason = connector.bulk.permission()
    assert reason is not None and "BULK_CHANGE" in reason
    assert "one PUT per issue" in bulk_summary(reason)
    with pytest.raises(RemoteError) as caught:
        connector.bulk.submit(RISK, ["10000"])
    assert caught.value.status == 403 and "Bulk Change permission" in caught.value.message


def test_data_center_has_no_bulk_edit() -> None:
    box = Sandbox(issues=20, accounts=5, seed=4, anchor=ANCHOR, jira_mode="server")
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url)
        assert connector.bulk.unavailable() == "Jira Data Center/Server has no REST bulk edit"
        assert connector.bulk.permission() == connector.bulk.unavailable()
    assert not any("bulk" in route.template for route in box.jira.router.routes)


def test_a_5xx_submit_is_retried_and_an_unknown_task_reads_as_none(
    site: tuple[Sandbox, JiraConnector],
) -> None:
    box, connector = site
    box.jira_app.faults.add(Fault(kind="500", count=1, endpoint="bulk/issues/fields"))
    task = connector.bulk.submit(RISK, _ids(box, sorted(box.jira.issues)[:2]))
    assert _calls(box)[SUBMIT] == 2 and list(box.jira.bulk.tasks) == [task]
    assert connector.bulk.progress("99999") is None


def test_a_task_still_running_when_the_wait_is_over_is_returned_unfinished(
    site: tuple[Sandbox, JiraConnector],
) -> None:
    box, connector = site
    box.jira.bulk.polls_to_complete = 50
    ticks = iter(range(100))
    connector.bulk.clock = lambda: float(next(ticks))
    waits: list[float] = []
    connector.bulk.sleep = waits.append
    found = connector.bulk.wait(connector.bulk.submit(RISK, ["10000"]), max_wait=3.0)
    assert found is not None and found.status == "RUNNING"
    assert waits == [0.5, 1.0]  # backoff, cut off by the wait's end
