"""History over time: progress snapshots per pair and day, satisfaction per customer and day,
and the current satisfaction flags (the previous flags are an input of the next cycle)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks, upsert
from sync.store.schema import progress_snapshots, satisfaction_flags, satisfaction_history

__all__ = [
    "FlagRecord",
    "FlagRow",
    "ProgressRecord",
    "SatisfactionRecord",
    "SatisfactionRow",
    "delete_flags",
    "get_flags",
    "latest_progress",
    "latest_scores",
    "progress_history",
    "put_flags",
    "put_progress",
    "put_satisfaction",
    "satisfaction_history_of",
]


@dataclass(frozen=True, slots=True)
class ProgressRecord:
    """Progress of one (customer, project) pair on one day."""

    customer_id: str
    project_key: str
    day: date
    total: int
    done: int
    in_progress: int
    todo: int
    overdue: int
    blocked: int
    percent_complete: float
    health: str
    forecast_date: date | None


def put_progress(conn: Connection, rows: Iterable[ProgressRecord]) -> int:
    """Store snapshots; a second one for the same pair and day replaces the first."""
    values = (
        {
            "customer_id": r.customer_id,
            "project_key": r.project_key,
            "day": r.day,
            "total": r.total,
            "done": r.done,
            "in_progress": r.in_progress,
            "todo": r.todo,
            "overdue": r.overdue,
            "blocked": r.blocked,
            "percent_complete": r.percent_complete,
            "health": r.health,
            "forecast_date": r.forecast_date,
        }
        for r in rows
    )
    return upsert(conn, progress_snapshots, values, ("customer_id", "project_key", "day"))


def _progress(row: Any) -> ProgressRecord:
    return ProgressRecord(**row._mapping)


def progress_history(
    conn: Connection,
    customer_id: str | None = None,
    project_key: str | None = None,
    since: date | None = None,
) -> list[ProgressRecord]:
    """Snapshots from ``since`` on, oldest first (for trends and charts)."""
    p = progress_snapshots
    stmt = sa.select(p).order_by(p.c.customer_id, p.c.project_key, p.c.day)
    if customer_id is not None:
        stmt = stmt.where(p.c.customer_id == customer_id)
    if project_key is not None:
        stmt = stmt.where(p.c.project_key == project_key)
    if since is not None:
        stmt = stmt.where(p.c.day >= since)
    return [_progress(row) for row in conn.execute(stmt)]


def latest_progress(conn: Connection) -> list[ProgressRecord]:
    """The newest snapshot of every pair (what the report shows without a network)."""
    p = progress_snapshots
    newest = (
        sa.select(p.c.customer_id, p.c.project_key, sa.func.max(p.c.day).label("day"))
        .group_by(p.c.customer_id, p.c.project_key)
        .subquery()
    )
    stmt = (
        sa.select(p)
        .join(
            newest,
            sa.and_(
                p.c.customer_id == newest.c.customer_id,
                p.c.project_key == newest.c.project_key,
                p.c.day == newest.c.day,
            ),
        )
        .order_by(p.c.customer_id, p.c.project_key)
    )
    return [_progress(row) for row in conn.execute(stmt)]


class SatisfactionRow(TypedDict):
    """A customer's satisfaction on one day."""

    customer_id: str
    day: date
    score: float | None
    scale: int | None
    level: str
    reasons: NotRequired[list[str]]


@dataclass(frozen=True, slots=True)
class SatisfactionRecord:
    """A stored satisfaction day."""

    customer_id: str
    day: date
    score: float | None
    scale: int | None
    level: str
    reasons: list[str]


def put_satisfaction(conn: Connection, rows: Iterable[SatisfactionRow]) -> int:
    """Store satisfaction per customer and day (the latest of the day wins)."""
    values = (
        {
            "customer_id": r["customer_id"],
            "day": r["day"],
            "score": r["score"],
            "scale": r["scale"],
            "level": r["level"],
            "reasons": list(r.get("reasons", [])),
        }
        for r in rows
    )
    return upsert(conn, satisfaction_history, values, ("customer_id", "day"))


def satisfaction_history_of(
    conn: Connection, customer_id: str | None = None, since: date | None = None
) -> list[SatisfactionRecord]:
    """Satisfaction days from ``since`` on, oldest first."""
    s = satisfaction_history
    stmt = sa.select(s).order_by(s.c.customer_id, s.c.day)
    if customer_id is not None:
        stmt = stmt.where(s.c.customer_id == customer_id)
    if since is not None:
        stmt = stmt.where(s.c.day >= since)
    return [SatisfactionRecord(**row._mapping) for row in conn.execute(stmt)]


def latest_scores(conn: Connection, before: date) -> dict[str, float]:
    """Each customer's most recent satisfaction score stored for a day before ``before``
    (customers with none are left out): one row per customer, however long the history."""
    s = satisfaction_history
    scored = sa.and_(s.c.day < before, s.c.score.is_not(None))
    newest = (
        sa.select(s.c.customer_id, sa.func.max(s.c.day).label("day"))
        .where(scored)
        .group_by(s.c.customer_id)
        .subquery()
    )
    stmt = sa.select(s.c.customer_id, s.c.score).join(
        newest, sa.and_(s.c.customer_id == newest.c.customer_id, s.c.day == newest.c.day)
    )
    return {str(customer): float(score) for customer, score in conn.execute(stmt)}


class FlagRow(TypedDict):
    """A customer's current flag."""

    customer_id: str
    level: str
    since: datetime
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class FlagRecord:
    """A stored current flag."""

    customer_id: str
    level: str
    since: datetime
    reasons: list[str]


def get_flags(conn: Connection, customer_ids: Iterable[str] | None = None) -> dict[str, FlagRecord]:
    """Current flags by customer id (all when ``customer_ids`` is None)."""
    f = satisfaction_flags
    if customer_ids is None:
        rows = list(conn.execute(sa.select(f)))
    else:
        rows = [
            row
            for batch in in_chunks(customer_ids)
            for row in conn.execute(sa.select(f).where(f.c.customer_id.in_(batch)))
        ]
    return {row.customer_id: FlagRecord(**row._mapping) for row in rows}


def put_flags(conn: Connection, rows: Iterable[FlagRow]) -> int:
    """Store the new current flags (replacing the previous ones of those customers)."""
    values = (
        {
            "customer_id": r["customer_id"],
            "level": r["level"],
            "since": aware(r["since"], "since"),
            "reasons": list(r["reasons"]),
        }
        for r in rows
    )
    return upsert(conn, satisfaction_flags, values, ("customer_id",))


def delete_flags(conn: Connection, customer_ids: Iterable[str]) -> int:
    """Forget the flags of some customers (deleted accounts)."""
    f = satisfaction_flags
    return sum(
        conn.execute(sa.delete(f).where(f.c.customer_id.in_(batch))).rowcount
        for batch in in_chunks(customer_ids)
    )
