"""Incremental pulls against the sandbox: call counts, cursors, tie-breaks, deletes, quoting."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors import soql
from connectors.exceptions import ConfigError
from connectors.salesforce import (
    AccountFields,
    ModstampCursor,
    SalesforceConnector,
    SalesforceSettings,
    SurveySource,
)
from connectors.salesforce.pull import parse_datetime
from connectors.sandbox.stack import Sandbox
from connectors.sandbox.world import default_anchor

ANCHOR = default_anchor()

ACCOUNTS = 4500
QUERY = "GET /services/data/v59.0/query/"
MORE = "GET /services/data/v59.0/query/{cursor}"
DESCRIBE = "GET /services/data/v59.0/sobjects/{sobject}/describe"
SOAP = "POST /services/Soap/u/{version}"


def settings(box: Sandbox, **overrides: object) -> SalesforceSettings:
    c = box.credentials
    return SalesforceSettings(
        username=c.salesforce_username,
        password=c.salesforce_password,
        security_token=c.salesforce_security_token,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
def big() -> Iterator[Sandbox]:
    """Several thousand accounts, in-process."""
    sandbox = Sandbox(issues=0, accounts=ACCOUNTS, seed=7, anchor=ANCHOR)
    with sandbox.in_process():
        yield sandbox


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=0, accounts=300, seed=11, anchor=ANCHOR)
    with sandbox.in_process():
        yield sandbox


def _flatten(pages: Iterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [record for page in pages for record in page]


def test_full_pull_uses_the_minimum_calls(big: Sandbox) -> None:
    big.salesforce_app.stats.reset()
    connector = SalesforceConnector(settings(big))
    fields = AccountFields(extra=("Jira_Project_Key__c", "OwnerId"))
    pages = list(connector.pull_accounts(None, fields))

    assert [len(p) for p in pages] == [2000, 2000, 500]
    records = [r for p in pages for r in p]
    assert len({r["Id"] for r in records}) == ACCOUNTS
    assert set(records[0]) == {
        "Id",
        "Name",
        "Segment__c",
        "CSAT__c",
        "Jira_Project_Key__c",
        "OwnerId",
        "SystemModstamp",
    }
    keys = [(parse_datetime(str(r["SystemModstamp"])), r["Id"]) for r in records]
    assert keys == sorted(keys)

    pages_needed = math.ceil(ACCOUNTS / 2000)
    assert connector.meter.snapshot()["by_endpoint"] == {
        SOAP: 1,
        DESCRIBE: 1,
        QUERY: 1,
        MORE: pages_needed - 1,
    }
    assert connector.meter.total == pages_needed + 2
    # The sandbox saw the same calls; its daily API budget does not count the login.
    assert big.salesforce_app.stats.snapshot()["total"] == pages_needed + 2
    assert connector.api_usage is not None and connector.api_usage.used == pages_needed + 1
    assert connector.api_usage.total == 100_000


def test_full_pull_over_https(tmp_path: Path) -> None:
    served = Sandbox(issues=0, accounts=ACCOUNTS, seed=7, anchor=ANCHOR)
    ends = served.serve(tmp_path)
    try:
        connector = SalesforceConnector(
            settings(served, login_url=ends.salesforce_url, ca_bundle=str(ends.ca_bundle))
        )
        total = sum(len(p) for p in connector.pull_accounts())
        stats = served.salesforce_app.stats.snapshot()
    finally:
        served.stop()
    assert total == ACCOUNTS
    assert connector.meter.total == math.ceil(ACCOUNTS / 2000) + 2
    assert stats["total"] == connector.meter.total


def test_incremental_pull_returns_only_changed_records(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    cursor: ModstampCursor | None = None
    for page in connector.pull_accounts():
        cursor = ModstampCursor.after(page[-1])
    assert cursor is not None

    changed = [a.id for a in box.world.accounts[:3]]
    for account_id in changed:
        box.salesforce.update_record("Account", account_id, CSAT__c=1.5)
    new_id = box.salesforce.create_record("Account", Name="新客户 Ltd", Segment__c="SMB")
    before = connector.meter.total

    again = _flatten(connector.pull_accounts(cursor))
    assert sorted(r["Id"] for r in again) == sorted([*changed, new_id])
    assert {r["CSAT__c"] for r in again if r["Id"] in changed} == {1.5}
    assert connector.meter.total - before == 1  # one query; describe is cached

    cursor = ModstampCursor.after(again[-1])
    assert _flatten(connector.pull_accounts(cursor)) == []  # nothing changed: nothing comes


def test_equal_modstamps_are_neither_lost_nor_repeated(box: Sandbox) -> None:
    stamp = ANCHOR + timedelta(days=2, milliseconds=250)
    ids = sorted(
        box.salesforce.create_record("Account", Name=f"Tie {i}", SystemModstamp=stamp)
        for i in range(5)
    )
    later = box.salesforce.create_record(
        "Account", Name="Later", SystemModstamp=stamp + timedelta(milliseconds=1)
    )
    connector = SalesforceConnector(settings(box))

    # A previous page ended in the middle of the tie, after the second record.
    cursor = ModstampCursor(stamp, ids[1])
    got = [r["Id"] for r in _flatten(connector.pull_accounts(cursor))]
    assert got == [*ids[2:], later]

    # A cursor inside the same second but past the tie skips it entirely.
    assert [r["Id"] for r in _flatten(connector.pull_accounts(ModstampCursor(stamp, ids[-1])))] == [
        later
    ]
    # The cursor round-trips through the state store's JSON.
    assert ModstampCursor.from_json(cursor.to_json()) == cursor


def test_tie_across_a_page_boundary(box: Sandbox) -> None:
    stamp = ANCHOR + timedelta(days=3)
    for i in range(2100):
        box.salesforce.create_record("Account", Name=f"Bulk {i}", SystemModstamp=stamp)
    connector = SalesforceConnector(settings(box))
    since = ModstampCursor(stamp - timedelta(seconds=1), "")
    first = next(iter(connector.pull_accounts(since)))
    assert 1000 <= len(first) <= 2000  # Salesforce may cut a page short of the batch size
    cursor = ModstampCursor.after(first[-1])
    rest = _flatten(connector.pull_accounts(cursor))
    assert len(rest) == 2100 - len(first)
    assert not {r["Id"] for r in rest} & {r["Id"] for r in first}


def test_cases_include_closed_ones_so_a_close_is_seen(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    cases = _flatten(connector.pull_cases())
    assert len(cases) == len(box.world.cases) > 0
    assert set(cases[0]) == {
        "Id",
        "AccountId",
        "IsClosed",
        "IsEscalated",
        "Status",
        "SystemModstamp",
    }
    cursor = ModstampCursor.after(cases[-1])
    open_case = next(c for c in box.world.cases if not c.is_closed)
    box.salesforce.update_record("Case", open_case.id, Status="Closed")
    changed = _flatten(connector.pull_cases(cursor))
    assert [(c["Id"], c["IsClosed"]) for c in changed] == [(open_case.id, True)]


def test_survey_responses_within_a_window(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    source = SurveySource("Survey_Response__c", "Account__c", "Score__c", "Responded_At__c")
    everything = _flatten(connector.pull_survey_responses(source))
    assert len(everything) == len(box.world.surveys) > 0
    since = ANCHOR - timedelta(days=30)
    recent = _flatten(connector.pull_survey_responses(source, responded_since=since))
    expected = {s.id for s in box.world.surveys if s.responded_at >= since}
    assert {r["Id"] for r in recent} == expected
    assert set(recent[0]) == {"Id", "Account__c", "Score__c", "Responded_At__c", "SystemModstamp"}


def test_deletes_are_detected_with_query_all(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    since = datetime.now(UTC) - timedelta(minutes=1)
    gone = [a.id for a in box.world.accounts[5:8]]
    for account_id in gone:
        box.salesforce.delete_record("Account", account_id)
    before = connector.meter.snapshot()["by_endpoint"]
    deleted = [i for page in connector.deleted_ids("Account", since) for i in page]
    assert sorted(deleted) == sorted(gone)
    after = connector.meter.snapshot()["by_endpoint"]
    assert (
        after.get("GET /services/data/v59.0/queryAll/", 0)
        - before.get("GET /services/data/v59.0/queryAll/", 0)
        == 1
    )
    # Deleted accounts no longer come in an ordinary pull.
    live = {r["Id"] for r in _flatten(connector.pull_accounts())}
    assert not live & set(gone)


def test_missing_field_is_named_with_candidates_before_querying(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    with pytest.raises(ConfigError) as caught:
        list(connector.pull_accounts(fields=AccountFields(segment="Segmnt__c")))
    message = str(caught.value)
    assert "Account" in message and "Segmnt__c" in message and "Segment__c" in message
    assert not any("query" in k for k in connector.meter.by_endpoint)


def test_missing_object_is_named(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    source = SurveySource("Survey_Responses__c", "Account__c", "Score__c", "Responded_At__c")
    with pytest.raises(ConfigError, match=r"Survey_Responses__c.*Survey_Response__c"):
        list(connector.pull_survey_responses(source))


def test_describe_once_per_object_and_field_names_canonical(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    connector.validate({"Account": ["segment__c", "csat__c"], "Case": ["IsEscalated"]})
    assert connector.resolve_fields("Account", ["segment__c"]) == ["Segment__c"]
    list(connector.pull_accounts(fields=AccountFields(segment="segment__c")))
    assert connector.meter.by_endpoint[DESCRIBE] == 2


HOSTILE_NAMES = [
    "O'Brien \\ \"北京\" 客户 \\' end",
    "x' OR Name != 'y",
    "trailing backslash \\",
    "上海\n换行\t制表",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_quoting_round_trips_and_cannot_widen_a_query(box: Sandbox, name: str) -> None:
    target = box.salesforce.create_record("Account", Name=name)
    connector = SalesforceConnector(settings(box))
    query = soql.select("Account", ["Id", "Name"], where=soql.compare("Name", "=", name))
    found = _flatten(connector.query_pages(query))
    assert [(r["Id"], r["Name"]) for r in found] == [(target, name)]


def test_an_injection_attempt_matches_nothing(box: Sandbox) -> None:
    connector = SalesforceConnector(settings(box))
    query = soql.select("Account", ["Id"], where=soql.compare("Name", "=", "x' OR Name != 'y"))
    assert _flatten(connector.query_pages(query)) == []
