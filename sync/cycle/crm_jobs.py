"""The CRM part of the push for large cycles: report records upserted through the CRM's
asynchronous bulk jobs (connectors.crm.BulkUpserts) when more are due than the connector's
``bulk_threshold``, in a handful of calls for any number of records; below it, a few
collection requests in flight at once (:func:`collections`).

Crash safety. A job is recorded (``crm_jobs``: its id and the outbox rows it carries,
with their payload hashes) and its rows marked in flight in one transaction right after
the CRM created it, before its data is sent. The next push starts by settling every
recorded job (:func:`resume`): a job the CRM still has is polled to its end and its
results mapped back; one it no longer has, or that never got its data, has its rows sent
again. Sending a record twice is harmless: an upsert by external id finds the record the
first send created and updates it, so nothing is duplicated, and the ledger records what
was accepted, so outbox and ledger converge as with collections.

Mapping back: results come by external id (the outbox row's record key). A success marks
the row done with its ledger row; a record-level failure parks it with the CRM's reason;
a record the job never processed goes back to pending (sent again next cycle), or, when
the whole job failed before processing any record, is parked with the job's reason (so a
job that cannot succeed is not resent every cycle). A row re-planned with other content
while its job ran is left pending: the new content still has to be written.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from connectors.crm import BulkOutcome, BulkUpserts, CrmConnector, UpsertResult
from sync.cycle import rows
from sync.store import Store, repo

log = logging.getLogger(__name__)

#: Records in one job (well under Bulk API's 150 MB upload at a few KB a record).
JOB_RECORDS = 50_000
#: Records in one collection request (as many as the push's CRM_BATCH).
COLLECTION = 200


def bulk_of(crm: CrmConnector) -> BulkUpserts | None:
    """The connector's bulk jobs, when it has them."""
    return crm if isinstance(crm, BulkUpserts) else None


def resume(
    store: Store,
    crm: CrmConnector,
    now: datetime,
    run_id: int | None,
    result: Any,
    shards: list[str] | None = None,
) -> None:
    """Settle the jobs an earlier push left recorded (killed, or a job still running); with
    ``shards``, only jobs whose rows are all of those shards (a job carries the rows of one
    push, and another worker may be running its own)."""
    bulk = bulk_of(crm)
    if bulk is None:
        return
    with store.read() as conn:
        recorded = repo.jobs.open_jobs(conn, crm.side)
        if shards is not None:
            mine = set(shards)
            recorded = [
                job
                for job in recorded
                if all(
                    e.shard in mine
                    for e in repo.jobs.job_entries(conn, [r.outbox_id for r in job.rows]).values()
                )
            ]
    for job in recorded:
        log.info("resuming %s bulk job %s (%d records)", crm.side, job.job_id, len(job.rows))
        outcome = bulk.finish_job(job.job_id, job.external_id_field)
        settle(store, crm.side, job, outcome, now, run_id, result)


def push_in_jobs(
    store: Store,
    crm: CrmConnector,
    now: datetime,
    run_id: int | None,
    result: Any,
    shards: list[str] | None,
    should_stop: Callable[[], bool],
    told: Callable[[int], None] | None = None,
) -> bool:
    """Send the due CRM writes in bulk jobs when more are due than the threshold; False
    (nothing sent) when they are few or the CRM has no bulk jobs."""
    bulk = bulk_of(crm)
    if bulk is None:
        return False
    with store.read() as conn:
        total = repo.due_count(conn, "crm", now, shard=shards)
    if total <= bulk.bulk_threshold:
        return False
    seen: set[int] = set()
    while not should_stop():
        with store.read() as conn:
            due = [
                e for e in repo.due(conn, "crm", now, JOB_RECORDS, shard=shards) if e.id not in seen
            ]
        if not due:
            break
        seen.update(e.id for e in due)
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for entry in due:
            groups[(entry.payload["object"], entry.payload["external_id_field"])].append(entry)
        for (name, ext_field), entries in groups.items():
            if should_stop():
                return True
            job_id = bulk.start_job(name, ext_field)
            job = repo.jobs.JobRecord(
                job_id,
                crm.side,
                name,
                ext_field,
                tuple(repo.jobs.JobRow(e.id, e.payload_hash, e.record_key) for e in entries),
                now,
            )
            with store.transaction() as tx:
                repo.jobs.put_job(tx, job)
                repo.mark_inflight(tx, [e.id for e in entries], now=now)
            log.info("%s bulk job %s: %d records of %s", crm.side, job_id, len(entries), name)
            bulk.send_job(job_id, [e.payload["record"] for e in entries])
            outcome = bulk.finish_job(job_id, ext_field)
            settle(store, crm.side, job, outcome, now, run_id, result)
            if told is not None:
                told(len(entries))
    return True


