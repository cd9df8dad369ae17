"""The outbox: the writes to make, each sent at least once and recorded once.

Crash safety: a planned write is enqueued, marked in flight just before it is sent,
and marked done in the same transaction that records it in the ledger. A crash
between sending and marking done leaves the row in flight; the engine re-checks such
rows against the remote before sending again (upserts by external id, comments found
by their marker), so nothing is lost and nothing is done twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import (
    CHUNK,
    aware,
    chunked,
    in_chunks,
    insert_for,
    json_digest,
    utcnow,
)
from sync.store.repo.ledger import LedgerRow, ledger_put_many
from sync.store.schema import outbox

__all__ = [
    "MAX_ATTEMPTS",
    "OutboxEntry",
    "OutboxRef",
    "OutboxRow",
    "cancel",
    "cancel_ids",
    "counts",
    "counts_by_target",
    "default_backoff",
    "due",
    "due_count",
    "enqueue_many",
    "inflight",
    "iter_unfinished_refs",
    "mark_done",
    "mark_failed",
    "mark_inflight",
    "maybe_sent_keys",
    "parked",
    "parked_refs",
    "prune_done",
    "requeue_inflight",
    "retry_parked",
    "unfinished",
]

#: After this many failed attempts a write stays parked until someone looks at it.
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)

Backoff = Callable[[int], timedelta]


def default_backoff(attempts: int) -> timedelta:
    """Wait before retry number ``attempts``: 1, 2, 4, ... minutes, capped at 6 hours."""
    exponent = min(max(attempts - 1, 0), 20)
    return min(BACKOFF_BASE * (2**exponent), BACKOFF_CAP)


class OutboxRow(TypedDict):
    """A write to make; ``payload_hash`` defaults to a digest of the payload."""

    target: str
    record_key: str
    op: str
    payload: Any
    payload_hash: NotRequired[str]
    run_id: NotRequired[int | None]
    shard: NotRequired[str | None]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A stored outbox row."""

    id: int
    target: str
    record_key: str
    op: str
    payload: Any
    payload_hash: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    run_id: int | None
    shard: str | None


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(**row._mapping)


def enqueue_many(
    conn: Connection, rows: Iterable[OutboxRow], *, now: datetime | None = None
) -> int:
    """Queue writes; an unfinished write of the same (target, record_key, op) is replaced.

    When the payload is unchanged, the queued row keeps its state, attempts and backoff
    (re-planning the same rejected write every cycle does not reset its count); when it
    changed, the new payload starts afresh as pending (so settle :func:`inflight` rows
    against the remote before re-planning them).
    """
    when = aware(now, "now") if now is not None else utcnow()
    values = (
        {
            "target": r["target"],
            "record_key": r["record_key"],
            "op": r["op"],
            "payload": r["payload"],
            "payload_hash": r.get("payload_hash") or json_digest(r["payload"]),
            "state": "pending",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": when,
            "created_at": when,
            "updated_at": when,
            "run_id": r.get("run_id"),
            "shard": r.get("shard"),
        }
        for r in rows
    )
    count = 0
    for batch in chunked(values, CHUNK):
        unique = {(v["target"], v["record_key"], v["op"]): v for v in batch}
        if not unique:
            continue
        stmt = insert_for(conn, outbox)
        changed = outbox.c.payload_hash != stmt.excluded.payload_hash

        def fresh(column: str, changed: Any = changed, stmt: Any = stmt) -> Any:
            return sa.case((changed, stmt.excluded[column]), else_=outbox.c[column])

        stmt = stmt.on_conflict_do_update(
            index_elements=["target", "record_key", "op"],
            index_where=sa.text("state <> 'done'"),
            set_={
                "payload": stmt.excluded.payload,
                "payload_hash": stmt.excluded.payload_hash,
                "state": fresh("state"),
                "attempts": fresh("attempts"),
                "last_error": fresh("last_error"),
                "next_attempt_at": fresh("next_attempt_at"),
                "updated_at": stmt.excluded.updated_at,
                "run_id": stmt.excluded.run_id,
                "shard": stmt.excluded.shard,
            },
        )
        conn.execute(stmt, list(unique.values()))
        count += len(unique)
    return count


def cancel(conn: Connection, target: str, record_key: str, op: str | None = None) -> int:
    """Drop unfinished writes of a record the plan no longer wants (e.g. deleted account)."""
    stmt = sa.delete(outbox).where(
        outbox.c.target == target, outbox.c.record_key == record_key, outbox.c.state != "done"
    )
    if op is not None:
        stmt = stmt.where(outbox.c.op == op)
    return conn.execute(stmt).rowcount


def unfinished(conn: Connection, shards: Iterable[str] | None = None) -> list[OutboxEntry]:
    """Writes not done yet (pending, in flight or parked), of ``shards`` when given."""
    stmt = sa.select(outbox).where(outbox.c.state != "done").order_by(outbox.c.id)
    if shards is not None:
        stmt = stmt.where(outbox.c.shard.in_(list(shards)))
    return [_entry(row) for row in conn.execute(stmt)]


