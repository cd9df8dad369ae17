"""Changes of several objects, deletions included, with every first page in one call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.exceptions import QueryError
from connectors.salesforce import ModstampCursor, SalesforceConnector
from connectors.salesforce.changes import ChangeQuery
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
