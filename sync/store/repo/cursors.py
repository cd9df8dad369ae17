"""Cursors: where each pull of each source got to (Jira issues and key scans per shard,
the CRM per stream).

Set a cursor in the transaction that stores the records it covers::

    with store.transaction() as tx:
        repo.upsert_items(tx, rows)
        repo.set_cursor(tx, "jira", "issues:*", {"updated_ms": ...})
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import upsert, utcnow
from sync.store.schema import cursors

__all__ = ["CursorRecord", "all_cursors", "clear_cursors", "get_cursor", "set_cursor"]


@dataclass(frozen=True, slots=True)
class CursorRecord:
    """Where a pull of one object from one source got to."""

    source: str
    object: str
    value: Any
    updated_at: datetime


def get_cursor(conn: Connection, source: str, object: str) -> Any:
    """The cursor value of ``(source, object)``; None when there is none yet."""
    row = conn.execute(
        sa.select(cursors.c.value).where(cursors.c.source == source, cursors.c.object == object)
    ).first()
    return None if row is None else row.value


def set_cursor(
    conn: Connection, source: str, object: str, value: Any, *, at: datetime | None = None
) -> None:
    """Set a cursor; call it in the transaction that stores the records it covers."""
    upsert(
        conn,
        cursors,
        [{"source": source, "object": object, "value": value, "updated_at": at or utcnow()}],
        ("source", "object"),
    )


def all_cursors(conn: Connection) -> list[CursorRecord]:
    """Every cursor, for ``status``."""
    rows = conn.execute(sa.select(cursors).order_by(cursors.c.source, cursors.c.object))
    return [CursorRecord(r.source, r.object, r.value, r.updated_at) for r in rows]


def clear_cursors(conn: Connection, source: str | None = None) -> int:
    """Forget cursors (all, or one source's), so the next pull starts from scratch."""
    stmt = sa.delete(cursors)
    if source is not None:
        stmt = stmt.where(cursors.c.source == source)
    return conn.execute(stmt).rowcount