@dataclass(frozen=True, slots=True)
class OutboxRef:
    """An unfinished outbox row without its payload: what deciding to drop it needs."""

    id: int
    target: str
    record_key: str
    state: str
    shard: str | None


def iter_unfinished_refs(
    conn: Connection, shards: Iterable[str] | None = None, *, yield_per: int = 1000
) -> Iterator[OutboxRef]:
    """Stream the writes not done yet, of ``shards`` when given, without their payloads."""
    o = outbox
    stmt = sa.select(o.c.id, o.c.target, o.c.record_key, o.c.state, o.c.shard).where(
        o.c.state != "done"
    )
    groups: Iterable[list[str] | None] = [None] if shards is None else in_chunks(sorted(shards))
    for group in groups:
        query = stmt if group is None else stmt.where(o.c.shard.in_(group))
        result = conn.execute(query.order_by(o.c.id), execution_options={"yield_per": yield_per})
        try:
            for row in result:
                yield OutboxRef(row.id, row.target, row.record_key, row.state, row.shard)
        finally:
            result.close()


def maybe_sent_keys(conn: Connection, target: str, shards: Iterable[str] | None = None) -> set[str]:
    """Record keys (of ``shards``, None: all) whose unfinished write to ``target`` may
    already have reached the remote: in flight when a run stopped, or marked ``verify``
    in its payload (the push marks a re-plan of such a write so, until it is done)."""
    o = outbox
    stmt = sa.select(o.c.record_key, o.c.state, o.c.payload).where(
        o.c.target == target, o.c.state != "done"
    )
    if shards is not None:
        stmt = stmt.where(o.c.shard.in_(list(shards)))
    return {
        key
        for key, state, payload in conn.execute(stmt)
        if state == "inflight" or (isinstance(payload, dict) and payload.get("verify"))
    }


def parked_refs(conn: Connection) -> list[OutboxRef]:
    """Every parked write, without its payload, oldest first."""
    o = outbox
    stmt = sa.select(o.c.id, o.c.target, o.c.record_key, o.c.state, o.c.shard)
    rows = conn.execute(stmt.where(o.c.state == "parked").order_by(o.c.id))
    return [OutboxRef(r.id, r.target, r.record_key, r.state, r.shard) for r in rows]


def cancel_ids(conn: Connection, ids: Sequence[int]) -> int:
    """Drop these unfinished writes (a done write's row is kept for its history)."""
    removed = 0
    for batch in in_chunks(ids):
        removed += conn.execute(
            sa.delete(outbox).where(outbox.c.id.in_(batch), outbox.c.state != "done")
        ).rowcount
    return removed


def due(
    conn: Connection,
    target: str,
    now: datetime,
    limit: int,
    *,
    shard: str | Sequence[str] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> list[OutboxEntry]:
    """Pending or parked writes to ``target`` whose time has come, oldest first."""
    stmt = sa.select(outbox).where(*_due_where(target, now, shard, max_attempts))
    stmt = stmt.order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit)
    return [_entry(row) for row in conn.execute(stmt)]


