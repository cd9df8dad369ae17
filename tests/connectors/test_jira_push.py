"""Writes to the sandbox Jira: one call per change, idempotent comments, rejected records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.exceptions import RejectedRecord
from connectors.jira import JiraConnector
from connectors.sandbox.schema import JIRA_FLAG_FIELD_ID, JIRA_STORY_POINTS_FIELD_ID
from connectors.sandbox.stack import Sandbox
from mappings.text import MARKER_PHRASE
from tests.connectors.test_jira_pull import ANCHOR, connector_for

MARKER = "[jira-crm-sync:flag:at_risk:001Dn0000000007IAA]"


@pytest.fixture(params=["in-process", "https"])
def site(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Sandbox, JiraConnector, str]]:
    box = Sandbox(issues=60, accounts=5, seed=4, anchor=ANCHOR)
    if request.param == "https":
        ends = box.serve(tmp_path)
        try:
            connector = connector_for(box, ends.jira_url, ends.ca_bundle)
            connector.connect()
            box.jira_app.stats.reset()
            yield box, connector, sorted(box.jira.issues)[5]
        finally:
            box.stop()
    else:
        with box.in_process() as ends:
            connector = connector_for(box, ends.jira_url)
            connector.connect()
            box.jira_app.stats.reset()
            yield box, connector, sorted(box.jira.issues)[5]


def calls(box: Sandbox) -> dict[str, int]:
    return dict(box.jira_app.stats.snapshot()["by_endpoint"])


def test_labels_added_and_removed_in_one_call(site: tuple[Sandbox, JiraConnector, str]) -> None:
    box, connector, key = site
    box.jira.update_issue(key, labels=["keep", "customer-watch"])
    assert connector.update_issue(
        key, add_labels=["customer-at-risk"], remove_labels=["customer-watch"]
    )
    assert sorted(box.jira.issue(key).labels) == ["customer-at-risk", "keep"]
    assert calls(box) == {"PUT /rest/api/2/issue/{key}": 1}  # no re-GET of the issue


def test_labels_and_field_together_and_nothing_to_do(
    site: tuple[Sandbox, JiraConnector, str],
) -> None:
    box, connector, key = site
    connector.update_issue(key, add_labels=["x"], fields={JIRA_FLAG_FIELD_ID: "at_risk"})
    assert not connector.update_issue(key)
    connector.set_field(key, JIRA_STORY_POINTS_FIELD_ID, 5)
    assert box.jira.custom_values[key][JIRA_FLAG_FIELD_ID] == "at_risk"
    assert "x" in box.jira.issue(key).labels
    assert box.jira.issue(key).story_points == 5
    assert calls(box) == {"PUT /rest/api/2/issue/{key}": 2}


def test_rejected_field_value_is_a_rejected_record(
    site: tuple[Sandbox, JiraConnector, str],
) -> None:
    _, connector, key = site
    with pytest.raises(RejectedRecord) as caught:
        connector.set_field(key, JIRA_STORY_POINTS_FIELD_ID, "five")
    assert caught.value.key == key
    assert caught.value.errors[0].fields == (JIRA_STORY_POINTS_FIELD_ID,)
    assert caught.value.errors[0].code == "HTTP_400"


def test_deleted_issue_is_a_rejected_record(site: tuple[Sandbox, JiraConnector, str]) -> None:
    box, connector, key = site
    box.jira.delete_issue(key)
    with pytest.raises(RejectedRecord, match=key):
        connector.update_issue(key, add_labels=["x"])
    with pytest.raises(RejectedRecord, match="HTTP_404"):
        connector.add_comment_once(key, f"gone {MARKER}", MARKER)


def test_comment_with_marker_is_not_posted_twice(
    site: tuple[Sandbox, JiraConnector, str],
) -> None:
    box, connector, key = site
    box.jira.add_comment(key, "a person's comment")
    body = f"Customer is at risk: CSAT 2.8/5 below 3.5. {MARKER}"
    first_id, posted = connector.add_comment_once(key, body, MARKER)
    assert posted
    # A crash after the post and before the state commit: the retry finds the comment.
    again_id, posted_again = connector.add_comment_once(key, body, MARKER)
    assert (again_id, posted_again) == (first_id, False)
    assert [c.body for c in box.jira.comments[key]] == ["a person's comment", body]
    assert calls(box) == {
        "GET /rest/api/2/issue/{key}/comment": 2,
        "POST /rest/api/2/issue/{key}/comment": 1,
    }
    assert connector.find_comment(key, "[no such marker]") is None
    with pytest.raises(ValueError, match="marker"):
        connector.add_comment_once(key, "no marker here", MARKER)


def test_comment_in_chinese_round_trips(site: tuple[Sandbox, JiraConnector, str]) -> None:
    box, connector, key = site
    body = '客户满意度下降 "引号" \\ 反斜杠 [jira-crm-sync:中文]'
    comment_id = connector.add_comment(key, body)
    assert connector.find_comment(key, "[jira-crm-sync:中文]") == comment_id
    assert box.jira.comments[key][-1].body == body


def test_issue_property_set_and_get(site: tuple[Sandbox, JiraConnector, str]) -> None:
    box, connector, key = site
    assert connector.get_property(key, "jira-crm-sync") is None
    value = {"flag": "at_risk", "since": "2026-03-01", "客户": "华信"}
    connector.set_property(key, "jira-crm-sync", value)
    assert connector.get_property(key, "jira-crm-sync") == value
    assert box.jira.properties[key]["jira-crm-sync"] == value
    assert calls(box) == {
        "GET /rest/api/2/issue/{key}/properties/{propertyKey}": 2,
        "PUT /rest/api/2/issue/{key}/properties/{propertyKey}": 1,
    }
    with pytest.raises(RejectedRecord):
        connector.set_property(key, "too-big", {"x": "y" * 40_000})


def test_marker_search_finds_the_issues_and_duplicates_can_be_deleted(
    site: tuple[Sandbox, JiraConnector, str],
) -> None:
    box, connector, key = site
    other = sorted(box.jira.issues)[9]
    ours = box.jira.add_comment(key, f"At risk. \\{MARKER[:-1]}\\]")
    box.jira.add_comment(other, "jira, the crm and a sync flag")  # the words, out of order
    person = box.jira.world.jira_users[0]
    box.jira.add_comment(other, "a person's", author_account_id=person.account_id)
    box.jira_app.stats.reset()
    me = box.jira.me

    assert connector.keys_with_comment_text(MARKER_PHRASE) == {key}
    infos = list(connector.comment_infos(other))
    assert [(i.body, i.author) for i in infos] == [
        ("jira, the crm and a sync flag", me.account_id if box.jira.cloud else me.name),
        ("a person's", person.account_id if box.jira.cloud else person.name),
    ]
    assert connector.delete_comment(key, str(ours.id))
    assert not connector.delete_comment(key, str(ours.id))  # already gone: not an error
    assert box.jira.comments[key] == []
    assert connector.keys_with_comment_text(MARKER_PHRASE) == set()
    search = "GET /rest/api/2/search/jql" if box.jira.cloud else "GET /rest/api/2/search"
    assert calls(box) == {
        search: 2,  # keys only, one page each
        "GET /rest/api/2/issue/{key}/comment": 1,
        "DELETE /rest/api/2/issue/{key}/comment/{id}": 2,
    }
