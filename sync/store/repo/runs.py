"""Run history (one row per cycle) and API calls per side per day (the daily budget)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, insert_for, utcnow
from sync.store.locks import pg_lock_holders, session_name
from sync.store.schema import api_reservations, api_usage, runs

__all__ = [
    "RUN_STATUSES",
    "LockSeen",
    "RunRecord",
    "add_calls",
    "calls_on",
    "calls_today",
    "database_now",
    "dead_runs",
    "finish_run",
    "get_run",
    "last_runs",
    "mark_interrupted",
    "release_calls",
    "reserve_calls",
    "reserved_today",
    "start_run",
    "worker_process",
]

#: The statuses the engine records (not enforced: the column is free text).
RUN_STATUSES = ("running", "ok", "parked", "failed", "budget", "locked", "interrupted")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One sync cycle as recorded."""

    id: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    exit_code: int | None
    dry_run: bool
    full: bool
    calls: dict[str, Any] | None
    pulled: dict[str, Any] | None
    written: dict[str, Any] | None
    error: str | None
    #: the stage a failed cycle failed in (pull, derive, record, push ...), else None.
    failed_stage: str | None = None


def start_run(
    conn: Connection,
    worker: str,
    *,
    dry_run: bool = False,
    full: bool = False,
    started_at: datetime | None = None,
) -> int:
    """Record the start of a cycle; returns its id."""
    result = conn.execute(
        sa.insert(runs).values(
            worker=worker,
            started_at=aware(started_at, "started_at") if started_at else utcnow(),
            status="running",
            dry_run=dry_run,
            full=full,
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def finish_run(
    conn: Connection,
    run_id: int,
    *,
    status: str,
    exit_code: int,
    calls: dict[str, Any] | None = None,
    pulled: dict[str, Any] | None = None,
    written: dict[str, Any] | None = None,
    error: str | None = None,
    finished_at: datetime | None = None,
    stage: str | None = None,
) -> None:
    """Record how a cycle ended: status, exit code, calls per side and endpoint, counts,
    and for a failed one the stage it failed in."""
    conn.execute(
        sa.update(runs)
        .where(runs.c.id == run_id)
        .values(
            status=status,
            exit_code=exit_code,
            calls=calls,
            pulled=pulled,
            written=written,
            error=error,
            failed_stage=stage,
            finished_at=aware(finished_at, "finished_at") if finished_at else utcnow(),
        )
    )


def _run(row: Any) -> RunRecord:
    return RunRecord(**row._mapping)


def last_runs(conn: Connection, n: int = 10) -> list[RunRecord]:
    """The ``n`` most recent runs, newest first."""
    stmt = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(n)
    return [_run(row) for row in conn.execute(stmt)]


def get_run(conn: Connection, run_id: int) -> RunRecord | None:
    """One run by id."""
    row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    return None if row is None else _run(row)


def add_calls(conn: Connection, side: str, day: date, n: int) -> int:
    """Count ``n`` more API calls to ``side`` on ``day`` (UTC); returns the day's total."""
    stmt = insert_for(conn, api_usage).values(side=side, day=day, calls=n)
    stmt = stmt.on_conflict_do_update(
        index_elements=["side", "day"], set_={"calls": api_usage.c.calls + stmt.excluded.calls}
    )
    conn.execute(stmt)
    return calls_today(conn, side, day)


def calls_today(conn: Connection, side: str, day: date) -> int:
    """API calls made to ``side`` on ``day`` (UTC)."""
    stmt = sa.select(api_usage.c.calls).where(api_usage.c.side == side, api_usage.c.day == day)
    return int(conn.scalar(stmt) or 0)


def reserve_calls(
    conn: Connection, run_id: int, side: str, day: date, *, per_cycle: int, per_day: int
) -> int:
    """Reserve for run ``run_id`` the calls to ``side`` it may make on ``day`` (UTC): the
    per-cycle limit within what is left of the day's after the calls made and the other
    runs' reservations. Returns those calls counted before it (made plus reserved), from
    which :func:`sync.budget.allowances` gives the same number.

    Concurrent reservations of one side and day take turns: the first statement writes
    the day's ``api_usage`` row (created at 0 calls), which PostgreSQL locks to the
    transaction's end (the statements after it then see what the one before committed)
    and SQLite lets one writer do at a time. So together they never exceed ``per_day``.
    """
    stmt = insert_for(conn, api_usage).values(side=side, day=day, calls=0)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["side", "day"], set_={"calls": api_usage.c.calls}
        )
    )
    used = calls_today(conn, side, day) + reserved_today(conn, side, day, besides=run_id)
    granted = max(0, min(per_cycle, per_day - used))
    release_calls(conn, run_id, side)
    conn.execute(
        sa.insert(api_reservations).values(run_id=run_id, side=side, day=day, calls=granted)
    )
    return used


