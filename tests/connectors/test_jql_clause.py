"""The extra ``[jira] jql`` clause can never widen the scope (issue 13, item 9): what the
clause check accepts, put inside the scope by ``jql.scope`` and bounded by the incremental
cursor, parses in the sandbox's JQL grammar as an AND of the project clause, the extra
clause and the bound; what would escape the parentheses is refused, saying where."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import jql
from connectors.exceptions import ConfigError
from connectors.jira.settings import JiraSettings
from connectors.jql_clause import MAX_CLAUSE_CHARS, ClauseError, check_clause
from connectors.sandbox.jira import jql as sandbox_jql

PROJECTS = ("APOLLO",)
BOUND = jql.updated_since(1_772_323_200_000)

#: Clauses people write, in the sandbox grammar's subset of JQL; each must stay accepted.
ACCEPTED = [
    "status != Done",
    "labels = x OR labels = y",
    'status in (Open, "In Progress") AND assignee = currentUser()',
    "NOT (status = Done) AND NOT labels = blocked",
    "updated >= -1w",
    "cf[10100] is not EMPTY",
    '"Salesforce Account" ~ "a) OR (b"',
    "summary ~ 'it\\'s (here'",
    'issueFunction in linkedIssuesOf("project = A OR x = y")',
    "a = 1 && b = 2 || !c = 3",
    "project = A AND (status = B OR (labels = c AND NOT labels = d))",
    "fixVersion in unreleasedVersions()",
]
#: Real JQL beyond the sandbox grammar (history predicates): accepted as well.
ACCEPTED_BEYOND_THE_SANDBOX = [
    "status was 'Open' DURING ('2024/01/01', '2024/02/01')",
    'status changed FROM "Open" TO "Done" BY currentUser() AFTER -2w',
    "assignee was not in (a, b) BEFORE endOfMonth()",
]

#: Clauses that must be refused, with a fragment of the reason.
REFUSED = [
    ("status != Done) OR (project is not EMPTY", "closes a ( that was never opened"),
    ("labels = x) OR (labels = y", "character 11"),
    ("(status = Done", "is never closed"),
    ("status = Done ORDER BY key", "ORDER BY"),
    ("status = Done order by created DESC", "ORDER BY"),
    ("status = Done OR", "no condition after it"),
    ("AND status = Done", "expected a condition"),
    ("status = Done AND AND labels = x", "expected a condition"),
    ("()", "empty"),
    ('summary ~ "abc) OR (x = y', "never closed"),
    ("summary ~ x\\) OR (project is not EMPTY", "backslash"),
    ("status", "is not a condition"),
    ("status in (a OR b)", "inside the value list"),
    ("(a = 1) (b = 2)", "follows a complete"),
    ("NOT", "no condition"),
    ("(" * 40 + "a = 1" + ")" * 40, "deep"),
    ("x" * (MAX_CLAUSE_CHARS + 1), "10,000"),
]


@pytest.mark.parametrize("clause", ACCEPTED)
def test_clauses_people_write_are_accepted_and_stay_inside_the_scope(clause: str) -> None:
    check_clause(clause)
    where = sandbox_jql.parse(jql.all_of(jql.scope(PROJECTS, clause), BOUND)).where
    assert isinstance(where, sandbox_jql.And)
    assert where.items[0] == sandbox_jql.parse(jql.project_in(PROJECTS)).where
    assert where.items[-1] == sandbox_jql.parse(BOUND).where


@pytest.mark.parametrize("clause", ACCEPTED_BEYOND_THE_SANDBOX)
def test_history_predicates_are_accepted(clause: str) -> None:
    check_clause(clause)


@pytest.mark.parametrize(("clause", "why"), REFUSED)
def test_clauses_that_are_not_one_balanced_expression_are_refused(clause: str, why: str) -> None:
    with pytest.raises(ClauseError, match=re.escape(why)):
        check_clause(clause)
    with pytest.raises(ValueError):  # the one builder of the scope refuses it too
        jql.scope(PROJECTS, clause)
    with pytest.raises(ConfigError) as caught:
        JiraSettings(
            url="https://x.atlassian.net",
            email="a@b.c",
            api_token="t",
            projects=PROJECTS,
            jql=clause,
        )
    assert caught.value.message.startswith("[jira] jql: "), caught.value.message


#: What generated clauses are made of: conditions (some with parentheses or quotes inside
#: their strings), JQL's spellings of AND/OR, and stray tokens that change a shape.
CONDITIONS = [
    "status = Done",
    "project is not EMPTY",
    "labels in (a, b)",
    "assignee = currentUser()",
    'summary ~ "a) OR (b"',
    "summary ~ 'x\\' OR (y'",
    'x = "q\\""',
    "status != Done",
]
JOINERS = ["OR", "AND", "or", "||", "&&", "|", "&"]
STRAYS = [")", "(", '"', "'", "ORDER BY key", "\\", ",", "NOT"]


def _expression(draw: st.DrawFn, depth: int) -> list[str]:
    """The tokens of a well-formed boolean expression."""
    shape = draw(st.sampled_from(["condition", "condition", "group", "not", "join", "join"]))
    if depth > 3 or shape == "condition":
        return [draw(st.sampled_from(CONDITIONS))]
    if shape == "group":
        return ["(", *_expression(draw, depth + 1), ")"]
    if shape == "not":
        return [draw(st.sampled_from(["NOT", "!"])), *_expression(draw, depth + 1)]
    joiner = draw(st.sampled_from(JOINERS))
    return [*_expression(draw, depth + 1), joiner, *_expression(draw, depth + 1)]


@st.composite
def clauses(draw: st.DrawFn) -> str:
    """A well-formed expression, then up to two mutations: a joiner turned into the escape
    ``) OR (`` (which balances the count yet closes the scope's parenthesis), a token
    dropped, or a stray parenthesis, quote, backslash or ORDER BY put in."""
    tokens = _expression(draw, 0)
    for _ in range(draw(st.integers(0, 2))):
        joins = [i for i, token in enumerate(tokens) if token in JOINERS]
        kind = draw(st.sampled_from(["escape", "escape", "drop", "stray"]))
        if kind == "escape" and joins:
            at, deep = draw(st.sampled_from(joins)), draw(st.integers(1, 2))
            tokens[at : at + 1] = [")" * deep, tokens[at], "(" * deep]
        elif kind == "drop" and len(tokens) > 1:
            del tokens[draw(st.integers(0, len(tokens) - 1))]
        else:
            tokens.insert(draw(st.integers(0, len(tokens))), draw(st.sampled_from(STRAYS)))
    return draw(st.sampled_from([" ", ""])).join(tokens)


@settings(max_examples=1500, deadline=None)
@given(clauses())
def test_no_accepted_clause_widens_the_scope_or_escapes_the_bound(clause: str) -> None:
    """Whatever the check accepts parses (if the grammar takes it at all) as
    ``project in (...) AND <clause> AND <bound>``, never as an OR around the projects."""
    try:
        check_clause(clause)
    except ClauseError:
        return
    query = jql.all_of(jql.scope(PROJECTS, clause), BOUND) + jql.order_by("key ASC")
    try:
        parsed = sandbox_jql.parse(query)
    except sandbox_jql.JqlError:
        return  # Jira would answer 400 naming the clause: no search runs, nothing widens
    where = parsed.where
    assert isinstance(where, sandbox_jql.And), query
    assert where.items[0] == sandbox_jql.parse(jql.project_in(PROJECTS)).where, query
    assert where.items[-1] == sandbox_jql.parse(BOUND).where, query
    assert [s.field.name for s in parsed.order] == ["key"], query


def test_the_check_is_linear_on_long_clauses() -> None:
    long_clause = " OR ".join(["labels = blocked"] * 500)  # ~10,000 characters
    assert len(long_clause) <= MAX_CLAUSE_CHARS
    check_clause(long_clause)
    check_clause("NOT " * 2000 + "labels = x")  # a NOT chain is a loop, not recursion
