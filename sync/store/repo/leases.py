"""Shard leases for several workers on PostgreSQL: rows of ``leases`` with an owner and an
expiry by the database's clock (so workers' clocks do not matter).

Each function that judges or sets an expiry takes ``now``: left out (``None``), the
database's ``now()`` is used, as in production; given, that instant stands in for it, so
a test can move time (expiry, renewal, takeover) without waiting.

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
from sqlalchemy.engine import Connection, Engine

from sync.store.schema import leases

__all__ = [
    "LeaseRecord",
    "database_now",
    "lease_shards",
    "list_leases",
    "live_leases",
    "release",
    "renew",
]


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


def _now(now: datetime | None) -> sa.ColumnElement[datetime]:
    """The instant leases are judged at: the database's clock unless one is given."""
    if now is None:
        return sa.func.now()
    return sa.literal(now, sa.DateTime(timezone=True))


def lease_shards(
    engine: Engine,
    owner: str,
    shards: Iterable[str],
    ttl: float | timedelta,
    limit: int | None = None,
    *,
    now: datetime | None = None,
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
    from sqlalchemy.dialects import postgresql  # loaded only where leases are (PostgreSQL)

    t = leases
    at = _now(now)
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
                    t.c.expires_at < at,
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
                .values(owner=owner, expires_at=at + _ttl(ttl), heartbeat_at=at)
            )
    return sorted(got)


def renew(
    engine: Engine,
    owner: str,
    shards: Iterable[str],
    ttl: float | timedelta,
    *,
    now: datetime | None = None,
) -> list[str]:
    """Extend this owner's leases by ``ttl`` from now; returns the shards still held (a
    lease that ran out but that no one took yet is still this owner's, and is renewed)."""
    wanted = sorted(set(shards))
    if engine.dialect.name != "postgresql":
        return wanted
    t = leases
    at = _now(now)
    with engine.begin() as conn:
        rows = conn.execute(
            sa.update(t)
            .where(t.c.owner == owner, t.c.shard.in_(wanted))
            .values(expires_at=at + _ttl(ttl), heartbeat_at=at)
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


def live_leases(engine: Engine, *, now: datetime | None = None) -> list[LeaseRecord]:
    """The leases held and not yet run out at ``now`` (the database's clock unless given),
    by shard; empty on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    t = leases
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t)
            .where(t.c.owner.is_not(None), t.c.expires_at > _now(now))
            .order_by(t.c.shard)
        )
        return [LeaseRecord(r.shard, r.owner, r.expires_at, r.heartbeat_at) for r in rows]


def database_now(conn: Connection) -> datetime | None:
    """The database server's clock, by which leases expire (PostgreSQL); None on SQLite,
    which has no leases (the caller's clock stands in)."""
    if conn.dialect.name != "postgresql":
        return None
    now: datetime | None = conn.scalar(sa.select(sa.func.now()))
    return now
