"""Bulk write jobs in flight at the CRM, and the outbox rows each carries (``crm_jobs``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks
from sync.store.repo.outbox import OutboxEntry
from sync.store.schema import crm_jobs, outbox

__all__ = [
    "JobRecord",
    "JobRow",
    "delete_job",
    "job_entries",
    "open_jobs",
    "put_job",
    "set_pending",
]


@dataclass(frozen=True, slots=True)
class JobRow:
    """One outbox row a job carries, as it was when the job was created."""

    outbox_id: int
    payload_hash: str
    record_key: str


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job created at the CRM whose results are not recorded yet."""

    job_id: str
    side: str
    object: str
    external_id_field: str
    rows: tuple[JobRow, ...]
    created_at: datetime


def put_job(conn: Connection, job: JobRecord) -> None:
    """Remember a job just created (commit this before sending its data)."""
    conn.execute(
        sa.insert(crm_jobs).values(
            job_id=job.job_id,
            side=job.side,
            object=job.object,
            external_id_field=job.external_id_field,
            rows=[[r.outbox_id, r.payload_hash, r.record_key] for r in job.rows],
            created_at=aware(job.created_at, "created_at"),
        )
    )


def open_jobs(conn: Connection, side: str) -> list[JobRecord]:
    """The side's jobs whose results are not recorded yet, oldest first."""
    stmt = sa.select(crm_jobs).where(crm_jobs.c.side == side).order_by(crm_jobs.c.created_at)
    return [
        JobRecord(
            row.job_id,
            row.side,
            row.object,
            row.external_id_field,
            tuple(JobRow(int(i), str(h), str(k)) for i, h, k in row.rows),
            row.created_at,
        )
        for row in conn.execute(stmt)
    ]


def delete_job(conn: Connection, job_id: str) -> None:
    """Forget a job once its results are recorded (in that same transaction)."""
    conn.execute(sa.delete(crm_jobs).where(crm_jobs.c.job_id == job_id))


def job_entries(conn: Connection, ids: Sequence[int]) -> dict[int, OutboxEntry]:
    """The outbox rows of a job as they are now, by id (rows cancelled since are absent)."""
    found: dict[int, OutboxEntry] = {}
    for batch in in_chunks(ids):
        for row in conn.execute(sa.select(outbox).where(outbox.c.id.in_(batch))):
            found[row.id] = OutboxEntry(**row._mapping)
    return found


def set_pending(conn: Connection, ids: Iterable[int], now: datetime) -> None:
    """Put in-flight rows back to pending (not sent after all, or to send again), keeping
    their attempts: being left unprocessed is not the record's fault."""
    for batch in in_chunks(ids):
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(batch), outbox.c.state == "inflight")
            .values(state="pending", updated_at=aware(now, "now"))
        )