def settle(
    store: Store,
    side: str,
    job: repo.jobs.JobRecord,
    outcome: BulkOutcome | None,
    now: datetime,
    run_id: int | None,
    result: Any,
) -> None:
    """Record what became of each row of ``job`` and forget the job, in one transaction."""
    with store.transaction() as tx:
        current = repo.jobs.job_entries(tx, [r.outbox_id for r in job.rows])
        done: list[int] = []
        ledger: list[repo.LedgerRow] = []
        again: list[int] = []
        for row in job.rows:
            entry = current.get(row.outbox_id)
            if entry is None or entry.state == "done":
                continue  # cancelled since, or recorded already
            found = outcome.results.get(row.record_key) if outcome is not None else None
            if found is None:
                if outcome is not None and outcome.error and not outcome.results:
                    # The whole job failed before any record (a field the org refuses):
                    # sending it again as it is would fail again.
                    _failed(tx, side, entry, outcome.error, now, result)
                else:
                    again.append(entry.id)  # gone, never sent, or not processed: resend
            elif entry.payload_hash != row.payload_hash:
                again.append(entry.id)  # re-planned meanwhile: the new content is due
            elif found.success:
                done.append(entry.id)
                ledger.append(
                    rows.crm_ledger_row(entry.record_key, entry.payload["digest"], run_id)
                )
            else:
                error = "; ".join(str(e) for e in found.errors) or "rejected"
                _failed(tx, side, entry, error, now, result)
        repo.mark_done(tx, done, ledger, now=now)
        repo.jobs.set_pending(tx, again, now)
        repo.jobs.delete_job(tx, job.job_id)
    result.count(f"{side}_records", len(done))
    if again:
        log.info("%s bulk job %s: %d records to send again", side, job.job_id, len(again))


def collections(
    crm: CrmConnector,
    name: str,
    external_id_field: str,
    entries: list[Any],
    lanes: int,
) -> Iterator[tuple[list[Any], list[UpsertResult] | BaseException]]:
    """Upsert ``entries`` in collections of :data:`COLLECTION` records, ``lanes`` of them in
    flight at once (a small thread pool: where latency, not the CRM, sets the pace). Yields
    each collection's entries with its results, or with the error it raised, in input
    order; every collection has its answer before the first is yielded."""
    parts = [entries[i : i + COLLECTION] for i in range(0, len(entries), COLLECTION)]

    def send(part: list[Any]) -> list[UpsertResult]:
        return crm.upsert(name, external_id_field, [e.payload["record"] for e in part])

    if lanes <= 1 or len(parts) <= 1:
        for part in parts:
            yield part, send(part)  # one at a time: an error stops the rest unsent
        return
    with ThreadPoolExecutor(max_workers=min(lanes, len(parts))) as pool:
        futures = [pool.submit(send, part) for part in parts]
    for part, future in zip(parts, futures, strict=True):
        error = future.exception()
        yield part, error if error is not None else future.result()


def _failed(tx: Any, side: str, entry: Any, error: str, now: datetime, result: Any) -> None:
    repo.mark_failed(tx, entry.id, error, now)
    result.failed.append({"side": side, "record": entry.record_key, "error": error})


__all__ = [
    "COLLECTION",
    "JOB_RECORDS",
    "bulk_of",
    "collections",
    "push_in_jobs",
    "resume",
    "settle",
]
