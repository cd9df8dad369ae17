"""The one JQL quoting function: values round-trip unchanged and never widen a query."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import jql
from connectors.exceptions import QueryError
from connectors.sandbox.jira import jql as sandbox_jql
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import ANCHOR, connector_for, pull_all

NASTY = [
    'X" OR project != "Y',
    'back\\slash \\" quote',
    "华信科技有限公司 “全角” 大客户",
    "line\nbreak\ttab\x00nul\x7fdel",
    "order by key",
    "",
    "'single' and \\u0041",
]


def test_quote_escapes() -> None:
    assert jql.quote('a"b') == '"a\\"b"'
    assert jql.quote("a\\b") == '"a\\\\b"'
    assert jql.quote("a\nb\x01") == '"a\\u000ab\\u0001"'
    assert jql.quote("大客户") == '"大客户"'


def test_builders() -> None:
    assert jql.project_in(["A", "B"]) == 'project in ("A", "B")'
    assert jql.equals("Salesforce Account", "x") == '"Salesforce Account" = "x"'
    assert jql.equals("cf[10100]", "x") == 'cf[10100] = "x"'
    assert jql.equals("order", "x") == '"order" = "x"'
    assert jql.updated_since(1772323200000) == "updated >= 1772323200000"
    assert jql.scope(["A"], "labels = x OR labels = y") == (
        '(project in ("A")) AND (labels = x OR labels = y)'
    )
    assert jql.scope([], "labels = x") == "labels = x"
    assert jql.order_by("key ASC") == " ORDER BY key ASC"
    with pytest.raises(ValueError):
        jql.in_values("labels", [])
    with pytest.raises(ValueError):
        jql.updated_since(-1)


def _single_value(query: str) -> str:
    parsed = sandbox_jql.parse(query)
    clause = parsed.where
    assert isinstance(clause, sandbox_jql.Clause), "the value changed the query's shape"
    assert len(clause.values) == 1
    value = clause.values[0]
    assert isinstance(value, sandbox_jql.Literal) and value.quoted
    return value.text


@pytest.mark.parametrize("value", NASTY)
def test_nasty_values_parse_back_as_one_value(value: str) -> None:
    assert _single_value(jql.equals("labels", value)) == value
    assert _single_value(jql.project_in([value])) == value


@given(st.text())
def test_any_text_round_trips_through_the_jql_parser(value: str) -> None:
    assert _single_value(jql.equals("summary", value)) == value


def test_malicious_value_matches_nothing_in_the_sandbox() -> None:
    box = Sandbox(issues=300, accounts=5, seed=12, anchor=ANCHOR)
    with box.in_process() as ends:
        hostile = 'X" OR project != "Y'
        connector = connector_for(box, ends.jira_url, jql=jql.equals("Salesforce Account", hostile))
        issues, _, _ = pull_all(connector)
        assert issues == []
        assert sum(len(p) for p in connector.list_keys()) == 0

        # As a project key it stays one (unknown) value: Jira answers 400, naming all of it.
        bad = connector_for(box, ends.jira_url, projects=(hostile,))
        with pytest.raises(QueryError) as caught:
            pull_all(bad)
        assert hostile in str(caught.value)


def test_value_with_quotes_backslashes_and_chinese_round_trips() -> None:
    box = Sandbox(issues=300, accounts=5, seed=12, anchor=ANCHOR)
    value = '华信 "Acme\\Corp" 大客户\t001'
    key = sorted(box.jira.issues)[9]
    box.jira.update_issue(key, account_id=value)
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url, jql=jql.equals("Salesforce Account", value))
        issues, _, _ = pull_all(connector)
    assert [i["key"] for i in issues] == [key]
    assert issues[0]["fields"]["customfield_10100"] == value
