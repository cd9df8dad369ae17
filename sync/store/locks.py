"""One cycle at a time per state store, and shard leases for several workers on PostgreSQL.

The run lock never blocks: a second holder gets :class:`LockHeld` at once.

- SQLite: ``flock`` on ``<state file>.lock`` beside the database. The kernel releases it
  when the process ends, however it ends (SIGKILL included). The holder writes its pid,
  host and name into the file so a refused run can say who holds the lock.
- PostgreSQL: ``pg_try_advisory_lock`` on a connection of its own, kept open while the
  lock is held; the server releases it when that session ends, so a dead worker frees
  it too. The key is derived from the database and schema, so stores in different
  schemas of one database do not contend. The session's ``application_name`` names the
  holder.

Shard leases (PostgreSQL): rows of ``leases`` taken with ``SELECT ... FOR UPDATE SKIP
LOCKED``, expiring by the database's clock so workers' clocks do not matter. A worker
that dies stops renewing; its shards are taken over once they expire. On SQLite there is
one worker at a time (it holds the run lock), so leasing degrades to "the lock holder
owns every shard": :func:`lease_shards` returns all shards asked for, and renewing or
releasing does nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from sync.store._sql import utcnow
from sync.store.db import StoreError, sqlite_path
from sync.store.schema import leases

__all__ = [
    "LeaseRecord",
    "LockHeld",
    "lease_shards",
    "list_leases",
    "lock_path",
    "release",
    "renew",
    "run_lock",
]

#: First half of the advisory lock key: "JCS1".
_LOCK_CLASS = 0x4A435331
_WHAT_TO_DO = (
    "wait for it to finish (or stop it); the lock is freed when that process exits, "
    "even if it is killed"
)


_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(CAST(:a AS integer), CAST(:b AS integer))")


class LockHeld(Exception):
    """Another run holds the state store's lock (exit code 4)."""


def _me(holder: str) -> dict[str, object]:
    return {
        "holder": holder,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": utcnow().isoformat(timespec="seconds"),
    }


def _describe(info: dict[str, object]) -> str:
    parts = [f"pid {info.get('pid', '?')} on {info.get('host', '?')}"]
    if info.get("holder"):
        parts.insert(0, str(info["holder"]))
    if info.get("since"):
        parts.append(f"since {info['since']}")
    return ", ".join(parts)


def lock_path(database: Path) -> Path:
    """The lock file of a SQLite state file."""
    return database.with_name(database.name + ".lock")


# --- run lock ----------------------------------------------------------------------------------


@contextmanager
def run_lock(engine: Engine, holder: str = "jira-crm-sync") -> Iterator[None]:
    """Hold the state store's run lock for the ``with`` body, or raise :class:`LockHeld`."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, holder):
            yield
        return
    path = sqlite_path(engine.url)
    if path is None:
        with _memory_lock(engine):
            yield
        return
    with _file_lock(lock_path(path), holder):
        yield


@contextmanager
def _file_lock(path: Path, holder: str) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise StoreError(
            f"cannot open the lock file {path}: {err.strerror or err}; "
            "set [state].url to a writable location, or fix the permissions"
        ) from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                f"another run holds the lock on the state store ({_file_holder(fd)}; "
                f"lock file {path}): {_WHAT_TO_DO}"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_me(holder)).encode(), 0)
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _file_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    return _describe(info) if isinstance(info, dict) and info else "holder unknown"


_memory_held: set[int] = set()
_memory_guard = threading.Lock()


@contextmanager
def _memory_lock(engine: Engine) -> Iterator[None]:
    with _memory_guard:
        if id(engine) in _memory_held:
            raise LockHeld(f"another run in this process holds the lock: {_WHAT_TO_DO}")
        _memory_held.add(id(engine))
    try:
        yield
    finally:
        with _memory_guard:
            _memory_held.discard(id(engine))


def _pg_key(conn: Connection) -> tuple[int, int]:
    database, schema = conn.execute(sa.text("SELECT current_database(), current_schema()")).one()
    return _LOCK_CLASS, zlib.crc32(f"{database}.{schema}".encode()) & 0x7FFFFFFF


@contextmanager
def _pg_lock(engine: Engine, holder: str) -> Iterator[None]:
    me = _me(holder)
    name = f"jira-crm-sync {holder} pid={me['pid']}@{me['host']}"[:63]
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as err:
        raise StoreError(
            f"cannot reach the state database {engine.url.render_as_string()}: {err.orig}; "
            "check [state].url and that the database server is up"
        ) from err
    try:
        key = _pg_key(conn)
        conn.execute(sa.text("SELECT set_config('application_name', :n, false)"), {"n": name})
        got = conn.scalar(_TRY_LOCK, {"a": key[0], "b": key[1]})
        conn.commit()
        if not got:
            raise LockHeld(
                f"another run holds the lock on the state store ({_pg_holder(conn, key)}): "
                f"{_WHAT_TO_DO}"
            )
        yield
    finally:
        # Ending the session is what releases a session-level advisory lock for sure;
        # the connection is not returned to the pool.
        conn.invalidate()
        conn.close()


def _pg_holder(conn: Connection, key: tuple[int, int]) -> str:
    row = conn.execute(
        sa.text(
            "SELECT a.application_name, a.pid, a.client_addr, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND CAST(l.classid AS bigint) = :a AND CAST(l.objid AS bigint) = :b "
            "AND l.objsubid = 2"
        ),
        {"a": key[0], "b": key[1]},
    ).first()
    conn.rollback()
    if row is None:
        return "holder unknown"
    since = row.backend_start.isoformat(timespec="seconds") if row.backend_start else "?"
    client = f" from {row.client_addr}" if row.client_addr else ""
    name = row.application_name or "unnamed session"
    return f"{name}, backend pid {row.pid}{client}, since {since}"


# --- shard leases --------------------------------------------------------------------------


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
