"""Changes of several objects, deletions included, with every first page in one call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.exceptions import QueryError, RemoteError
from connectors.salesforce import ModstampCursor, SalesforceConnector
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


def _queries(cursors: dict[str, ModstampCursor | None]) -> list[ChangeQuery]:
    return [
        ChangeQuery("Account", ("Name", "Segment__c", "CSAT__c"), cursors.get("Account")),
        ChangeQuery("Case", ("AccountId", "IsClosed", "IsEscalated"), cursors.get("Case")),
    ]


def test_first_pages_of_every_object_in_one_read_then_cursor_pages(box: Sandbox) -> None:
    crm = SalesforceConnector(settings(box))
    crm.connect()
    crm.validate({"Account": ["Name"], "Case": ["AccountId"]})  # describes, cached
    box.salesforce_app.stats.reset()
    pages = list(crm.changes(_queries({})))
    stats = box.salesforce_app.stats.snapshot()
    accounts = [r for p in pages if p.sobject == "Account" for r in p.live]
    cases = [r for p in pages if p.sobject == "Case" for r in p.live]
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
    cursors: dict[str, ModstampCursor | None] = {}
    for page in crm.changes(_queries({})):
        cursors[page.sobject] = page.cursor
    account_ids = [r["Id"] for r in box.salesforce.records("Account")]
    box.salesforce.update_record("Account", account_ids[0], CSAT__c=1.5)
    box.salesforce.delete_record("Account", account_ids[1])
    box.salesforce_app.stats.reset()

    pages = list(crm.changes(_queries(cursors)))
    live = {r["Id"]: r for p in pages for r in p.live}
    gone = [i for p in pages for i in p.deleted_ids]
    assert list(live) == [account_ids[0]] and live[account_ids[0]]["CSAT__c"] == 1.5
    assert gone == [account_ids[1]]
    assert box.salesforce_app.stats.snapshot()["total"] == 1

    for page in pages:
        cursors[page.sobject] = page.cursor or cursors[page.sobject]
    assert list(crm.changes(_queries(cursors))) == []  # nothing new: nothing delivered


def test_a_refused_query_names_it(box: Sandbox) -> None:
    crm = SalesforceConnector(settings(box))
    crm.connect()
    bad = ChangeQuery("Account", ("Name",), None, where="CSAT__c > 'x'")
    with pytest.raises(QueryError, match="Salesforce refused the query"):
        list(crm.changes([bad]))


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
            for page in crm.changes(_queries({})):
                delivered.extend(page.live)
        else:
            for records in crm.query_pages("SELECT Id FROM Account"):
                delivered.extend(records)
    message = str(raised.value)
    assert said in message and "the next cycle tries again" in message
    assert "GET /services/data/v59.0/query/" in message or LOOP in message
    assert len(delivered) == 2000  # the first page came through; nothing was guessed after
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
