"""The JQL subset: parsing, each clause, precedence, escapes, dates and time zones,
ordering, and the queries the sandbox must reject (never a silent wrong answer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.sandbox.jira.jql import EmptyValue, JqlError, Literal, parse, quote
from connectors.sandbox.jira.jql_eval import compile_query
from connectors.sandbox.world import JiraIssue

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
ACCOUNT = "001Dn000000001AAAA"


def make(key: str, **changes: Any) -> JiraIssue:
    base: dict[str, Any] = {
        "id": 10000 + int(key.rsplit("-", 1)[1]) + (500 if key.startswith("ORION") else 0),
        "key": key,
        "project_key": key.rsplit("-", 1)[0],
        "issue_type": "Task",
        "summary": "s",
        "description": "",
        "status": "To Do",
        "priority": "Medium",
        "created": datetime(2024, 1, 1, 2, 0, tzinfo=UTC),
        "updated": datetime(2024, 1, 1, 2, 0, tzinfo=UTC),
        "resolved": None,
        "due": None,
        "story_points": None,
        "estimate_seconds": None,
        "labels": [],
        "fix_version_ids": [],
        "parent_key": None,
        "account_id": None,
        "assignee_account_id": None,
    }
    base.update(changes)
    return JiraIssue(**base)


ISSUES = [
    make(
        "APOLLO-1",
        labels=["backend"],
        status="Done",
        account_id=ACCOUNT,
        updated=datetime(2024, 1, 1, 1, 59, tzinfo=UTC),
    ),
    make(
        "APOLLO-2",
        labels=["frontend", "security"],
        status="In Progress",
        updated=datetime(2024, 1, 1, 2, 0, tzinfo=UTC),
        issue_type="Epic",
    ),
    make(
        "APOLLO-10",
        labels=[],
        status="Blocked",
        updated=datetime(2024, 3, 9, 12, 0, tzinfo=UTC),
        created=datetime(2024, 3, 1, tzinfo=UTC),
        parent_key="APOLLO-2",
        account_id="001Dn000000002BBBB",
        due=date(2024, 3, 12),
        story_points=5.0,
    ),
    make(
        "ORION-1",
        labels=['say "hi"', "back\\slash", "中文标签"],
        status="To Do",
        updated=datetime(2024, 3, 10, 11, 30, tzinfo=UTC),
        created=datetime(2023, 12, 31, 16, 0, tzinfo=UTC),
    ),
    make(
        "ORION-2",
        labels=["backend"],
        status="Done",
        account_id=ACCOUNT,
        updated=datetime(2024, 2, 1, tzinfo=UTC),
        resolved=datetime(2024, 2, 1, tzinfo=UTC),
    ),
]


@dataclass
class FakeCatalog:
    """What the compiler asks of a backend."""

    zone: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    projects: dict[str, str] = field(default_factory=lambda: {"APOLLO": "10000", "ORION": "10001"})

    def now(self) -> datetime:
        return NOW

    def resolve_project(self, value: str) -> str | None:
        for key, project_id in self.projects.items():
            if (
                value.upper() == key
                or value == project_id
                or value.lower() == f"{key} rollout".lower()
            ):
                return key
        return None

    def resolve_issue(self, value: str) -> str | None:
        for issue in ISSUES:
            if value.upper() == issue.key or value == str(issue.id):
                return issue.key
        return None

    comments: dict[str, list[str]] = field(default_factory=dict)

    def comment_texts(self, key: str) -> list[str]:
        return self.comments.get(key, [])


def run(jql: str, catalog: FakeCatalog | None = None) -> list[str]:
    compiled = compile_query(parse(jql), catalog or FakeCatalog())
    ordered = sorted(ISSUES, key=lambda i: (i.project_key, int(i.key.split("-")[1])))
    matches = [i for i in ordered if compiled.predicate is None or compiled.predicate(i)]
    compiled.sort(matches)
    return [i.key for i in matches]


def error(jql: str, catalog: FakeCatalog | None = None) -> str:
    with pytest.raises(JqlError) as caught:
        run(jql, catalog)
    return str(caught.value)


ALL = ["APOLLO-1", "APOLLO-2", "APOLLO-10", "ORION-1", "ORION-2"]


# -- clauses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("project = APOLLO", ["APOLLO-1", "APOLLO-2", "APOLLO-10"]),
        ("project = apollo", ["APOLLO-1", "APOLLO-2", "APOLLO-10"]),
        ("project = 10001", ["ORION-1", "ORION-2"]),
        ('project = "Orion Rollout"', ["ORION-1", "ORION-2"]),
        ("project in (APOLLO, ORION)", ALL),
        ("project != APOLLO", ["ORION-1", "ORION-2"]),
        ("project not in (ORION)", ["APOLLO-1", "APOLLO-2", "APOLLO-10"]),
        ("key = APOLLO-10", ["APOLLO-10"]),
        ("issuekey in (ORION-2, apollo-1)", ["APOLLO-1", "ORION-2"]),
        ("id = 10501", ["ORION-1"]),
        ("key != APOLLO-1 and project = APOLLO", ["APOLLO-2", "APOLLO-10"]),
    ],
)
def test_project_and_key_clauses(jql: str, expected: list[str]) -> None:
    assert run(jql) == expected


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("labels = backend", ["APOLLO-1", "ORION-2"]),
        ("labels in (security, backend)", ["APOLLO-1", "APOLLO-2", "ORION-2"]),
        ("labels is EMPTY", ["APOLLO-10"]),
        ("labels is not empty", ["APOLLO-1", "APOLLO-2", "ORION-1", "ORION-2"]),
        ("labels = EMPTY", ["APOLLO-10"]),
        ("labels in (EMPTY, security)", ["APOLLO-2", "APOLLO-10"]),
        # Jira's rule: != and NOT IN never match issues whose field is empty.
        ("labels != backend", ["APOLLO-2", "ORION-1"]),
        ("labels not in (backend, frontend)", ["ORION-1"]),
        ("not labels = backend", ["APOLLO-2", "APOLLO-10", "ORION-1"]),
    ],
)
def test_label_clauses(jql: str, expected: list[str]) -> None:
    assert run(jql) == expected


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ('status = "In Progress"', ["APOLLO-2"]),
        ("status = done", ["APOLLO-1", "ORION-2"]),
        ("status in (Blocked, 'To Do')", ["APOLLO-10", "ORION-1"]),
        ("status != Done", ["APOLLO-2", "APOLLO-10", "ORION-1"]),
        ("statusCategory = Done", ["APOLLO-1", "ORION-2"]),
        ('statusCategory in ("To Do", "In Progress")', ["APOLLO-2", "APOLLO-10", "ORION-1"]),
        ("statusCategory = indeterminate", ["APOLLO-2", "APOLLO-10"]),
        ("statuscategory in (new, 3)", ["APOLLO-1", "ORION-1", "ORION-2"]),
        ("issuetype = Epic", ["APOLLO-2"]),
        ("parent = APOLLO-2", ["APOLLO-10"]),
    ],
)
def test_status_clauses(jql: str, expected: list[str]) -> None:
    assert run(jql) == expected


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        (f'"Salesforce Account" = "{ACCOUNT}"', ["APOLLO-1", "ORION-2"]),
        (f'cf[10100] = "{ACCOUNT}"', ["APOLLO-1", "ORION-2"]),
        (f"CF[10100] = {ACCOUNT}", ["APOLLO-1", "ORION-2"]),
        ('"Salesforce Account" is EMPTY', ["APOLLO-2", "ORION-1"]),
        ('"salesforce account" is not EMPTY', ["APOLLO-1", "APOLLO-10", "ORION-2"]),
        (f'"Salesforce Account" != "{ACCOUNT}"', ["APOLLO-10"]),
        ('"Salesforce Account" in ("001Dn000000002BBBB", "x")', ["APOLLO-10"]),
        ('"Salesforce Account" ~ "2bbbb"', ["APOLLO-10"]),
        ('"Story Points" >= 3', ["APOLLO-10"]),
    ],
)
def test_custom_field_clauses(jql: str, expected: list[str]) -> None:
    assert run(jql) == expected


# -- boolean structure ----------------------------------------------------------------------


def test_comment_text_search_is_by_words_and_phrases_as_jira_indexes_them() -> None:
    catalog = FakeCatalog(
        comments={
            "APOLLO-1": ["Customer is at risk. \\[jira-crm-sync:flag:001A:at\\_risk\\]"],
            "APOLLO-2": ["Flag it for the CRM sync, Jira team"],  # every word, out of order
            "ORION-1": ["Jira CRM", "sync flag"],  # the phrase split over two comments
            "ORION-2": ["jiracrmsyncflag"],  # a substring is not a word
        }
    )
    phrase = 'comment ~ "\\"jira crm sync flag\\""'
    assert run(phrase, catalog) == ["APOLLO-1"]
    assert run('comment ~ "jira crm sync flag"', catalog) == ["APOLLO-1", "APOLLO-2", "ORION-1"]
    assert run('comment ~ "CUSTOMER"', catalog) == ["APOLLO-1"]  # case folded
    assert run('comment ~ "\\"is at risk\\""', catalog) == ["APOLLO-1"]  # stop words dropped
    assert run('comment ~ "jiracrm*"', catalog) == ["ORION-2"]
    assert run('comment !~ "jira"', catalog) == ["ORION-2"]  # issues without comments: never
    assert run(f"project = ORION AND NOT {phrase}", catalog) == ["ORION-1", "ORION-2"]
    assert error('comment ~ "the"', catalog) == (
        "The field 'comment' does not support searching for an empty string."
    )
    assert error("comment = x", catalog) == (
        "The operator '=' is not supported by the 'comment' field."
    )


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    assert run("labels = security OR project = ORION AND status = Done") == [
        "APOLLO-2",
        "ORION-2",
    ]
    assert run("(labels = security OR project = ORION) AND status = Done") == ["ORION-2"]
    assert run("NOT project = ORION AND status = Done") == ["APOLLO-1"]
    assert run("NOT (project = ORION AND status = Done)") == [
        "APOLLO-1",
        "APOLLO-2",
        "APOLLO-10",
        "ORION-1",
    ]
    assert run("!(project = ORION) && labels = backend || key = ORION-1") == [
        "APOLLO-1",
        "ORION-1",
    ]


def test_keywords_are_case_insensitive() -> None:
    assert run("PROJECT = apollo aNd LABELS Is Not Empty Order By KEY desc") == [
        "APOLLO-2",
        "APOLLO-1",
    ]


# -- strings and escapes --------------------------------------------------------------------


def test_escapes_quotes_backslashes_and_chinese() -> None:
    assert run(r'labels = "say \"hi\""') == ["ORION-1"]
    assert run(r"labels = 'say \"hi\"'") == ["ORION-1"]
    assert run(r'labels = "back\\slash"') == ["ORION-1"]
    assert run(r'labels = "\u4e2d\u6587\u6807\u7b7e"') == ["ORION-1"]
    assert run("labels = 中文标签") == ["ORION-1"]
    assert run("labels = '中文标签'") == ["ORION-1"]
    for value in ('say "hi"', "back\\slash", "中文标签"):
        assert run(f"labels = {quote(value)}") == ["ORION-1"]


def test_parse_keeps_quoting_and_empty_values() -> None:
    query = parse("labels in ('a b', c, EMPTY)")
    assert query.where is not None
    assert query.where.values == (Literal("a b", quoted=True), Literal("c"), EmptyValue())  # type: ignore[union-attr]


# -- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        # APOLLO-2 was updated at 2024-01-01 02:00 UTC = 10:00 in Asia/Shanghai.
        ('updated >= "2024-01-01 10:00"', ["APOLLO-2", "APOLLO-10", "ORION-1", "ORION-2"]),
        ('updated >= "2024/01/01 10:01"', ["APOLLO-10", "ORION-1", "ORION-2"]),
        ('updated < "2024-01-01 10:00"', ["APOLLO-1"]),
        ('updated <= "2024-01-01 10:00"', ["APOLLO-1", "APOLLO-2"]),
        ('updated = "2024-01-01 10:00"', ["APOLLO-2"]),
        ('updated > "2024/01/01 10:00"', ["APOLLO-10", "ORION-1", "ORION-2"]),
        ('updated > "2024-02-01"', ["APOLLO-10", "ORION-1", "ORION-2"]),
        ('created < "2024/01/01"', []),  # ORION-1: 2024-01-01 00:00 Shanghai is not before it
        ('created <= "2024/01/01"', ["ORION-1"]),
        # Epoch milliseconds are zone-free: 1704074400000 is 2024-01-01T02:00:00Z.
        ("updated >= 1704074400000", ["APOLLO-2", "APOLLO-10", "ORION-1", "ORION-2"]),
        ("updated > 1704074400000", ["APOLLO-10", "ORION-1", "ORION-2"]),
        # Relative to now (2024-03-10 12:00 UTC).
        ("updated >= -1h", ["ORION-1"]),
        ("updated >= -30m", ["ORION-1"]),
        ("updated >= -2d", ["APOLLO-10", "ORION-1"]),
        ('updated >= "-1w"', ["APOLLO-10", "ORION-1"]),
        ('updated >= "-6w 2d"', ["APOLLO-10", "ORION-1", "ORION-2"]),
        ("resolved is not EMPTY", ["ORION-2"]),
        ('due <= "2024-03-12"', ["APOLLO-10"]),
        ('due < "2024-03-12"', []),
    ],
)
def test_dates(jql: str, expected: list[str]) -> None:
    assert run(jql) == expected


def test_zone_less_dates_follow_the_user_time_zone() -> None:
    jql = 'updated >= "2024-01-01 09:30"'
    # APOLLO-1 was updated at 01:59 UTC, which is 09:59 in Asia/Shanghai (the user's zone).
    assert run(jql) == ALL
    # The same text means 09:30 UTC for a UTC user: both January 1 updates are before it.
    assert run(jql, FakeCatalog(zone=UTC)) == ["APOLLO-10", "ORION-1", "ORION-2"]
    assert run(jql, FakeCatalog(zone=ZoneInfo("America/New_York"))) == [
        "APOLLO-10",
        "ORION-1",
        "ORION-2",
    ]
    # Minute precision: 10:00 Shanghai is exactly APOLLO-2's update, 10:01 is after it.
    assert run('updated = "2024-01-01 10:00"') == ["APOLLO-2"]
    assert "APOLLO-2" not in run('updated >= "2024-01-01 10:01"')


# -- ordering -------------------------------------------------------------------------------


def test_default_order_is_key_ascending_with_numeric_issue_numbers() -> None:
    assert run("project in (APOLLO, ORION)") == ALL  # APOLLO-10 after APOLLO-2


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ("project in (APOLLO, ORION) ORDER BY key DESC", list(reversed(ALL))),
        ("project = APOLLO ORDER BY updated DESC", ["APOLLO-10", "APOLLO-2", "APOLLO-1"]),
        (
            "project in (APOLLO, ORION) ORDER BY created ASC, key DESC",
            ["ORION-1", "ORION-2", "APOLLO-2", "APOLLO-1", "APOLLO-10"],
        ),
        ("project = ORION order by id desc", ["ORION-2", "ORION-1"]),
        ("ORDER BY updated", ["APOLLO-1", "APOLLO-2", "ORION-2", "APOLLO-10", "ORION-1"]),
    ],
)
def test_order_by(jql: str, expected: list[str]) -> None:
    assert run(jql) == expected


def test_an_empty_restriction_is_unbounded() -> None:
    assert not compile_query(parse("order by key"), FakeCatalog()).bounded
    assert not compile_query(parse(""), FakeCatalog()).bounded
    assert compile_query(parse("project = APOLLO"), FakeCatalog()).bounded


def test_project_and_key_clauses_narrow_the_candidates() -> None:
    compiled = compile_query(parse("project in (apollo, ORION) AND key = ORION-1"), FakeCatalog())
    assert compiled.projects == frozenset({"APOLLO", "ORION"})
    assert compiled.keys == frozenset({"ORION-1"})
    assert compile_query(parse("project = APOLLO OR labels = x"), FakeCatalog()).projects is None


# -- rejected queries -----------------------------------------------------------------------


Q = "Error in the JQL Query: "
NO_FIELD = "Field 'flavour' does not exist or you do not have permission to view it."
SANDBOX = Q + "the sandbox does not support "


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("project in (APOLLO, NOPE)", "The value 'NOPE' does not exist for the field 'project'."),
        ("key = APOLLO-99", "An issue with key 'APOLLO-99' does not exist for field 'key'."),
        ("status = Reopened", "The value 'Reopened' does not exist for the field 'status'."),
        ("statusCategory = No", "The value 'No' does not exist for the field 'statusCategory'."),
        ("flavour = vanilla", NO_FIELD),
        ("project = APOLLO ORDER BY flavour", NO_FIELD),
        ("labels > a", "The operator '>' is not supported by the 'labels' field."),
        ("project ~ APOLLO", "The operator '~' is not supported by the 'project' field."),
        ("updated >= yesterday", "Date value 'yesterday' for field 'updated' is invalid."),
        ('updated >= "2024-13-45"', "Date value '2024-13-45' for field 'updated' is invalid."),
        ("assignee = currentUser()", SANDBOX + "searching by 'assignee'."),
        ("labels = currentUser()", SANDBOX + "the JQL function 'currentUser()'."),
        ("labels = frobnicate()", "Unable to find JQL function 'frobnicate()'."),
        ("status was Done", SANDBOX + "the history operators WAS and CHANGED."),
        ('summary ~ "login"', SANDBOX + "searching by 'summary'."),
        ("project = APOLLO ORDER BY summary", SANDBOX + "ordering by 'summary'."),
        ("project = ", Q + "Expecting either a value, list or function but got end of query."),
        ("project APOLLO", Q + "Expecting operator but got 'APOLLO'. The valid operators are"),
        ("labels = x y", Q + "Expecting either 'OR' or 'AND' but got 'y'. (line 1, character 12)"),
        (
            "labels = and",
            Q + "Expecting either a value, list or function but got 'and'. You must surround "
            "'and' in quotation marks to use it as a value. (line 1, character 10)",
        ),
        ("project = A.B", Q + "The character '.' is a reserved JQL character."),
        (r'labels = "a\q"', Q + "'\\q' is an illegal JQL escape sequence."),
        ("(project = APOLLO", Q + "Expecting either 'OR', 'AND' or ')' but got end of query."),
        ('labels = "open', Q + "Unexpected character '\"'. (line 1, character 10)"),
    ],
)
def test_rejected_queries(jql: str, message: str) -> None:
    assert error(jql).startswith(message)