def due_count(
    conn: Connection,
    target: str,
    now: datetime,
    *,
    shard: str | Sequence[str] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """How many writes :func:`due` would hand out to ``target`` now, without a limit (the
    total of a push's progress bar)."""
    stmt = sa.select(sa.func.count()).select_from(outbox)
    return int(conn.scalar(stmt.where(*_due_where(target, now, shard, max_attempts))) or 0)


def _due_where(
    target: str, now: datetime, shard: str | Sequence[str] | None, max_attempts: int
) -> list[Any]:
    """What makes a write due: one rule for :func:`due` and :func:`due_count`."""
    where = [
        outbox.c.target == target,
        outbox.c.state.in_(("pending", "parked")),
        outbox.c.next_attempt_at <= aware(now, "now"),
        outbox.c.attempts < max_attempts,
    ]
    if isinstance(shard, str):
        where.append(outbox.c.shard == shard)
    elif shard is not None:
        where.append(outbox.c.shard.in_(list(shard)))
    return where


def _set_state(conn: Connection, ids: Iterable[int], state: str, now: datetime) -> int:
    changed = 0
    for batch in in_chunks(ids):
        changed += conn.execute(
            sa.update(outbox).where(outbox.c.id.in_(batch)).values(state=state, updated_at=now)
        ).rowcount
    return changed


def mark_inflight(conn: Connection, ids: Iterable[int], *, now: datetime | None = None) -> int:
    """Mark writes as being sent; commit this before sending them."""
    return _set_state(conn, ids, "inflight", now or utcnow())


def mark_done(
    conn: Connection,
    ids: Iterable[int],
    ledger_rows: Iterable[LedgerRow] = (),
    *,
    now: datetime | None = None,
) -> int:
    """Mark writes done and record them in the ledger, in the caller's one transaction."""
    changed = _set_state(conn, ids, "done", now or utcnow())
    ledger_put_many(conn, ledger_rows)
    return changed


def mark_failed(
    conn: Connection,
    id: int,
    error: str,
    now: datetime,
    backoff: Backoff = default_backoff,
) -> int:
    """Park a rejected write with its error until ``now + backoff(attempts)``; returns attempts.

    Once ``attempts`` reaches the maximum, :func:`due` no longer offers it: it stays
    parked, and ``status`` lists it, until :func:`retry_parked` or a new payload.
    """
    now = aware(now, "now")
    attempts = conn.scalar(sa.select(outbox.c.attempts).where(outbox.c.id == id))
    if attempts is None:
        raise KeyError(f"no outbox row {id}")
    attempts += 1
    conn.execute(
        sa.update(outbox)
        .where(outbox.c.id == id)
        .values(
            state="parked",
            attempts=attempts,
            last_error=error,
            next_attempt_at=now + backoff(attempts),
            updated_at=now,
        )
    )
    return int(attempts)


def requeue_inflight(
    conn: Connection, *, now: datetime | None = None, shards: Sequence[str] | None = None
) -> int:
    """Put rows a crash left in flight back to pending (the engine's writes are idempotent,
    so sending them again converges); only those of ``shards`` when given."""
    ids = [entry.id for entry in inflight(conn) if shards is None or entry.shard in shards]
    return _set_state(conn, ids, "pending", now or utcnow()) if ids else 0


def inflight(conn: Connection, target: str | None = None) -> list[OutboxEntry]:
    """Writes left in flight by a crash: re-check each against the remote before resending."""
    stmt = sa.select(outbox).where(outbox.c.state == "inflight").order_by(outbox.c.id)
    if target is not None:
        stmt = stmt.where(outbox.c.target == target)
    return [_entry(row) for row in conn.execute(stmt)]


def parked(conn: Connection, limit: int = 100) -> list[OutboxEntry]:
    """Parked writes, most-failed first, for ``status``."""
    stmt = (
        sa.select(outbox)
        .where(outbox.c.state == "parked")
        .order_by(outbox.c.attempts.desc(), outbox.c.updated_at.desc(), outbox.c.id)
        .limit(limit)
    )
    return [_entry(row) for row in conn.execute(stmt)]


def counts(conn: Connection, *, max_attempts: int = MAX_ATTEMPTS) -> dict[str, int]:
    """Outbox rows per state, plus ``exhausted``: parked ones no longer retried."""
    found = dict.fromkeys(("pending", "inflight", "done", "parked"), 0)
    for state, n in conn.execute(
        sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
    ):
        found[state] = int(n)
    exhausted = sa.select(sa.func.count()).where(
        outbox.c.state == "parked", outbox.c.attempts >= max_attempts
    )
    found["exhausted"] = int(conn.scalar(exhausted.select_from(outbox)) or 0)
    return found


def counts_by_target(
    conn: Connection, *, max_attempts: int = MAX_ATTEMPTS
) -> dict[str, dict[str, int]]:
    """:func:`counts` per target (``crm``, ``jira``), for the targets that have any row."""
    found: dict[str, dict[str, int]] = {}

    def of(target: str) -> dict[str, int]:
        return found.setdefault(
            target, dict.fromkeys(("pending", "inflight", "parked", "exhausted", "done"), 0)
        )

    o = outbox
    by_state = sa.select(o.c.target, o.c.state, sa.func.count()).group_by(o.c.target, o.c.state)
    for target, state, n in conn.execute(by_state):
        of(str(target))[str(state)] = int(n)
    exhausted = (
        sa.select(o.c.target, sa.func.count())
        .where(o.c.state == "parked", o.c.attempts >= max_attempts)
        .group_by(o.c.target)
    )
    for target, n in conn.execute(exhausted):
        of(str(target))["exhausted"] = int(n)
    return dict(sorted(found.items()))


def retry_parked(
    conn: Connection, ids: Iterable[int] | None = None, *, now: datetime | None = None
) -> int:
    """Give parked writes (all, or some) a fresh set of attempts, due ``now`` (default:
    the clock's now; a reconcile passes its own time, which the push compares with)."""
    when = aware(now, "now") if now is not None else utcnow()
    stmt = (
        sa.update(outbox)
        .where(outbox.c.state == "parked")
        .values(attempts=0, next_attempt_at=when, updated_at=when)
    )
    if ids is None:
        return conn.execute(stmt).rowcount
    return sum(conn.execute(stmt.where(outbox.c.id.in_(b))).rowcount for b in in_chunks(ids))


def prune_done(conn: Connection, older_than: datetime) -> int:
    """Delete done rows last touched before ``older_than`` (they are history only)."""
    return conn.execute(
        sa.delete(outbox).where(
            outbox.c.state == "done", outbox.c.updated_at < aware(older_than, "older_than")
        )
    ).rowcount
