"""mappings.validate: every field the model reads, checked by type; absent means no value."""

from __future__ import annotations

from typing import Any

import pytest

from mappings.rules import FieldIds
from mappings.validate import IssueCheck, shown

GOOD: dict[str, Any] = {
    "id": "10001",
    "key": "APOLLO-1",
    "fields": {
        "summary": "Ship it",
        "updated": "2026-03-01T10:00:00.000+0300",
        "created": "2026-02-01T10:00:00.000-0800",
        "status": {"name": "Done", "statusCategory": {"key": "done"}},
        "issuetype": {"name": "Story", "subtask": False, "hierarchyLevel": 0},
        "project": {"key": "APOLLO"},
        "labels": ["blocked"],
        "fixVersions": [{"id": "1", "name": "1.0", "released": False, "releaseDate": "2026-04-01"}],
        "parent": {"key": "APOLLO-0"},
        "resolutiondate": None,
        "duedate": "2026-03-10",
        "customfield_10016": 3.5,
        "customfield_10100": "001Dn0000000001IAA",
    },
}
CHECK = IssueCheck(
    FieldIds(account_link="customfield_10100", story_points="customfield_10016"),
    {"customfield_10016": "Story Points"},
)


def with_fields(**changes: Any) -> dict[str, Any]:
    return {**GOOD, "fields": {**GOOD["fields"], **changes}}


def test_a_well_formed_issue_passes() -> None:
    assert CHECK.problem(GOOD) is None


@pytest.mark.parametrize("hidden", ["labels", "fixVersions", "summary", "duedate", "parent"])
def test_an_absent_key_is_no_value(hidden: str) -> None:
    issue = {**GOOD, "fields": {k: v for k, v in GOOD["fields"].items() if k != hidden}}
    assert CHECK.problem(issue) is None


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"labels": None}, "fields.labels is null, not a list"),
        ({"labels": "blocked"}, "fields.labels is the text 'blocked', not a list"),
        ({"labels": [1]}, "fields.labels holds the number 1"),
        ({"customfield_10016": "high"}, "fields.customfield_10016 (Story Points) is the text"),
        ({"customfield_10016": True}, "(Story Points) is true, not a number"),
        ({"status": None}, "fields.status is null"),
        ({"updated": "yesterday"}, "fields.updated is the text 'yesterday', not a time"),
        ({"duedate": "soon"}, "fields.duedate is the text 'soon', not a date"),
        ({"issuetype": {"name": "Story", "hierarchyLevel": "1"}}, "hierarchyLevel"),
        ({"fixVersions": [{"name": "1.0", "releaseDate": "someday"}]}, "releaseDate"),
        ({"parent": "APOLLO-0"}, "fields.parent is the text"),
        ({"customfield_10100": True}, "customfield_10100 is true"),
    ],
)
def test_a_value_of_the_wrong_type_is_named(changes: dict[str, Any], says: str) -> None:
    problem = CHECK.problem(with_fields(**changes))
    assert problem is not None and says in problem, problem


def test_a_huge_value_is_quoted_short() -> None:
    problem = CHECK.problem(with_fields(customfield_10016="x" * 100_000))
    assert problem is not None and len(problem) < 200


def test_shown_never_echoes_much() -> None:
    assert shown("x" * 1000).startswith("the text 'xxx") and len(shown("x" * 1000)) < 60
    assert shown({"a": 1}) == "an object" and shown([1]) == "a list" and shown(None) == "null"
