"""Changes of several objects, deletions included, with every first page in one call:
through the CRM seam (connectors.crm), as the engine reads them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.crm import (
    CASE,
    CUSTOMER,
    Configured,
    CrmConnector,
    CustomerNeed,
    Kind,
    Needs,
    Read,
    ReportNeed,
)
from connectors.exceptions import QueryError, RemoteError
from connectors.salesforce import SalesforceConnector, changes
from connectors.salesforce.changes import ChangeQuery
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_salesforce_pull import ANCHOR, settings

COMPOSITE = "POST /services/data/v{version}/composite"
MORE = "GET /services/data/v{version}/query/{locator}"  # queryAll's next pages too


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=0, accounts=2300, seed=5, anchor=ANCHOR)
    with sandbox.in_process():
        yield sandbox


#: Customers with their segment and satisfaction, and cases; reports to the usual object.
NEEDS = Needs(
    CustomerNeed(
        Configured("Segment__c", "segment_field"), Configured("CSAT__c", "satisfaction_field")
    ),
    ReportNeed(
        Configured("Jira_Project_Status__c", "object"),
        Configured("Jira_Sync_Key__c", "external_id_field"),
        (),
    ),
)


def _reads(cursors: dict[Kind, dict[str, object] | None]) -> list[Read]:
    return [Read(kind, cursors.get(kind)) for kind in NEEDS.pulled]


def test_salesforce_is_a_crm_connector(box: Sandbox) -> None:
    crm = SalesforceConnector(settings(box))
    assert isinstance(crm, CrmConnector)
    assert crm.streams(NEEDS) == {
        CUSTOMER: "Account",
        CASE: "Case",
        "report": "Jira_Project_Status__c",
    }


def test_first_pages_of_every_object_in_one_read_then_cursor_pages(box: Sandbox) -> None:
    crm = SalesforceConnector(settings(box))
    crm.connect()
    crm.validate({"Account": ["Name"], "Case": ["AccountId"]})  # describes, cached
    box.salesforce_app.stats.reset()
    pages = list(crm.changes(NEEDS, _reads({})))
    stats = box.salesforce_app.stats.snapshot()
    accounts = [r for p in pages if p.kind == CUSTOMER for r in p.live]
    cases = [r for p in pages if p.kind == CASE for r in p.live]
    assert {p.stream for p in pages} == {"Account", "Case"}
    # What the engine stores of a case, and the neutral record the model reads.
    assert all(
        (c.customer_id, c.closed, c.escalated)
        == (c.data["customer_id"] or None, c.data["closed"], c.data["escalated"])
        for c in cases
    )
    assert all(set(a.data) >= {"id", "name", "segment", "owner_name"} for a in accounts)
    assert len(accounts) == 2300
    assert len(cases) == len(box.salesforce.records("Case"))
    # One Composite call (a read: GET subrequests only) + each object's second page.
    assert len(cases) > 2000
    assert stats["by_endpoint"][COMPOSITE] == 1
    assert stats["by_endpoint"][MORE] >= 2  # one more page each, or two if one came short
    assert stats["writes"] == 0 and stats["total"] == 1 + stats["by_endpoint"][MORE]
    assert crm.meter.snapshot()["writes"] == 0


def test_changes_and_deletions_since_the_cursors(box: Sandbox) -> None:
    crm = SalesforceConnector(settings(box))
    crm.connect()
    cursors: dict[Kind, dict[str, object] | None] = {}
    for page in crm.changes(NEEDS, _reads({})):
        cursors[page.kind] = page.cursor
    account_ids = [r["Id"] for r in box.salesforce.records("Account")]
    box.salesforce.update_record("Account", account_ids[0], CSAT__c=1.5)
    box.salesforce.delete_record("Account", account_ids[1])
    box.salesforce_app.stats.reset()

    pages = list(crm.changes(NEEDS, _reads(cursors)))
    live = {r.id: r for p in pages for r in p.live}
    gone = [i for p in pages for i in p.deleted_ids]
    assert list(live) == [account_ids[0]] and live[account_ids[0]].data["satisfaction"] == 1.5
    assert live[account_ids[0]].customer_id == account_ids[0]
    assert gone == [account_ids[1]]
    assert box.salesforce_app.stats.snapshot()["total"] == 1

    for page in pages:
        cursors[page.kind] = page.cursor or cursors[page.kind]
    assert list(crm.changes(NEEDS, _reads(cursors))) == []  # nothing new: nothing delivered


def test_a_merge_gives_the_account_merged_away_as_deleted_naming_its_survivor(
    box: Sandbox,
) -> None:
    crm = SalesforceConnector(settings(box))
    crm.connect()
    cursors: dict[Kind, dict[str, object] | None] = {}
    for page in crm.changes(NEEDS, _reads({})):
        cursors[page.kind] = page.cursor
    loser = str(box.salesforce.records("Case")[0]["AccountId"])  # one with cases
    master, other = [
        str(r["Id"]) for r in box.salesforce.records("Account") if str(r["Id"]) != loser
    ][:2]
    moved = [str(c["Id"]) for c in box.salesforce.records("Case") if c["AccountId"] == loser]
    box.salesforce.merge_records("Account", master, loser)
    box.salesforce.delete_record("Account", other)  # deleted, not merged
    pages = list(crm.changes(NEEDS, _reads(cursors)))
    accounts = [p for p in pages if p.kind == CUSTOMER]
    assert {r.id for p in accounts for r in p.live} == {master}
    assert sorted(i for p in accounts for i in p.deleted_ids) == sorted([loser, other])
    assert [p.merged_into for p in accounts if p.merged_into] == [{loser: master}]
    # The merge moved the loser's cases to the survivor: they come as changed.
    cases = {r.id: r for p in pages if p.kind == CASE for r in p.live}
    assert moved and all(cases[c].customer_id == master for c in moved)


def test_a_refused_query_names_it(box: Sandbox) -> None:
    crm = SalesforceConnector(settings(box))
    crm.connect()
    bad = ChangeQuery("Account", ("Name",), None, where="CSAT__c > 'x'")
    with pytest.raises(QueryError, match="Salesforce refused the query"):
        list(changes.changes(crm, [bad]))


LOOP = "/services/data/v59.0/query/01gLOOP-2000"
#: The connector meter's name of a next page (the paginator's GETs).
NEXT = "GET /services/data/v59.0/query/{cursor}"


def _broken_next_pages(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, answer: dict[str, object]
) -> None:
    """Every next page (``GET .../query/<locator>``) answers ``answer``; first pages, in a
    Composite call or in the query's URI, are the sandbox's own."""
    original = box.salesforce_app.handle

    def handle(request: SandboxRequest) -> SandboxResponse:
        locator = request.path.partition("/query/")[2]
        if request.method == "GET" and locator:
            return SandboxResponse.json(answer)
        return original(request)

    monkeypatch.setattr(box.salesforce_app, "handle", handle)


@pytest.mark.parametrize("path", ["changes", "query"])
@pytest.mark.parametrize(
    ("answer", "said", "gets"),
    [
        # The second next page names itself again: a loop, stopped at once.
        ({"done": False, "nextRecordsUrl": LOOP, "records": []}, "a second time", 2),
        # Not done, and nowhere to go: not taken for the end of the records.
        ({"done": False, "records": []}, "done false but no nextRecordsUrl", 1),
    ],
)
def test_one_paginator_refuses_a_next_records_url_repeated_or_missing(
    box: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    answer: dict[str, object],
    said: str,
    gets: int,
) -> None:
    crm = SalesforceConnector(settings(box))
    crm.connect()
    _broken_next_pages(box, monkeypatch, answer)
    delivered: list[dict[str, object]] = []
    with pytest.raises(RemoteError) as raised:
        if path == "changes":  # what a cycle reads: first pages in one Composite call
            for page in crm.changes(NEEDS, _reads({})):
                delivered.extend(r.data for r in page.live)
        else:
            for records in crm.query_pages("SELECT Id FROM Account"):
                delivered.extend(records)
    message = str(raised.value)
    assert said in message and "the next cycle tries again" in message
    assert "GET /services/data/v59.0/query/" in message or LOOP in message
    # The first page came through (2,000 rows, or fewer as Salesforce sometimes sends);
    # nothing was guessed after it.
    assert 1000 <= len(delivered) <= 2000
    assert crm.meter.by_endpoint[NEXT] == gets


def test_next_pages_are_read_in_one_place() -> None:
    """``query_more`` (a next page) is called by the one paginator, connectors/salesforce/
    paging.py: a second loop would need its own guard against a repeated nextRecordsUrl."""
    root = Path(__file__).resolve().parents[2]
    callers = sorted(
        str(path.relative_to(root))
        for path in (root / "connectors").rglob("*.py")
        if "sandbox" not in path.parts and ".query_more(" in path.read_text(encoding="utf-8")
    )
    assert callers == ["connectors/salesforce/paging.py"]
