"""Run history (one row per cycle) and API calls per side per day (the daily budget)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, insert_for, utcnow
from sync.store.schema import api_usage, runs

__all__ = [
    "RUN_STATUSES",
    "RunRecord",
    "add_calls",
    "calls_on",
    "calls_today",
    "finish_run",
    "get_run",
    "last_runs",
    "start_run",
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
) -> None:
    """Record how a cycle ended: status, exit code, calls per side and endpoint, counts."""
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


def calls_on(conn: Connection, day: date) -> dict[str, int]:
    """API calls per side on ``day``, for ``status``."""
    stmt = sa.select(api_usage.c.side, api_usage.c.calls).where(api_usage.c.day == day)
    return {side: int(calls) for side, calls in conn.execute(stmt)}
