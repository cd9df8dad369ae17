"""Derive state: when each scope was last derived in full, and under which rules.

A scope is ``*`` (every project, a single worker) or one project key (a worker of
several derives the projects it holds). A cycle derives a scope whole again when its
day or its rules digest is not the cycle's, and saves the new state once the last batch
is recorded, so a crash in between derives again what was not recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import in_chunks, upsert, utcnow
from sync.store.schema import derive_state

__all__ = [
    "EVERY_PROJECT",
    "DeriveState",
    "DeriveStateRecord",
    "all_derive_states",
    "derive_states",
    "save_derive_states",
]

#: The scope of a derive of every project.
EVERY_PROJECT = "*"


class DeriveState(NamedTuple):
    """The day and the rules (by digest) a scope was derived in full for."""

    day: date
    rules_digest: str


@dataclass(frozen=True, slots=True)
class DeriveStateRecord:
    """A stored derive state, with the time it was saved."""

    scope: str
    day: date
    rules_digest: str
    updated_at: datetime


def derive_states(conn: Connection, scopes: Iterable[str]) -> dict[str, DeriveState]:
    """The saved state of each of ``scopes`` (one never derived is absent)."""
    t = derive_state
    found: dict[str, DeriveState] = {}
    for batch in in_chunks(scopes):
        stmt = sa.select(t.c.scope, t.c.day, t.c.rules_digest).where(t.c.scope.in_(batch))
        found.update((scope, DeriveState(day, digest)) for scope, day, digest in conn.execute(stmt))
    return found


def save_derive_states(
    conn: Connection, states: Mapping[str, DeriveState], *, at: datetime | None = None
) -> int:
    """Save the state of each scope given (replacing what was saved); returns how many.

    Call it once everything the derive covered is recorded."""
    when = at or utcnow()
    rows = [
        {"scope": scope, "day": s.day, "rules_digest": s.rules_digest, "updated_at": when}
        for scope, s in sorted(states.items())
    ]
    return upsert(conn, derive_state, rows, ("scope",)) if rows else 0


def all_derive_states(conn: Connection) -> list[DeriveStateRecord]:
    """Every saved derive state, by scope, for ``status``."""
    t = derive_state
    rows = conn.execute(sa.select(t).order_by(t.c.scope))
    return [DeriveStateRecord(r.scope, r.day, r.rules_digest, r.updated_at) for r in rows]
