"""Shard leases for several workers on PostgreSQL: rows of ``leases`` with an owner and an
expiry by the database's clock (so workers' clocks do not matter).

Leases are taken with ``SELECT ... FOR UPDATE SKIP LOCKED``: two workers never get the
same shard, and neither waits for the other. A worker that dies stops renewing; its
shards are taken over once they expire. Unlike the other repository functions these take
the engine and commit at once: a lease must be visible to other workers when it is got.

On SQLite there is one worker at a time (it holds the run lock), so leasing degrades to
"the lock holder owns every shard": :func:`lease_shards` returns every shard asked for,
and renewing or releasing does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from sync.store.schema import leases

__all__ = ["LeaseRecord", "database_now", "lease_shards", "list_leases", "release", "renew"]


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """Who holds a shard, until when."""

    shard: str
    owner: str | None
    expires_at: datetime | None
    heartbeat_at: datetime | None


def _ttl(ttl: float | timedelta) -> sa.ColumnElement[timedelta]:
    value = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    return sa.literal(value, sa.Interval())


def lease_shards(
    engine: Engine,
    owner: str,
    shards: Iterable[str],
    ttl: float | timedelta,
    limit: int | None = None,
) -> list[str]:
    """Lease up to ``limit`` of ``shards`` for ``ttl`` (seconds); returns the shards now held.

    Shards this owner already holds come first (and are renewed); then free or expired
    ones. Rows locked by a concurrent leaser are skipped, never waited for, so two workers
    never get the same shard. On SQLite every shard is returned (see the module notes).
    """
    wanted = sorted(set(shards))
    if engine.dialect.name != "postgresql":
        return wanted
    if not wanted or (limit is not None and limit <= 0):
        return []
    t = leases
    now = sa.func.now()
    with engine.begin() as conn:
        conn.execute(
            postgresql.insert(t)
            .values([{"shard": s} for s in wanted])
            .on_conflict_do_nothing(index_elements=["shard"])
        )
        stmt = (
            sa.select(t.c.shard)
            .where(
                t.c.shard.in_(wanted),
                sa.or_(
                    t.c.owner == owner,
                    t.c.owner.is_(None),
                    t.c.expires_at.is_(None),
                    t.c.expires_at < now,
                ),
            )
            .order_by(sa.case((t.c.owner == owner, 0), else_=1), t.c.shard)
            .with_for_update(skip_locked=True)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        got = list(conn.scalars(stmt))
        if got:
            conn.execute(
                sa.update(t)
                .where(t.c.shard.in_(got))
                .values(owner=owner, expires_at=now + _ttl(ttl), heartbeat_at=now)
            )
    return sorted(got)


def renew(engine: Engine, owner: str, shards: Iterable[str], ttl: float | timedelta) -> list[str]:
    """Extend this owner's leases by ``ttl`` from now; returns the shards still held."""
    wanted = sorted(set(shards))
    if engine.dialect.name != "postgresql":
        return wanted
    t = leases
    now = sa.func.now()
    with engine.begin() as conn:
        rows = conn.execute(
            sa.update(t)
            .where(t.c.owner == owner, t.c.shard.in_(wanted))
            .values(expires_at=now + _ttl(ttl), heartbeat_at=now)
            .returning(t.c.shard)
        )
        return sorted(rows.scalars())


def release(engine: Engine, owner: str, shards: Iterable[str] | None = None) -> int:
    """Give up this owner's leases (all, or some); returns how many were released."""
    if engine.dialect.name != "postgresql":
        return 0
    t = leases
    stmt = sa.update(t).where(t.c.owner == owner)
    stmt = stmt.values(owner=None, expires_at=None, heartbeat_at=None)
    if shards is not None:
        stmt = stmt.where(t.c.shard.in_(sorted(set(shards))))
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount


def list_leases(engine: Engine) -> list[LeaseRecord]:
    """Every lease row, for ``status`` (empty on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        rows = conn.execute(sa.select(leases).order_by(leases.c.shard))
        return [LeaseRecord(r.shard, r.owner, r.expires_at, r.heartbeat_at) for r in rows]


def database_now(conn: Connection) -> datetime | None:
    """The database server's clock, by which leases expire (PostgreSQL); None on SQLite,
    which has no leases (the caller's clock stands in)."""
    if conn.dialect.name != "postgresql":
        return None
    now: datetime | None = conn.scalar(sa.select(sa.func.now()))
    return now
