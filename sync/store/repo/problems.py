"""Records set aside (quarantine) and work items whose link value could not be used.

A pull that reads a record it cannot use puts it here with the reason instead of refusing
the page: the rest of the page and the cursor go on, and the record is read again at the
next full pass. Link problems are replaced per project at each derive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks, insert_for
from sync.store.schema import link_problems, quarantine

__all__ = [
    "LinkProblemRecord",
    "LinkProblemRow",
    "QuarantineRecord",
    "QuarantineRow",
    "count_link_problems",
    "count_quarantined",
    "iter_link_problems",
    "iter_quarantined",
    "quarantine_records",
    "quarantined_ids",
    "release_quarantined",
    "set_link_problems",
]


class QuarantineRow(TypedDict):
    """One record set aside: which side and kind, its id, and why."""

    side: str
    kind: str
    record_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """A quarantined record as the store holds it."""

    side: str
    kind: str
    record_id: str
    reason: str
    first_seen_at: datetime
    last_seen_at: datetime
    attempts: int


def quarantine_records(conn: Connection, rows: Iterable[QuarantineRow], *, at: datetime) -> int:
    """Set records aside (a record already there gets the new reason and one more attempt)."""
    at = aware(at, "at")
    count = 0
    q = quarantine
    for row in {(r["side"], r["kind"], r["record_id"]): r for r in rows}.values():
        stmt = insert_for(conn, q).values(**row, first_seen_at=at, last_seen_at=at, attempts=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["side", "kind", "record_id"],
            set_={
                "reason": stmt.excluded.reason,
                "last_seen_at": stmt.excluded.last_seen_at,
                "attempts": q.c.attempts + 1,
            },
        )
        conn.execute(stmt)
        count += 1
    return count


def release_quarantined(conn: Connection, side: str, kind: str, record_ids: Iterable[str]) -> int:
    """Forget quarantined records of one kind that were now read cleanly (or are gone)."""
    q = quarantine
    removed = 0
    for batch in in_chunks(record_ids):
        removed += conn.execute(
            sa.delete(q).where(q.c.side == side, q.c.kind == kind, q.c.record_id.in_(batch))
        ).rowcount
    return removed


def quarantined_ids(conn: Connection, side: str, kind: str | None = None) -> dict[str, list[str]]:
    """Quarantined record ids of one side, by kind (one kind when given)."""
    q = quarantine
    stmt = sa.select(q.c.kind, q.c.record_id).where(q.c.side == side)
    if kind is not None:
        stmt = stmt.where(q.c.kind == kind)
    out: dict[str, list[str]] = {}
    for row in conn.execute(stmt.order_by(q.c.kind, q.c.record_id)):
        out.setdefault(row.kind, []).append(row.record_id)
    return out


def iter_quarantined(conn: Connection, limit: int | None = None) -> list[QuarantineRecord]:
    """Quarantined records, newest first (at most ``limit``)."""
    q = quarantine
    stmt = sa.select(q).order_by(q.c.last_seen_at.desc(), q.c.side, q.c.kind, q.c.record_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [QuarantineRecord(**row._mapping) for row in conn.execute(stmt)]


def count_quarantined(conn: Connection) -> int:
    """How many records are set aside."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar_one())


class LinkProblemRow(TypedDict):
    """One work item whose link value could not be used, and the rule that linked it
    anyway (None: it stayed unlinked)."""

    item_key: str
    reason: str
    linked_by: str | None


@dataclass(frozen=True, slots=True)
class LinkProblemRecord:
    """A link problem as the store holds it."""

    project_key: str
    item_key: str
    reason: str
    linked_by: str | None
    updated_at: datetime


def set_link_problems(
    conn: Connection, project_key: str, rows: Sequence[LinkProblemRow], *, at: datetime
) -> None:
    """Replace the link problems of one project."""
    at = aware(at, "at")
    lp = link_problems
    conn.execute(sa.delete(lp).where(lp.c.project_key == project_key))
    unique = {r["item_key"]: r for r in rows}
    if unique:
        conn.execute(
            sa.insert(lp),
            [{**r, "project_key": project_key, "updated_at": at} for r in unique.values()],
        )


def iter_link_problems(conn: Connection, limit: int | None = None) -> list[LinkProblemRecord]:
    """Link problems by project and item (at most ``limit``)."""
    lp = link_problems
    stmt = sa.select(lp).order_by(lp.c.project_key, lp.c.item_key)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [LinkProblemRecord(**row._mapping) for row in conn.execute(stmt)]


def count_link_problems(conn: Connection) -> int:
    """How many work items have a link problem."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(link_problems)).scalar_one())
