"""Writing to the HubSpot sandbox over real HTTPS: batch upserts of 100 into the custom
object or company properties, per-record results, notes with the HTML report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.crm import REPORT
from connectors.exceptions import ConfigError, RejectedRecord
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.hubspot.models import Rejection
from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID
from connectors.sandbox.server import Tls
from tests.connectors.hubspot_portal import Portal, needs, served_portal

COMPANIES = "0-2"
UPSERT = "POST /crm/v3/objects/{type}/batch/upsert"
UPDATE = "POST /crm/v3/objects/{type}/batch/update"
ASSOCIATE = "POST /crm/v4/associations/{from}/{to}/batch/associate/default"


@pytest.fixture
def portal(serve: Callable[[SandboxApp], str], tls: Tls) -> Portal:
    return served_portal(serve, tls, accounts=80)


def reports(portal: Portal, projects: tuple[str, ...] = ("ABC", "DEF")) -> list[dict[str, Any]]:
    companies = sorted(portal.backend.records[COMPANIES], key=int)
    return [
        {
            "jira_sync_key": f"{company}:{project}",
            "company_id": company,
            "jira_project_key": project,
            "issues_total": 10 + n,
            "health": "Green",
            "last_synced": datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        }
        for n, company in enumerate(companies)
        for project in projects
    ]


def test_upserts_go_in_batches_of_100_with_a_result_per_record(portal: Portal) -> None:
    records = reports(portal)  # 160 records
    connector = portal.connector()
    first = connector.upsert("jira_project_status", "jira_sync_key", records)
    assert [r.key for r in first] == [r["jira_sync_key"] for r in records]
    assert all(r.success and r.created and r.id for r in first)
    assert portal.fired(UPSERT) == 2 and portal.fired(ASSOCIATE) == 2
    stored = portal.backend.records[CUSTOM_TYPE_ID]
    assert len(stored) == 160
    for result, record in zip(first, records, strict=True):
        assert result.id is not None
        saved = stored[result.id].properties
        assert saved["issues_total"] == str(record["issues_total"])
        assert saved["last_synced"] == "2026-11-21T10:00:00.000Z"
        linked = portal.backend.associated(CUSTOM_TYPE_ID, result.id, COMPANIES)
        assert list(linked) == [record["company_id"]]

    records[0]["health"] = "Red"
    again = connector.upsert("jira_project_status", "jira_sync_key", records)
    assert all(r.success and not r.created for r in again)
    assert [r.id for r in again] == [r.id for r in first]
    # Associated again (a crash between the two calls leaves records the rerun's upsert
    # answers as existing), yet each to its one company once.
    assert len(stored) == 160 and portal.fired(ASSOCIATE) == 4
    for result, record in zip(again, records, strict=True):
        assert result.id is not None
        linked = portal.backend.associated(CUSTOM_TYPE_ID, result.id, COMPANIES)
        assert list(linked) == [record["company_id"]]
    assert stored[str(first[0].id)].properties["health"] == "Red"


def test_a_rejected_record_fails_alone(portal: Portal) -> None:
    records = reports(portal)[:5]
    records[1]["health"] = "Purple"
    portal.backend.rejections.append(
        Rejection(
            CUSTOM_TYPE_ID,
            lambda v: v.get("jira_sync_key") == records[3]["jira_sync_key"],
            "Blocked by a rule",
        )
    )
    results = portal.connector().upsert("jira_project_status", "jira_sync_key", records)
    assert [r.success for r in results] == [True, False, True, False, True]
    assert results[1].errors[0].code == "VALIDATION_ERROR"
    assert "Purple" in results[1].errors[0].message and results[1].errors[0].fields == ("health",)
    assert results[3].errors[0].message == "Blocked by a rule"
    assert len(portal.backend.records[CUSTOM_TYPE_ID]) == 3


def test_without_a_custom_object_the_main_project_goes_into_company_properties(
    portal: Portal,
) -> None:
    portal.backend.enterprise = False
    records = reports(portal, ("XYZ", "ABC"))[:6]  # 3 companies, 2 projects each
    connector = portal.connector()
    results = connector.upsert("jira_project_status", "jira_sync_key", records)
    assert all(r.success for r in results) and portal.fired(UPSERT) == 0
    assert portal.fired(UPDATE) == 1
    for record, result in zip(records, results, strict=True):
        assert result.id == record["company_id"]
        company = portal.backend.records[COMPANIES][record["company_id"]].properties
        assert company["jira_project_key"] == "ABC"  # the lowest key: the main project
        assert company["jira_sync_key"] == f"{record['company_id']}:ABC"
    problems = connector.check_object(
        next(o for o in connector.objects(needs()) if o.kind == REPORT)
    )
    assert problems == []  # checked against companies
    # A cycle's sign-in describes the report object: where the reports go.
    described = portal.connector(report_object="jira_project_status").describe(
        "jira_project_status"
    )
    assert described["object"] == "companies"
    assert "jira_sync_key" in {p["name"] for p in described["properties"]}
    with pytest.raises(ConfigError, match="no object 'jira_project_status'"):
        connector.describe("jira_project_status")  # not the report object: not found


def test_a_refused_company_update_fails_its_records(portal: Portal) -> None:
    portal.backend.enterprise = False
    records = reports(portal, ("ABC", "DEF"))[:4]
    gone = records[2]["company_id"]
    portal.backend.archive(portal.backend.records[COMPANIES][gone])
    results = portal.connector().upsert("jira_project_status", "jira_sync_key", records)
    assert [r.success for r in results] == [True, True, False, False]
    assert results[2].errors[0].code == "OBJECT_NOT_FOUND"


def test_the_html_report_is_a_note_with_a_file_on_the_company(portal: Portal) -> None:
    connector = portal.connector()
    company = sorted(portal.backend.records[COMPANIES], key=int)[0]
    before = datetime.fromtimestamp(portal.clock.now, UTC) - timedelta(seconds=1)
    note = connector.attach_file(company, "Project status", "status-2026-11.html", b"<h1>ok</h1>")
    notes = portal.backend.records["0-4"]
    attached = notes[note].properties["hs_attachment_ids"]
    assert attached is not None
    assert portal.backend.files[attached]["content"] == b"<h1>ok</h1>"
    assert list(portal.backend.associated("0-4", note, COMPANIES)) == [company]
    found = connector.files_on([company], before)
    assert [(f.id, f.customer_id, f.title, f.file_name) for f in found] == [
        (note, company, "Project status", "status-2026-11.html")
    ]
    later = datetime.fromtimestamp(portal.clock.now + 60, UTC)
    assert connector.files_on([company], later) == []


def test_a_note_on_a_missing_company_is_rejected(portal: Portal) -> None:
    with pytest.raises(RejectedRecord, match="99999"):
        portal.connector().attach_file("99999", "Project status", "s.html", b"x")


def test_check_object_names_what_is_wrong(portal: Portal) -> None:
    connector = portal.connector()
    report = next(o for o in connector.objects(needs()) if o.kind == REPORT)
    assert connector.check_object(report) == []
    from connectors.crm import CrmField, CrmObject

    broken = CrmObject(
        REPORT,
        "jira_project_status",
        "[test]",
        (
            CrmField("helth", "[test] health", write=True),
            CrmField("jira_project_key", "[test] key", write=True, external_id=True),
            CrmField("hs_object_id", "[test] id", write=True),
        ),
    )
    problems = {p.field: p.problem for p in connector.check_object(broken)}
    assert "did you mean health" in problems["helth"]
    assert "not a unique property" in problems["jira_project_key"]
    assert "read-only" in problems["hs_object_id"]


@pytest.mark.parametrize("enterprise", [True, False])
def test_reconcile_reads_the_reports_back_where_they_went(portal: Portal, enterprise: bool) -> None:
    from connectors.crm import Read

    portal.backend.enterprise = enterprise
    records = reports(portal, ("ABC",))[:3]
    connector = portal.connector()
    connector.upsert("jira_project_status", "jira_sync_key", records)
    pages = list(connector.changes(needs(), [Read(REPORT)]))
    found = {r.data.get("jira_sync_key") for p in pages for r in p.live}
    assert {r["jira_sync_key"] for r in records} <= found
    if enterprise:
        assert found == {r["jira_sync_key"] for r in records}


def test_a_run_with_cached_properties_finds_the_custom_object_without_the_schemas(
    portal: Portal,
) -> None:
    first = portal.connector()
    cached = first.describe("jira_project_status")  # what the state store keeps
    assert portal.fired("GET /crm/v3/schemas") == 1
    later = portal.connector()  # the next run's process
    later.restore_describe("jira_project_status", cached)
    results = later.upsert("jira_project_status", "jira_sync_key", reports(portal)[:3])
    assert all(r.success for r in results)
    assert len(portal.backend.records[CUSTOM_TYPE_ID]) == 3
    assert portal.fired("GET /crm/v3/schemas") == 1  # not read again
