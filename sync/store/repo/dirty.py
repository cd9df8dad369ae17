"""Projects whose stored records changed but that no derive has covered yet (dirty marks).

A pull marks the projects it stores records of in the same transaction
(:func:`mark_dirty`), so the mark outlives a crash before the derive. A derive reads
the marks first (:func:`dirty_marks`), then the records, and once it has recorded what
it derived clears exactly the marks it read (:func:`clear_dirty`): each mark gives the
project's row a new token, so a mark made while the derive ran survives and the next
cycle derives that project again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import CHUNK, chunked, in_chunks, insert_for, utcnow
from sync.store.schema import dirty_projects

__all__ = [
    "DirtyMark",
    "DirtyProject",
    "clear_dirty",
    "dirty_marks",
    "mark_dirty",
    "waiting_projects",
]


class DirtyMark(NamedTuple):
    """A project's mark as a derive read it: the project and its row's token then."""

    project_key: str
    token: str


@dataclass(frozen=True, slots=True)
class DirtyProject:
    """A project waiting for a re-derive: marked ``marks`` times since it was last clean,
    first at ``since``."""

    project_key: str
    marks: int
    since: datetime
    last_marked_at: datetime


def mark_dirty(conn: Connection, projects: Iterable[str], *, at: datetime | None = None) -> int:
    """Note that stored records of ``projects`` changed; call it in the transaction that
    stores them. The marks outlive a crash until a derive that covered them clears them
    (:func:`clear_dirty`), so a pull whose cursor advanced loses no change. Returns how
    many projects were marked."""
    t = dirty_projects
    token = uuid.uuid4().hex[:12]
    when = at or utcnow()
    rows = [
        {
            "project_key": project,
            "token": token,
            "marks": 1,
            "first_marked_at": when,
            "last_marked_at": when,
        }
        for project in sorted(set(projects))
    ]
    for batch in chunked(rows, CHUNK):
        stmt = insert_for(conn, t)
        stmt = stmt.on_conflict_do_update(
            index_elements=["project_key"],
            # Still dirty: keep when it stopped being clean, count the mark, new token.
            set_={
                "token": stmt.excluded.token,
                "marks": t.c.marks + 1,
                "last_marked_at": stmt.excluded.last_marked_at,
            },
        )
        conn.execute(stmt, batch)
    return len(rows)


def dirty_marks(conn: Connection) -> list[DirtyMark]:
    """The mark of every project waiting for a derive, by project key. Read it before the
    records a derive merges: every mark read then has its records visible to the reads
    that follow."""
    t = dirty_projects
    stmt = sa.select(t.c.project_key, t.c.token).order_by(t.c.project_key)
    return [DirtyMark(str(project), str(token)) for project, token in conn.execute(stmt)]


def clear_dirty(conn: Connection, marks: Iterable[DirtyMark]) -> int:
    """Clear the marks a derive read and covered: a project marked again since (its token
    changed) stays marked. Returns how many projects were cleared."""
    t = dirty_projects
    by_token: dict[str, list[str]] = defaultdict(list)
    for mark in marks:
        by_token[mark.token].append(mark.project_key)
    cleared = 0
    for token, projects in sorted(by_token.items()):
        for batch in in_chunks(projects):
            cleared += conn.execute(
                sa.delete(t).where(t.c.token == token, t.c.project_key.in_(batch))
            ).rowcount
    return cleared


def waiting_projects(conn: Connection) -> list[DirtyProject]:
    """Every project waiting for a re-derive, by project key, for ``status``."""
    t = dirty_projects
    rows = conn.execute(sa.select(t).order_by(t.c.project_key))
    return [DirtyProject(r.project_key, r.marks, r.first_marked_at, r.last_marked_at) for r in rows]
