"""Bulk tasks in flight: a remote's queued bulk edit and the outbox rows it carries.

Recorded in its own transaction as soon as the remote answers the submit, and deleted in
the transaction that settles its rows (done with their ledger rows, or parked): a crash
in between leaves the record, and the next push reads the task's progress first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks
from sync.store.repo.outbox import OutboxEntry
from sync.store.schema import bulk_tasks, jira_items, outbox

__all__ = [
    "BulkTask",
    "bulk_task_delete",
    "bulk_task_put",
    "bulk_tasks_open",
    "issue_ids",
    "outbox_rows",
]


@dataclass(frozen=True, slots=True)
class BulkTask:
    """A submitted bulk edit not settled yet."""

    task_id: str
    target: str
    #: (outbox row id, its payload hash when submitted): a row re-planned since (another
    #: hash) is not settled by the task, it is sent afresh once the task is finished.
    outbox_ids: tuple[tuple[int, str], ...]
    record_keys: tuple[str, ...]
    shards: tuple[str, ...]
    submitted_at: datetime
    run_id: int | None


def bulk_task_put(
    conn: Connection,
    task_id: str,
    target: str,
    outbox_ids: Sequence[tuple[int, str]],
    record_keys: Sequence[str],
    shards: Iterable[str | None],
    *,
    now: datetime,
    run_id: int | None = None,
) -> None:
    """Record a submitted task (commit it at once: the remote already has the task)."""
    conn.execute(
        sa.insert(bulk_tasks).values(
            task_id=task_id,
            target=target,
            outbox_ids=[[int(i), str(h)] for i, h in outbox_ids],
            record_keys=list(record_keys),
            shards=sorted({s for s in shards if s}),
            submitted_at=aware(now, "now"),
            run_id=run_id,
        )
    )


def bulk_tasks_open(
    conn: Connection, target: str, shards: Sequence[str] | None = None
) -> list[BulkTask]:
    """The tasks of ``target`` not settled, oldest first; with ``shards``, those that
    carry a row of one of them (or of no shard)."""
    t = bulk_tasks
    rows = conn.execute(
        sa.select(t).where(t.c.target == target).order_by(t.c.submitted_at, t.c.task_id)
    )
    found = [
        BulkTask(
            task_id=str(r.task_id),
            target=str(r.target),
            outbox_ids=tuple((int(i), str(h)) for i, h in r.outbox_ids),
            record_keys=tuple(str(k) for k in r.record_keys),
            shards=tuple(str(s) for s in r.shards),
            submitted_at=r.submitted_at,
            run_id=r.run_id,
        )
        for r in rows
    ]
    if shards is None:
        return found
    wanted = set(shards)
    return [task for task in found if not task.shards or wanted & set(task.shards)]


def bulk_task_delete(conn: Connection, task_id: str) -> None:
    """Forget a settled task (in the transaction that settles its rows)."""
    conn.execute(sa.delete(bulk_tasks).where(bulk_tasks.c.task_id == task_id))


def issue_ids(conn: Connection, keys: Iterable[str]) -> dict[str, str]:
    """``{key: Jira issue id}`` of the stored work items among ``keys`` that have one."""
    out: dict[str, str] = {}
    j = jira_items
    for batch in in_chunks(sorted(set(keys))):
        stmt = sa.select(j.c.key, j.c.issue_id).where(j.c.key.in_(batch), j.c.issue_id.is_not(None))
        out.update({str(key): str(issue) for key, issue in conn.execute(stmt)})
    return out


def outbox_rows(conn: Connection, ids: Iterable[int]) -> list[OutboxEntry]:
    """The unfinished outbox rows among ``ids``, by id."""
    found: list[OutboxEntry] = []
    for batch in in_chunks(sorted(set(ids))):
        stmt = sa.select(outbox).where(outbox.c.id.in_(batch), outbox.c.state != "done")
        found += [OutboxEntry(**row._mapping) for row in conn.execute(stmt.order_by(outbox.c.id))]
    return found
