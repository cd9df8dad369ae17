"""Bulk API 2.0 ingest jobs in the Salesforce sandbox (issue 17), driven by the unmodified
simple-salesforce 1.12.10 ``bulk2`` client in-process and over HTTPS: an upsert by external
id (created, then updated: the same Id, no second record), hostile text through CSV
(quotes, commas, newlines, Chinese), per-record failures in ``failedResults``, a job
stopped part-way with the rest in ``unprocessedrecords``, a header naming an unknown
field failing the whole job, and the refusals of a job in the wrong state."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.salesforce import SalesforceBackend
from connectors.sandbox.world import generate_world
from tests.sandbox.conftest import Transport

INSTANCE = "https://sandbox.my.salesforce.com"
TOKEN = "00DSANDBOX!ingest-token"
OBJECT = "Jira_Project_Status__c"
HOSTILE = 'He said "ship it", then\nleft; 中文项目, naïve, tab\there'


@dataclass
class Org:
    backend: SalesforceBackend
    app: SandboxApp
    sf: Salesforce


@pytest.fixture
def org(transport: Transport) -> Iterator[Org]:
    backend = SalesforceBackend(
        generate_world(issues=0, accounts=8, seed=17), access_token=TOKEN, instance_url=INSTANCE
    )
    app = SandboxApp(backend)
    with transport.mount(app, INSTANCE):
        yield Org(backend, app, Salesforce(instance_url=INSTANCE, session_id=TOKEN))


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _records(org: Org, n: int, summary: str = HOSTILE) -> list[dict[str, str]]:
    account = org.backend.records("Account")[0]["Id"]
    return [
        {
            "Jira_Sync_Key__c": f"P{i}:{account}",
            "Account__c": account,
            "Jira_Project_Key__c": f"P{i}",
            "Issues_Total__c": str(10 + i),
            "Summary__c": summary,
        }
        for i in range(n)
    ]


def test_upsert_by_external_id_through_bulk2_is_idempotent(org: Org) -> None:
    """Twice the same records: created, then updated in place (one record per key)."""
    bulk = org.sf.bulk2.Jira_Project_Status__c
    first = bulk.upsert(records=_records(org, 5), external_id_field="Jira_Sync_Key__c", wait=0)
    assert [(r["numberRecordsProcessed"], r["numberRecordsFailed"]) for r in first] == [(5, 0)]
    created = _rows(bulk.get_successful_records(first[0]["job_id"]))
    assert {r["sf__Created"] for r in created} == {"true"}
    stored = org.backend.records(OBJECT)
    assert len(stored) == 5
    assert {r["Summary__c"] for r in stored} == {HOSTILE}  # quotes, newline, Chinese kept
    again = bulk.upsert(
        records=_records(org, 5, summary="second"), external_id_field="Jira_Sync_Key__c", wait=0
    )
    updated = _rows(bulk.get_successful_records(again[0]["job_id"]))
    assert {r["sf__Created"] for r in updated} == {"false"}
    assert {r["sf__Id"] for r in updated} == {r["sf__Id"] for r in created}
    assert len(org.backend.records(OBJECT)) == 5
    assert {r["Summary__c"] for r in org.backend.records(OBJECT)} == {"second"}


def test_failed_and_unprocessed_records_and_null_cells(org: Org) -> None:
    """A rejected record is in failedResults with its sf__Error; ``#N/A`` nulls a field, an
    empty cell leaves it; a job failed part-way lists the rest as unprocessed."""
    org.backend.add_validation_rule(
        OBJECT, lambda r: r.get("Jira_Project_Key__c") == "P1", "P1 is frozen"
    )
    bulk = org.sf.bulk2.Jira_Project_Status__c
    records = _records(org, 3)
    done = bulk.upsert(records=records, external_id_field="Jira_Sync_Key__c", wait=0)
    assert done[0]["numberRecordsFailed"] == 1
    failed = _rows(bulk.get_failed_records(done[0]["job_id"]))
    assert [(r["Jira_Project_Key__c"], r["sf__Error"]) for r in failed] == [
        ("P1", "FIELD_CUSTOM_VALIDATION_EXCEPTION:P1 is frozen: --")
    ]
    key = records[0]["Jira_Sync_Key__c"]
    bulk.upsert(
        records=[{"Jira_Sync_Key__c": key, "Summary__c": "#N/A", "Issues_Total__c": ""}],
        external_id_field="Jira_Sync_Key__c",
        wait=0,
    )
    (row,) = [r for r in org.backend.records(OBJECT) if r["Jira_Sync_Key__c"] == key]
    assert row["Summary__c"] is None and row["Issues_Total__c"] == 10

    org.backend.ingest_fail_after = 1
    with pytest.raises(Exception, match="fail this job after 1"):
        bulk.upsert(records=_records(org, 4, "x"), external_id_field="Jira_Sync_Key__c", wait=0)
    (job,) = [j for j in org.backend.ingest_jobs.values() if j.state == "Failed"]
    assert len(_rows(bulk.get_unprocessed_records(job.id))) == 3
    assert len(_rows(bulk.get_successful_records(job.id))) == 1


def test_a_job_is_refused_as_salesforce_refuses_it(org: Org) -> None:
    client = org.sf.bulk2.Jira_Project_Status__c._client
    job = client.create_job("upsert", external_id_field="Jira_Sync_Key__c")
    assert job["state"] == "Open" and job["externalIdFieldName"] == "Jira_Sync_Key__c"
    with pytest.raises(SalesforceError):
        client.get_ingest_results(job["id"], "successfulResults")  # not finished
    client.upload_job_data(job["id"], "Jira_Sync_Key__c,No_Such__c\nk,1\n")
    with pytest.raises(SalesforceError):
        client.upload_job_data(job["id"], "Jira_Sync_Key__c\nk\n")  # one upload a job
    client.close_job(job["id"])
    info = client.get_job(job["id"], False)
    assert info["state"] == "Failed"
    assert "Field name not found : No_Such__c" in info["errorMessage"]
    with pytest.raises(SalesforceError):
        client.create_job("upsert", external_id_field="Name")  # not an external id
    answer = requests.get(
        f"{INSTANCE}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert answer.json()["DailyBulkApiBatches"] == {"Max": 15000, "Remaining": 15000}
    org.backend.daily_bulk_batches = 0  # the org's daily Bulk API batches spent
    with pytest.raises(Exception, match="daily limit of 0 Bulk API batches"):
        org.sf.bulk2.Jira_Project_Status__c.upsert(
            records=[{"Jira_Sync_Key__c": "k"}], external_id_field="Jira_Sync_Key__c", wait=0
        )
    stats = org.app.stats.snapshot()["by_endpoint"]
    assert stats["POST /services/data/v{version}/jobs/ingest"] == 3
    assert stats["PUT /services/data/v{version}/jobs/ingest/{job}/batches"] == 3
