"""One cycle at a time per state store: the run lock.

The run lock never blocks: a second holder gets :class:`LockHeld` at once.

- SQLite: ``flock`` on ``<state file>.lock`` beside the database. The kernel releases it
  when the process ends, however it ends (SIGKILL included). The holder writes its pid,
  host and name into the file so a refused run can say who holds the lock.
- PostgreSQL: ``pg_try_advisory_lock`` on a connection of its own, kept open while the
  lock is held; the server releases it when that session ends, so a dead worker frees
  it too. The key is derived from the database and schema, so stores in different
  schemas of one database do not contend. The session's ``application_name`` names the
  holder; :func:`pg_lock_holder` reads it without taking the lock (``status``).

On PostgreSQL, ``serve`` workers run shard jobs side by side (sync.jobs): each job holds
the same key *shared* (:func:`shard_lock`) so that jobs of different shards run together
while a ``run`` or ``reconcile --apply``, which take it exclusively, waits for none of them
and is refused (exit 4) while one is in flight; and a job is skipped while one of those
holds it. Which shard runs where is the task engine's business (procrastinate's per-key
job locks), not this module's.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sync.store._sql import utcnow
from sync.store.db import StoreError, sqlite_path

__all__ = [
    "LockHeld",
    "PgLockHolder",
    "lock_path",
    "pg_lock_holder",
    "pg_lock_holders",
    "pg_lock_key",
    "run_lock",
    "session_name",
    "shard_lock",
]

#: First half of the advisory lock key: "JCS1".
_LOCK_CLASS = 0x4A435331
_WHAT_TO_DO = (
    "wait for it to finish (or stop it); the lock is freed when that process exits, "
    "even if it is killed"
)


_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(CAST(:a AS integer), CAST(:b AS integer))")
_TRY_SHARED = sa.text(
    "SELECT pg_try_advisory_lock_shared(CAST(:a AS integer), CAST(:b AS integer))"
)
_STILL_HELD = sa.text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND CAST(classid AS bigint) = :a "
    "AND CAST(objid AS bigint) = :b AND objsubid = 2"
)


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


class Lock:
    """A held run or shard lock: :meth:`check` says it is still held."""

    def __init__(self, conn: Connection | None = None, key: tuple[int, int] = (0, 0)) -> None:
        self._conn, self._key = conn, key

    def check(self) -> None:
        """Raise :class:`LockHeld` if the lock was lost: on PostgreSQL, the session that
        holds it is gone (the server or the network dropped it). A file lock is held until
        the process ends."""
        if self._conn is None:
            return
        try:
            held = self._conn.scalar(_STILL_HELD, {"a": self._key[0], "b": self._key[1]})
            self._conn.rollback()
        except sa.exc.DBAPIError:
            held = 0
        if not held:
            raise LockHeld(
                "the state store's lock was lost (the database session holding it ended); "
                "nothing more is written: run again"
            )


@contextmanager
def run_lock(engine: Engine, holder: str = "jira-crm-sync") -> Iterator[Lock]:
    """Hold the state store's run lock for the ``with`` body, or raise :class:`LockHeld`."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, holder, shared=False) as lock:
            yield lock
        return
    path = sqlite_path(engine.url)
    if path is None:
        with _memory_lock(engine):
            yield Lock()
        return
    with _file_lock(lock_path(path), holder):
        yield Lock()


@contextmanager
def shard_lock(engine: Engine, holder: str) -> Iterator[Lock]:
    """PostgreSQL: hold the store's lock shared for one shard job (several jobs at once;
    :class:`LockHeld` while a ``run`` or ``reconcile --apply`` holds it). SQLite: the run
    lock, as one worker at a time works there."""
    if engine.dialect.name != "postgresql":
        with run_lock(engine, holder) as lock:
            yield lock
        return
    with _pg_lock(engine, holder, shared=True) as lock:
        yield lock


