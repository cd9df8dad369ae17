"""Bulk API 2.0 upserts, collections in flight at once and pacing by Sforce-Limit-Info
(issue 17), the connector against the sandbox in-process (sleep patched)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.exceptions import BudgetExhausted
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.bulk import POLL_CAP, to_csv
from connectors.salesforce.client import USAGE_FRESH
from connectors.sandbox.salesforce import ingest
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_salesforce_pull import settings
from tests.connectors.test_salesforce_push import COLLECTION, KEY, OBJECT, reports

JOBS = "/services/data/v59.0/jobs/ingest"
HOSTILE = 'a "quoted", comma\nnew line; 中文 naïve'


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=0, accounts=30, seed=17)
    with sandbox.in_process():
        yield sandbox


def connector(
    box: Sandbox, pauses: list[float] | None = None, **overrides: Any
) -> SalesforceConnector:
    slept = pauses if pauses is not None else []
    return SalesforceConnector(settings(box, **overrides), sleep=slept.append)


def _records(box: Sandbox, n: int) -> list[dict[str, Any]]:
    records = reports(box, n)
    for record in records:
        record["attributes"] = {"type": OBJECT}
        record["Summary__c"] = HOSTILE
        record["Forecast_Date__c"] = None  # cleared: #N/A in the CSV
    return records


def _run(crm: SalesforceConnector, records: list[dict[str, Any]]) -> Any:
    job = crm.start_job(OBJECT, KEY)
    crm.send_job(job, records)
    return job, crm.finish_job(job, KEY)


def test_a_job_upserts_by_external_id_in_a_handful_of_calls_and_again_updates(box: Sandbox) -> None:
    box.salesforce.add_validation_rule(
        OBJECT, lambda r: r.get("Jira_Project_Key__c") == "PRJ7", "PRJ7 is frozen"
    )
    pauses: list[float] = []
    crm = connector(box, pauses)
    crm.connect()
    records = _records(box, 450)
    before = crm.meter.snapshot()["by_endpoint"]
    _job, outcome = _run(crm, records)
    assert outcome is not None and outcome.error is None and outcome.unprocessed == ()
    assert len(outcome.results) == 450
    failed = [r for r in outcome.results.values() if not r.success]
    assert [(r.key, r.errors[0].code) for r in failed] == [
        (records[7][KEY], "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    ]
    assert "PRJ7 is frozen" in str(failed[0].errors[0])
    assert all(r.created and r.id for r in outcome.results.values() if r.success)
    stored = {r[KEY]: r for r in box.salesforce.records(OBJECT)}
    assert len(stored) == 449 and stored[records[3][KEY]]["Summary__c"] == HOSTILE
    calls = crm.meter.snapshot()["by_endpoint"]
    made = {k: n - before.get(k, 0) for k, n in calls.items() if n != before.get(k, 0)}
    assert made == {
        f"POST {JOBS}": 1,
        f"PUT {JOBS}/{{job}}/batches": 1,
        f"PATCH {JOBS}/{{job}}": 1,
        f"GET {JOBS}/{{job}}": 2,  # InProgress, then JobComplete
        f"GET {JOBS}/{{job}}/successfulResults": 1,
        f"GET {JOBS}/{{job}}/failedResults": 1,
        f"GET {JOBS}/{{job}}/unprocessedrecords": 1,
        "GET /services/data/v59.0/sobjects/{sobject}/describe": 1,
    }
    assert pauses == [0.5]  # backoff between the two polls, patched

    # Idempotent: the same records again update the ones there, never duplicate.
    box.salesforce.clear_validation_rules()
    _job, again = _run(crm, records)
    assert again is not None
    assert [r.created for r in again.results.values()] == [i == 7 for i in range(450)]
    assert len(box.salesforce.records(OBJECT)) == 450


def test_unprocessed_records_a_gone_job_and_one_never_closed(box: Sandbox) -> None:
    crm = connector(box)
    records = _records(box, 5)
    box.salesforce.ingest_fail_after = 2
    _job, outcome = _run(crm, records)
    assert outcome is not None and outcome.error and "fail this job after 2" in outcome.error
    assert sorted(outcome.results) == sorted(r[KEY] for r in records[:2])
    assert outcome.unprocessed == tuple(r[KEY] for r in records[2:])

    gone = crm.start_job(OBJECT, KEY)
    crm.send_job(gone, records)
    box.salesforce.ingest_jobs.clear()  # past Salesforce's retention
    assert crm.finish_job(gone, KEY) is None

    never_sent = crm.start_job(OBJECT, KEY)
    assert crm.finish_job(never_sent, KEY) is None
    assert box.salesforce.ingest_jobs[never_sent].state == "Aborted"


def test_csv_quotes_every_cell_and_writes_null_as_na() -> None:
    text = to_csv(
        [
            {"attributes": {"type": OBJECT}, KEY: "k1", "Summary__c": HOSTILE, "Total__c": 3.0},
            {KEY: "k2", "Summary__c": None, "Account__r": {"Key__c": "A"}},
        ]
    )
    assert text.splitlines()[0] == f'"{KEY}","Summary__c","Total__c","Account__r.Key__c"'
    assert '"k1","a ""quoted"", comma\nnew line; 中文 naïve","3",""' in text
    assert '"k2","#N/A","","A"' in text


def test_collections_in_flight_at_once_come_back_in_input_order(box: Sandbox) -> None:
    crm = connector(box, parallel_writes=4)
    records = reports(box, 1000)
    results = crm.upsert(OBJECT, KEY, records)
    assert [r.key for r in results] == [r[KEY] for r in records]
    assert all(r.success for r in results)
    assert crm.meter.by_endpoint[COLLECTION] == 5
    assert len(box.salesforce.records(OBJECT)) == 1000


def test_pacing_by_sforce_limit_info_stops_before_the_org_limit(box: Sandbox) -> None:
    box.salesforce.daily_api_limit = 100
    crm = connector(box, parallel_writes=4, daily_reserve_percent=10)
    crm.connect()
    box.salesforce.api_used = 69  # the org's other integrations
    crm.describe(OBJECT)  # answers api-usage=70/100
    assert not crm.paced and crm.parallel_writes == 4
    box.salesforce.api_used = 85
    crm.describe("Account")
    assert crm.paced and crm.parallel_writes == 1  # within twice the reserve: one at a time
    box.salesforce.api_used = 89
    crm.describe("Case")
    sent = box.salesforce_app.stats.snapshot()["total"]
    with pytest.raises(BudgetExhausted, match=r"90 of the org's 100 daily calls") as caught:
        crm.upsert(OBJECT, KEY, reports(box, 3))
    assert "daily_reserve_percent = 10" in str(caught.value)
    assert box.salesforce_app.stats.snapshot()["total"] == sent  # refused before sending
    # A minute later (a long-lived serve's next cycle) the old report no longer refuses:
    # one call goes and brings the org's usage afresh.
    box.salesforce.api_used = 10  # the rolling 24 hours freed calls
    crm._usage_at -= USAGE_FRESH + 1
    assert all(r.success for r in crm.upsert(OBJECT, KEY, reports(box, 3)))
    assert crm.api_usage is not None and crm.api_usage.used == 11 and not crm.paced


def test_poll_backoff_doubles_to_its_cap(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job Salesforce takes long over is polled at 0.5, 1, 2, 4, 8 s, then every 10 s."""
    pauses: list[float] = []
    crm = connector(box, pauses)
    job = crm.start_job(OBJECT, KEY)
    crm.send_job(job, _records(box, 3))
    step, reads = ingest._Processor.step, []

    def slow(self: Any) -> None:  # the job makes progress at the eighth status read only
        reads.append(1)
        if len(reads) >= 7:
            step(self)

    monkeypatch.setattr(ingest._Processor, "step", slow)
    outcome = crm.finish_job(job, KEY)
    assert outcome is not None and len(outcome.results) == 3
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, POLL_CAP, POLL_CAP]
