"""The push's CRM part on a real SQLite store with the Salesforce connector against the
sandbox in-process (issue 17): collections four at a time, each answer recorded in input
order and one that failed leaving only its own rows to resend; above the threshold one
Bulk API 2.0 job, upsert by external id, and a job recorded by a killed run resumed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.push import jsonable
from connectors.sandbox.faults import Fault
from connectors.sandbox.stack import Sandbox
from sync.cycle import rows
from sync.cycle.push import PushResult, push
from sync.store import Store, open_store, repo
from sync.store.schema import outbox
from tests.connectors.test_salesforce_pull import settings
from tests.connectors.test_salesforce_push import KEY, OBJECT, reports

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
COLLECTION = "PATCH /services/data/v59.0/composite/sobjects/{sobject}/{field}"


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=0, accounts=20, seed=3)
    with sandbox.in_process():
        yield sandbox


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


def _queue(store: Store, box: Sandbox, n: int) -> None:
    queued = []
    for record in reports(box, n):
        record["attributes"] = {"type": OBJECT}
        payload = {"object": OBJECT, "external_id_field": KEY, "record": record, "digest": "d"}
        queued.append(rows.outbox_row("crm", record[KEY], "crm_upsert", payload, None, "d"))
    with store.transaction() as tx:
        repo.enqueue_many(tx, _jsonable(queued), now=NOW)


def _jsonable(queued: list[Any]) -> list[Any]:
    for row in queued:
        record = row["payload"]["record"]
        row["payload"]["record"] = {k: jsonable(v) for k, v in record.items()}
    return queued


def _states(store: Store) -> dict[str, int]:
    with store.read() as conn:
        found = conn.execute(
            sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
        ).all()
    return {str(state): int(n) for state, n in found}


def _push(store: Store, crm: SalesforceConnector) -> PushResult:
    result = PushResult()
    push(store, None, crm, NOW, None, result)  # type: ignore[arg-type]  # no Jira write queued
    return result


def test_four_collections_at_once_and_a_failed_one_leaves_only_its_rows(
    box: Sandbox, store: Store
) -> None:
    _queue(store, box, 1000)
    crm = SalesforceConnector(
        settings(box, parallel_writes=4), retry=RetryPolicy(attempts=1), sleep=lambda _: None
    )
    crm.connect()
    box.salesforce_app.faults.add(
        Fault("500", count=1, endpoint="/composite/sobjects/{sobject}", method="PATCH")
    )
    with pytest.raises(Exception, match="500"):
        _push(store, crm)
    # Four collections went at once; one was refused, the three others are recorded.
    assert _states(store) == {"done": 600, "inflight": 200, "pending": 200}
    assert len(box.salesforce.records(OBJECT)) == 600
    result = _push(store, crm)  # the in-flight rows are sent again, idempotently
    assert result.written == {"salesforce_records": 400}
    assert _states(store) == {"done": 1000}
    assert len(box.salesforce.records(OBJECT)) == 1000


def test_above_the_threshold_one_job_and_a_recorded_job_is_resumed(
    box: Sandbox, store: Store
) -> None:
    _queue(store, box, 30)
    crm = SalesforceConnector(settings(box, bulk_threshold=10), sleep=lambda _: None)
    result = _push(store, crm)
    assert result.written == {"salesforce_records": 30}
    by_endpoint = crm.meter.snapshot()["by_endpoint"]
    assert by_endpoint["POST /services/data/v59.0/jobs/ingest"] == 1
    assert COLLECTION not in by_endpoint
    assert _states(store) == {"done": 30}

    # A run killed after Salesforce processed its job: the job is recorded, its rows in
    # flight. The next push polls that job and maps its results: no second job.
    with store.transaction() as tx:
        tx.execute(sa.delete(outbox))
    _queue(store, box, 30)
    with store.read() as conn:
        due = repo.due(conn, "crm", NOW, 100)
    job_id = crm.start_job(OBJECT, KEY)
    job = repo.jobs.JobRecord(
        job_id,
        "salesforce",
        OBJECT,
        KEY,
        tuple(repo.jobs.JobRow(e.id, e.payload_hash, e.record_key) for e in due),
        NOW,
    )
    with store.transaction() as tx:
        repo.jobs.put_job(tx, job)
        repo.mark_inflight(tx, [e.id for e in due], now=NOW)
    crm.send_job(job_id, [e.payload["record"] for e in due])
    crm.meter.reset()
    result = _push(store, crm)
    assert result.written == {"salesforce_records": 30}
    assert "POST /services/data/v59.0/jobs/ingest" not in crm.meter.snapshot()["by_endpoint"]
    assert _states(store) == {"done": 30}
    assert len(box.salesforce.records(OBJECT)) == 30  # updated in place, none twice
    with store.read() as conn:
        assert repo.jobs.open_jobs(conn, "salesforce") == []


def test_an_upload_refused_then_a_close_answer_lost(box: Sandbox, store: Store) -> None:
    """A 500 on the upload fails the push with the job recorded; the next push aborts that
    job (it never got its data) and sends again. A close whose answer was lost is retried,
    finds the job closed, and goes on."""
    _queue(store, box, 30)
    crm = SalesforceConnector(
        settings(box, bulk_threshold=10), retry=RetryPolicy(attempts=2), sleep=lambda _: None
    )
    box.salesforce_app.faults.add(Fault("500", count=1, endpoint="/batches", method="PUT"))
    with pytest.raises(Exception, match="500"):
        _push(store, crm)
    assert _states(store) == {"inflight": 30}
    result = _push(store, crm)
    assert result.written == {"salesforce_records": 30}
    assert _states(store) == {"done": 30}
    states = sorted(job.state for job in box.salesforce.ingest_jobs.values())
    assert states == ["Aborted", "JobComplete"]

    with store.transaction() as tx:
        tx.execute(sa.delete(outbox))
    _queue(store, box, 30)
    lost = Fault("drop_after", count=1, endpoint="/jobs/ingest/{job}", method="PATCH")
    box.salesforce_app.faults.add(lost)
    fired = box.salesforce_app.faults.fired
    assert _push(store, crm).written == {"salesforce_records": 30}
    assert box.salesforce_app.faults.fired == fired + 1  # the close, applied, answer lost
    assert _states(store) == {"done": 30}
    assert len(box.salesforce.records(OBJECT)) == 30  # updated in place, none twice


def test_a_push_of_other_shards_leaves_a_recorded_job_alone(box: Sandbox, store: Store) -> None:
    """On PostgreSQL several workers push their own shards: a job belongs to the push that
    created it, and another worker's push does not poll, abort or settle it."""
    _queue(store, box, 3)
    crm = SalesforceConnector(settings(box, bulk_threshold=10), sleep=lambda _: None)
    with store.read() as conn:
        due = repo.due(conn, "crm", NOW, 100)
    job_id = crm.start_job(OBJECT, KEY)  # recorded, its data not sent yet (Open)
    rows_of = tuple(repo.jobs.JobRow(e.id, e.payload_hash, e.record_key) for e in due)
    with store.transaction() as tx:
        repo.jobs.put_job(tx, repo.jobs.JobRecord(job_id, "salesforce", OBJECT, KEY, rows_of, NOW))
        repo.mark_inflight(tx, [e.id for e in due], now=NOW)
    result = PushResult()
    push(store, None, crm, NOW, None, result, ["jira:OTHER"])  # type: ignore[arg-type]
    assert box.salesforce.ingest_jobs[job_id].state == "Open"
    assert _states(store) == {"inflight": 3}
    mine = sorted({str(e.shard) for e in due})
    push(store, None, crm, NOW, None, result, mine)  # type: ignore[arg-type]
    assert box.salesforce.ingest_jobs[job_id].state == "Aborted"  # never got its data
    assert _states(store) == {"done": 3} and result.written == {"salesforce_records": 3}