def session_name(holder: str) -> str:
    """The ``application_name`` of the session holding a lock for ``holder`` (PostgreSQL
    keeps 63 bytes): how :func:`pg_lock_holders` tells live workers. A worker name
    (``kind@host:pid``) names its process already; any other holder gets this one's."""
    named, _, pid = holder.rpartition(":")
    if not (pid.isdigit() and "@" in named):
        holder = f"{holder} pid={os.getpid()}@{socket.gethostname()}"
    return f"jira-crm-sync {holder}"[:63]


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


def pg_lock_key(conn: Connection) -> tuple[int, int]:
    """The advisory lock key of the store ``conn`` is in: one per database and schema."""
    database, schema = conn.execute(sa.text("SELECT current_database(), current_schema()")).one()
    return _LOCK_CLASS, zlib.crc32(f"{database}.{schema}".encode()) & 0x7FFFFFFF


@contextmanager
def _pg_lock(engine: Engine, holder: str, *, shared: bool) -> Iterator[Lock]:
    name = session_name(holder)
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as err:
        raise StoreError(
            f"cannot reach the state database {engine.url.render_as_string()}: {err.orig}; "
            "check [state].url and that the database server is up"
        ) from err
    try:
        key = pg_lock_key(conn)
        conn.execute(sa.text("SELECT set_config('application_name', :n, false)"), {"n": name})
        got = conn.scalar(_TRY_SHARED if shared else _TRY_LOCK, {"a": key[0], "b": key[1]})
        conn.commit()
        if not got:
            raise LockHeld(
                f"another run holds the lock on the state store ({_pg_holder(conn)}): {_WHAT_TO_DO}"
            )
        yield Lock(conn, key)
    finally:
        # Ending the session is what releases a session-level advisory lock for sure;
        # the connection is not returned to the pool.
        conn.invalidate()
        conn.close()


@dataclass(frozen=True, slots=True)
class PgLockHolder:
    """The session holding a store's advisory run lock, as PostgreSQL shows it."""

    application_name: str | None
    pid: int
    client_addr: str | None
    backend_start: datetime | None


_LOCK_HOLDER = sa.text(
    "SELECT a.application_name, a.pid, a.client_addr, a.backend_start "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted "
    "AND CAST(l.classid AS bigint) = :a AND CAST(l.objid AS bigint) = :b "
    "AND l.objsubid = 2 ORDER BY l.mode, a.backend_start"
)


def pg_lock_holder(conn: Connection) -> PgLockHolder | None:
    """Who holds the run lock of the store ``conn`` is in (PostgreSQL); None when no one.

    Reads ``pg_locks``: looking does not take the lock, so a ``status`` never makes a
    ``run`` exit 4."""
    key = pg_lock_key(conn)
    row = conn.execute(_LOCK_HOLDER, {"a": key[0], "b": key[1]}).first()
    if row is None:
        return None
    client = None if row.client_addr is None else str(row.client_addr)  # an inet value
    return PgLockHolder(row.application_name, int(row.pid), client, row.backend_start)


def pg_lock_holders(conn: Connection) -> list[PgLockHolder]:
    """Every session holding the store's lock (PostgreSQL): a ``run`` alone, or the shard
    jobs in flight on every worker, each named by :func:`session_name`."""
    key = pg_lock_key(conn)
    rows = conn.execute(_LOCK_HOLDER, {"a": key[0], "b": key[1]})
    return [
        PgLockHolder(
            r.application_name,
            int(r.pid),
            None if r.client_addr is None else str(r.client_addr),
            r.backend_start,
        )
        for r in rows
    ]


def _pg_holder(conn: Connection) -> str:
    holder = pg_lock_holder(conn)
    conn.rollback()
    if holder is None:
        return "holder unknown"
    since = holder.backend_start.isoformat(timespec="seconds") if holder.backend_start else "?"
    client = f" from {holder.client_addr}" if holder.client_addr else ""
    name = holder.application_name or "unnamed session"
    return f"{name}, backend pid {holder.pid}{client}, since {since}"