def reserved_today(conn: Connection, side: str, day: date, *, besides: int | None = None) -> int:
    """The calls to ``side`` on ``day`` that running cycles reserved (but ``besides``')."""
    stmt = sa.select(sa.func.coalesce(sa.func.sum(api_reservations.c.calls), 0)).where(
        api_reservations.c.side == side, api_reservations.c.day == day
    )
    if besides is not None:
        stmt = stmt.where(api_reservations.c.run_id != besides)
    return int(conn.scalar(stmt) or 0)


def release_calls(conn: Connection, run_id: int, side: str | None = None) -> None:
    """Drop what run ``run_id`` reserved (of ``side``, or of every side)."""
    stmt = sa.delete(api_reservations).where(api_reservations.c.run_id == run_id)
    if side is not None:
        stmt = stmt.where(api_reservations.c.side == side)
    conn.execute(stmt)


def calls_on(conn: Connection, day: date) -> dict[str, int]:
    """API calls per side on ``day``, for ``status``."""
    stmt = sa.select(api_usage.c.side, api_usage.c.calls).where(api_usage.c.day == day)
    return {side: int(calls) for side, calls in conn.execute(stmt)}


# --- runs whose process is gone ----------------------------------------------------------------

#: What is known of the run lock when looking for dead runs: "mine" (the caller holds it),
#: "free", the pid of the process holding it, or "unknown".
LockSeen = Literal["mine", "free", "unknown"] | int


def worker_process(worker: str) -> tuple[str, int] | None:
    """(host, pid) of a worker named ``kind@host:pid`` (sync.cycle.ownership.worker_name);
    None for a name without a pid."""
    named, sep, pid = worker.rpartition(":")
    if not sep or not pid.isdigit() or "@" not in named:
        return None
    return named.split("@", 1)[1], int(pid)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def dead_runs(conn: Connection, *, lock: LockSeen, sessions_end: bool) -> dict[int, str]:
    """Runs recorded as running that cannot be running any more, each with why.

    A run holds the SQLite run lock from its start to its end, so with the lock free (or
    held by the caller, or by another process) a recorded run of any other process is
    over; a run of a worker on this host whose process is gone is over; and on PostgreSQL
    (``sessions_end``) a run whose worker has no database session holding the store's lock
    is over (a run or a serve shard job holds it, exclusive or shared, to its end; the
    server ends a dead worker's session). Such a run was killed or its machine stopped:
    its writes are safe (see the outbox), and the next cycle goes on from them.
    """
    found = list(
        conn.execute(sa.select(runs.c.id, runs.c.worker).where(runs.c.status == "running"))
    )
    if not found:
        return {}
    live: set[str] = set()
    if sessions_end:
        live = {h.application_name or "" for h in pg_lock_holders(conn)}
    here = socket.gethostname()
    dead: dict[int, str] = {}
    for run_id, worker in found:
        process = worker_process(worker)
        if process is not None and process[0] == here and _process_gone(process[1]):
            dead[run_id] = f"interrupted: its process {process[1]} on {here} is gone"
        elif lock in ("mine", "free"):
            dead[run_id] = (
                "interrupted: it no longer holds the run lock, which a run holds to its end"
            )
        elif isinstance(lock, int) and process is not None and process[1] != lock:
            dead[run_id] = "interrupted: another process holds the run lock"
        elif sessions_end and session_name(worker) not in live:
            dead[run_id] = "interrupted: its worker no longer holds the store's lock"
    return dead


def mark_interrupted(conn: Connection, dead: dict[int, str]) -> int:
    """Record runs of :func:`dead_runs` as ``interrupted``, with why (when they ended is
    not known, so ``finished_at`` stays empty), and release what they reserved of the
    day's API budget (the calls they made are not known either)."""
    for run_id, why in dead.items():
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id, runs.c.status == "running")
            .values(status="interrupted", error=why)
        )
        release_calls(conn, run_id)
    return len(dead)


def database_now(conn: Connection) -> datetime | None:
    """The database server's clock (PostgreSQL); None on SQLite, where the caller's clock
    stands in."""
    if conn.dialect.name != "postgresql":
        return None
    now: datetime | None = conn.scalar(sa.select(sa.func.now()))
    return now
