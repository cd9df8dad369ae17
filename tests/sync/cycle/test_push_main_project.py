"""The push where a customer holds one report on its own record (HubSpot without a custom
object: company properties): only the main project's report (the lowest project key among
the customer's stored links) is sent, however the outbox is batched and whichever of the
customer's reports changed. Real push against the in-process HubSpot sandbox portal, on
a SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from connectors.crm import OneReportPerCustomer
from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID
from sync.cycle import push as push_stage
from sync.cycle import rows
from sync.store import Store, open_store, repo
from tests.connectors.hubspot_portal import Portal, in_process_portal

COMPANIES = "0-2"
UPDATE = "POST /crm/v3/objects/{type}/batch/update"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def portal() -> Portal:
    made = in_process_portal(accounts=5)
    made.backend.enterprise = False  # no custom object: reports go into company properties
    return made


def company_of(portal: Portal) -> str:
    return sorted(portal.backend.records[COMPANIES], key=int)[0]


def link(store: Store, company: str, *projects: str) -> None:
    with store.transaction() as tx:
        for project in projects:
            row: repo.LinkRow = {
                "customer_id": company,
                "rule": "jira_field",
                "scope": "item",
                "item_count": 3,
            }
            repo.set_links(tx, project, [row], at=NOW)


def queue(store: Store, company: str, *projects: str) -> None:
    """Report writes for (project, company), queued in this order."""
    with store.transaction() as tx:
        for n, project in enumerate(projects):
            key = f"{project}:{company}"
            record = {
                "attributes": {"type": "jira_project_status"},
                "jira_sync_key": key,
                "company_id": company,
                "jira_project_key": project,
                "issues_total": 10 + n,
            }
            payload: dict[str, Any] = {
                "object": "jira_project_status",
                "external_id_field": "jira_sync_key",
                "record": record,
                "digest": f"digest-{project}",
            }
            repo.enqueue_many(
                tx, [rows.outbox_row("crm", key, "crm_upsert", payload, None)], now=NOW
            )


def send(store: Store, portal: Portal) -> push_stage.PushResult:
    result = push_stage.PushResult()
    jira: Any = None  # no Jira write is queued: the push never touches it
    push_stage.push(store, cast(Any, jira), portal.connector(), NOW, None, result)
    return result


def test_the_main_project_wins_when_the_outbox_splits_a_companys_reports(
    store: Store, portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One record per upsert call: the connector alone would write ABC, then XYZ over it."""
    monkeypatch.setattr(push_stage, "CRM_BATCH", 1)
    company = company_of(portal)
    link(store, company, "ABC", "XYZ")
    queue(store, company, "ABC", "XYZ")
    assert isinstance(portal.connector(), OneReportPerCustomer)
    result = send(store, portal)
    props = portal.backend.records[COMPANIES][company].properties
    assert props["jira_project_key"] == "ABC" and props["issues_total"] == "10"
    assert portal.fired(UPDATE) == 1
    assert result.written == {"hubspot_records": 1} and result.failed == []
    with store.read() as conn:
        assert repo.due(conn, "crm", NOW, 10) == []
        ledger = rows.crm_ledger_of(repo.ledger_get_many(conn, "crm", [f"XYZ:{company}"]))
    assert ledger == {f"XYZ:{company}": "digest-XYZ"}  # recorded: nothing to send next time


def test_a_change_to_another_projects_report_leaves_the_main_ones_in_place(
    store: Store, portal: Portal
) -> None:
    """Only XYZ's report changed (ABC's is written and current): nothing is sent."""
    company = company_of(portal)
    link(store, company, "ABC", "XYZ")
    queue(store, company, "ABC")
    send(store, portal)
    queue(store, company, "XYZ")
    before = portal.fired(UPDATE)
    result = send(store, portal)
    assert portal.fired(UPDATE) == before and result.written == {}
    assert portal.backend.records[COMPANIES][company].properties["jira_project_key"] == "ABC"


def test_with_a_custom_object_every_report_is_sent(store: Store, portal: Portal) -> None:
    portal.backend.enterprise = True
    company = company_of(portal)
    link(store, company, "ABC", "XYZ")
    queue(store, company, "ABC", "XYZ")
    result = send(store, portal)
    assert result.written == {"hubspot_records": 2}
    keys = {r.properties["jira_sync_key"] for r in portal.backend.records[CUSTOM_TYPE_ID].values()}
    assert keys == {f"ABC:{company}", f"XYZ:{company}"}
