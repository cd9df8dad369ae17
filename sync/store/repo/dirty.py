"""Projects whose stored records changed but are not derived yet (dirty marks).

A pull marks the projects it stored records of in the same transaction; a derive that
covered them clears exactly the marks it read, so a mark made meanwhile survives.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import in_chunks, upsert, utcnow
from sync.store.schema import cursors

__all__ = ["DIRTY", "clear_dirty", "dirty_marks", "mark_dirty"]

#: Cursor source of the marks: one row per (project, pull transaction), so that a derive
#: clears exactly the marks it read and a mark written meanwhile survives.
DIRTY = "dirty"


def mark_dirty(conn: Connection, projects: Iterable[str], *, at: datetime | None = None) -> int:
    """Note that stored records of ``projects`` changed; call it in the transaction that
    stores them. The marks outlive a crash until a derive that covered them clears them
    (:func:`clear_dirty`), so a pull whose cursor advanced loses no change."""
    token = uuid.uuid4().hex[:12]
    when = at or utcnow()
    rows = [
        {"source": DIRTY, "object": f"{project}|{token}", "value": project, "updated_at": when}
        for project in sorted(set(projects))
    ]
    return upsert(conn, cursors, rows, ("source", "object")) if rows else 0


def dirty_marks(conn: Connection) -> dict[str, str]:
    """Every mark not cleared yet: mark name -> project key."""
    stmt = sa.select(cursors.c.object, cursors.c.value).where(cursors.c.source == DIRTY)
    return {str(name): str(project) for name, project in conn.execute(stmt)}


def clear_dirty(conn: Connection, marks: Iterable[str]) -> int:
    """Remove marks (by name) that a derive covered."""
    removed = 0
    for batch in in_chunks(marks):
        removed += conn.execute(
            sa.delete(cursors).where(cursors.c.source == DIRTY, cursors.c.object.in_(batch))
        ).rowcount
    return removed
