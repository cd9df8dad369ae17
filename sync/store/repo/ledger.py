"""The write ledger: what we last wrote, per remote record and field.

A write is recorded here in the transaction that marks its outbox row done, so the next
plan judges by what the remote holds of ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks, upsert, utcnow
from sync.store.schema import write_ledger

__all__ = [
    "LedgerRow",
    "iter_ledger_keys",
    "ledger_delete",
    "ledger_get_many",
    "ledger_put_many",
    "ledger_values",
]

#: Rows fetched at a time by the streaming reads.
YIELD_PER = 1000


class LedgerRow(TypedDict):
    """One field we wrote to one remote record."""

    target: str
    record_key: str
    field: str
    value_hash: str
    value: Any
    written_at: NotRequired[datetime]
    run_id: NotRequired[int | None]


def ledger_get_many(
    conn: Connection, target: str, record_keys: Iterable[str]
) -> dict[str, dict[str, tuple[str, Any]]]:
    """``{record_key: {field: (hash, value)}}`` of what we last wrote to these records."""
    wl = write_ledger
    found: dict[str, dict[str, tuple[str, Any]]] = {}
    for batch in in_chunks(record_keys):
        stmt = sa.select(wl.c.record_key, wl.c.field, wl.c.value_hash, wl.c.value).where(
            wl.c.target == target, wl.c.record_key.in_(batch)
        )
        for key, field, digest, value in conn.execute(stmt):
            found.setdefault(key, {})[field] = (digest, value)
    return found


def ledger_values(conn: Connection, target: str, field: str) -> dict[str, Any]:
    """``{record_key: value}`` of ``field`` for every record of ``target`` we hold a
    ledger row of that field for (what reconcile compares the remote with)."""
    wl = write_ledger
    stmt = sa.select(wl.c.record_key, wl.c.value).where(wl.c.target == target, wl.c.field == field)
    return {str(key): value for key, value in conn.execute(stmt)}


def iter_ledger_keys(
    conn: Connection, target: str, field: str, *, yield_per: int = YIELD_PER
) -> Iterator[str]:
    """Stream the keys of the records of ``target`` we hold a ledger row of ``field`` for,
    without their values (what reconcile looks for among the records it read)."""
    wl = write_ledger
    stmt = sa.select(wl.c.record_key).where(wl.c.target == target, wl.c.field == field)
    result = conn.execute(stmt, execution_options={"yield_per": yield_per})
    try:
        for (key,) in result:
            yield str(key)
    finally:
        result.close()


def ledger_put_many(conn: Connection, rows: Iterable[LedgerRow]) -> int:
    """Record writes that the remote accepted (replacing what was recorded before)."""
    now = utcnow()
    values = (
        {
            "target": r["target"],
            "record_key": r["record_key"],
            "field": r["field"],
            "value_hash": r["value_hash"],
            "value": r["value"],
            "written_at": aware(r.get("written_at") or now, "written_at"),
            "run_id": r.get("run_id"),
        }
        for r in rows
    )
    return upsert(conn, write_ledger, values, ("target", "record_key", "field"))


def ledger_delete(
    conn: Connection, target: str, record_key: str, fields: Iterable[str] | None = None
) -> int:
    """Forget what we wrote to a record (all fields, or some)."""
    wl = write_ledger
    stmt = sa.delete(wl).where(wl.c.target == target, wl.c.record_key == record_key)
    if fields is not None:
        stmt = stmt.where(wl.c.field.in_(sorted(set(fields))))
    return conn.execute(stmt).rowcount
