"""Jira issues to work items: every field, and what real payloads do to them."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

from mappings.model import FixVersion, WorkItem
from mappings.normalise_jira import (
    adf_to_text,
    canonical_order,
    is_canonical,
    issue_sort_key,
    link_value,
    normalise_issue,
    normalise_issues,
)
from mappings.rules import FieldIds
from tests.mappings.factories import ACME, FIELDS, days_ago, issue, jira_time

VERSION = {
    "id": "10001",
    "name": "Apollo 2.0",
    "released": False,
    "archived": False,
    "releaseDate": "2026-12-01",
}


def test_a_full_issue() -> None:
    raw = issue(
        "APOLLO-12",
        account=f" {ACME} ",
        status="In Progress",
        due="2026-11-30",
        labels=["backend", "blocked"],
        versions=[VERSION],
        points=5,
        estimate=7200,
        parent="APOLLO-1",
    )
    item = normalise_issue(raw, FIELDS)
    assert item.key == "APOLLO-12" and item.number == 12
    assert item.project_key == "APOLLO" and item.project_name == "Apollo Rollout"
    assert item.issue_type == "Story" and not item.is_epic and not item.is_subtask
    assert item.status == "In Progress" and item.status_category == "in_progress"
    assert item.assignee == "Dana Developer" and item.priority == "Medium"
    assert item.created == days_ago(30).replace(microsecond=0)
    assert item.resolved is None
    assert item.due == date(2026, 11, 30)
    assert item.story_points == 5.0
    assert item.original_estimate == 7200 and item.remaining_estimate is None
    assert item.labels == ("backend", "blocked")
    assert item.fix_versions == (
        FixVersion("10001", "Apollo 2.0", False, False, date(2026, 12, 1)),
    )
    assert item.parent_key == "APOLLO-1" and item.epic_key == "APOLLO-1"
    assert item.link_value == ACME  # stripped, not yet resolved


def test_status_categories() -> None:
    def category(key: str | None, resolved: bool = False) -> str:
        raw = issue("A-1")
        raw["fields"]["status"] = {"name": "Odd", "statusCategory": {"key": key}}
        raw["fields"]["resolutiondate"] = jira_time(days_ago(1)) if resolved else None
        return normalise_issue(raw, FIELDS).status_category

    assert category("new") == "todo"
    assert category("indeterminate") == "in_progress"
    assert category("done") == "done"
    # "undefined" or missing: resolved means done, else not started
    assert category("undefined") == "todo"
    assert category(None, resolved=True) == "done"


def test_resolution_date_counts_only_when_done() -> None:
    raw = issue("A-1", status="In Progress")
    raw["fields"]["resolutiondate"] = jira_time(days_ago(3))  # reopened issue
    assert normalise_issue(raw, FIELDS).resolved is None
    done = normalise_issue(issue("A-2", status="Done", resolved=days_ago(3)), FIELDS)
    assert done.resolved == days_ago(3).replace(microsecond=0)


def test_done_date_is_when_the_item_entered_the_done_category() -> None:
    # Done with no resolution (a workflow that sets none): the category change dates it.
    entered = days_ago(4)
    bare = issue(
        "A-1",
        status="Done",
        resolutiondate=None,
        statuscategorychangedate=jira_time(entered),
    )
    assert normalise_issue(bare, FIELDS).resolved == entered.replace(microsecond=0)
    # A resolution kept from before a reopening dates the first resolve: the category
    # change (back to done) wins.
    stale = issue("A-2", status="Done", resolved=days_ago(40))
    stale["fields"]["statuscategorychangedate"] = jira_time(entered)
    assert normalise_issue(stale, FIELDS).resolved == entered.replace(microsecond=0)
    # A site without the field (older Server): the resolution date, as before.
    server = issue("A-3", status="Done", resolved=days_ago(9))
    assert normalise_issue(server, FIELDS).resolved == days_ago(9).replace(microsecond=0)
    # Not done: no done date, whatever the category last changed to.
    open_ = issue("A-4", status="In Progress", statuscategorychangedate=jira_time(entered))
    assert normalise_issue(open_, FIELDS).resolved is None
    # An unreadable category-change time falls back to the resolution date.
    garbled = issue("A-5", status="Done", resolved=days_ago(2), statuscategorychangedate="soon")
    assert normalise_issue(garbled, FIELDS).resolved == days_ago(2).replace(microsecond=0)


def test_site_zones_parse_to_the_same_moment() -> None:
    moment = datetime(2026, 3, 2, 1, 30, 5, 123000, tzinfo=UTC)
    for text in (
        "2026-03-02T09:30:05.123+0800",
        "2026-03-01T20:30:05.123-0500",
        "2026-03-02T01:30:05.123+0000",
    ):
        raw = issue("A-1", status="Done", updated=text, statuscategorychangedate=text)
        item = normalise_issue(raw, FIELDS)
        assert item.updated == moment and item.resolved == moment


def test_zones_are_kept_and_compare_correctly() -> None:
    raw = issue("A-1")
    raw["fields"]["created"] = "2026-09-06T16:13:46.019+08:00"
    item = normalise_issue(raw, FIELDS)
    assert item.created == datetime(2026, 9, 6, 8, 13, 46, 19000, tzinfo=UTC)


def test_missing_fields_nulls_and_unknown_custom_fields() -> None:
    bare = normalise_issue({"id": "1", "key": "ZED-7", "fields": {}}, FIELDS)
    assert bare.project_key == "ZED" and bare.number == 7
    assert bare.status_category == "todo" and bare.summary == "" and bare.labels == ()
    assert bare.assignee is None and bare.priority is None and bare.due is None
    nulls = issue(
        "ZED-8",
        priority=None,
        assignee=None,
        labels=[],
        fixVersions=None,
        issuetype=None,
        status=None,
        project=None,
        customfield_99999={"x": [1]},
    )
    nulls["fields"]["labels"] = None
    item = normalise_issue(nulls, FIELDS)
    assert item.project_key == "ZED" and item.issue_type == "" and item.status == ""
    assert normalise_issue({"key": "Q-1"}, FIELDS).key == "Q-1"
    assert normalise_issue({"key": "Q-2", "fields": None}, FieldIds()).link_value is None


def test_garbage_values_do_not_break_normalising() -> None:
    raw = issue(
        "A-1",
        duedate="soon",
        timeoriginalestimate="3600",
        timeestimate=-5,
        customfield_10016="3.5",
        labels=[1, "x"],
    )
    raw["fields"]["created"] = "yesterday"
    raw["fields"]["fixVersions"] = ["not a dict", {"name": "Only a name"}]
    item = normalise_issue(raw, FIELDS)
    assert item.due is None and item.created is None
    assert item.original_estimate == 3600 and item.remaining_estimate is None
    assert item.story_points == 3.5
    assert item.labels == ("1", "x")
    assert item.fix_versions == (FixVersion("Only a name", "Only a name", False, False, None),)


def test_adf_descriptions_are_tolerated_and_readable() -> None:
    adf = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "heading", "content": [{"type": "text", "text": "Goal"}]},
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Ship "},
                    {"type": "mention", "attrs": {"id": "1", "text": "@Dana"}},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "数据同步"},
                ],
            },
        ],
    }
    normalise_issue(issue("A-1", description=adf), FIELDS)  # no error
    assert adf_to_text(adf) == "Goal\nShip @Dana\n数据同步"
    assert adf_to_text("wiki *text*") == "wiki *text*"
    assert adf_to_text(None) == ""


def test_link_value_shapes() -> None:
    assert link_value("  ") is None
    assert link_value({"value": f" {ACME}"}) == ACME
    assert link_value([None, "", ACME]) == ACME
    assert link_value(12345) == "12345"
    assert link_value(True) is None
    assert link_value({"nothing": 1}) is None


def test_epics_subtasks_and_parents() -> None:
    epic = normalise_issue(issue("A-1", type_name="Epic"), FIELDS)
    assert epic.is_epic and epic.parent_key is None and epic.epic_key is None
    next_gen_epic = issue("A-9", type_name="Feature set")
    next_gen_epic["fields"]["issuetype"]["hierarchyLevel"] = 1
    assert normalise_issue(next_gen_epic, FIELDS).is_epic
    sub = normalise_issue(
        issue("A-3", type_name="Sub-task", parent="A-2", parent_type="Story"), FIELDS
    )
    assert sub.is_subtask and sub.parent_key == "A-2" and sub.epic_key is None
    # Server/DC: the epic comes from the Epic Link field.
    server = normalise_issue(issue("A-4", customfield_10014="A-1"), FIELDS)
    assert server.parent_key is None and server.epic_key == "A-1"
    # A parent without its type: a standard issue's parent is its epic.
    raw = issue("A-5")
    raw["fields"]["parent"] = {"key": "A-1"}
    assert normalise_issue(raw, FIELDS).epic_key == "A-1"


def test_unconfigured_fields_are_not_read() -> None:
    item = normalise_issue(issue("A-1", account=ACME, points=3), FieldIds())
    assert item.link_value is None and item.story_points is None


def test_versions_and_label_sets_are_shared() -> None:
    items = normalise_issues(
        [issue(f"A-{n}", labels=["x"], versions=[VERSION]) for n in (1, 2)], FIELDS
    )
    assert items[0].labels is items[1].labels
    assert items[0].fix_versions is items[1].fix_versions


def test_label_and_version_lookups_give_what_a_fresh_normalise_gives() -> None:
    later = {**VERSION, "id": "10002", "name": "2.0"}
    raws = [
        issue("A-1", labels=[1, "x"], versions=[VERSION, later]),
        issue("A-2", labels=["1", "x"], versions=[VERSION]),  # the same texts as A-1's
        issue("A-3", labels=[{"name": "x"}, "y"], versions=[later]),  # unhashable entry
        issue("A-4", labels=[{"name": "x"}, "y"], versions=[VERSION, later]),
    ]
    items = normalise_issues(raws, FIELDS)
    assert items == tuple(normalise_issue(raw, FIELDS) for raw in raws)
    assert items[0].labels is items[1].labels == ("1", "x")
    assert items[2].labels is items[3].labels == ("{'name': 'x'}", "y")
    # One version, alone or among others, is one value.
    assert items[1].fix_versions[0] is items[0].fix_versions[0]
    assert items[2].fix_versions[0] is items[0].fix_versions[1]
    assert items[3].fix_versions is items[0].fix_versions


def test_canonical_order_and_duplicates() -> None:
    keys = ["B-2", "A-10", "A-9", "B-1", "A-1"]
    raws = [issue(key) for key in keys]
    items = normalise_issues(random.Random(3).sample(raws, len(raws)), FIELDS)
    assert [item.key for item in items] == ["A-1", "A-9", "A-10", "B-1", "B-2"]
    assert is_canonical(items) and not is_canonical(items[::-1])
    assert sorted(keys, key=issue_sort_key) == ["A-1", "A-9", "A-10", "B-1", "B-2"]
    old = issue("A-1", status="To Do", created=days_ago(9))
    new = issue("A-1", status="Done", resolved=days_ago(1))
    for order in ([old, new], [new, old]):
        (only,) = normalise_issues(order, FIELDS)
        assert only.status == "Done"


def test_malformed_keys_sort_deterministically() -> None:
    raws = [{"key": key, "fields": {"project": {"key": "X"}}} for key in ("X-b", "X-a", "X-2")]
    orders = {
        tuple(item.key for item in normalise_issues(perm, FIELDS))
        for perm in (raws, raws[::-1], raws[1:] + raws[:1])
    }
    assert orders == {("X-a", "X-b", "X-2")}
    items: list[WorkItem] = list(normalise_issues(raws, FIELDS))
    assert canonical_order(items[::-1]) == tuple(items)
