"""Cursors, normalised Jira work items and customer-project links.

Every function takes the connection of the caller's transaction, so records and the
cursor that covers them commit together::

    with store.transaction() as tx:
        upsert_items(tx, rows)
        set_cursor(tx, "jira", "issues", {"updated": "..."})
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks, upsert, utcnow
from sync.store.schema import cursors, jira_items, links

__all__ = [
    "CursorRecord",
    "ItemRecord",
    "ItemRow",
    "LinkRecord",
    "LinkRow",
    "all_cursors",
    "clear_cursors",
    "clear_dirty",
    "count_items",
    "delete_links_for_customers",
    "dirty_marks",
    "get_cursor",
    "get_items",
    "get_links",
    "item_counts_by_project",
    "item_keys",
    "iter_item_keys",
    "iter_items",
    "mark_dirty",
    "mark_items_deleted",
    "set_cursor",
    "set_links",
    "upsert_items",
]

YIELD_PER = 1000


# --- cursors -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CursorRecord:
    """Where a pull of one object from one source got to."""

    source: str
    object: str
    value: Any
    updated_at: datetime


def get_cursor(conn: Connection, source: str, object: str) -> Any:
    """The cursor value of ``(source, object)``; None when there is none yet."""
    row = conn.execute(
        sa.select(cursors.c.value).where(cursors.c.source == source, cursors.c.object == object)
    ).first()
    return None if row is None else row.value


def set_cursor(
    conn: Connection, source: str, object: str, value: Any, *, at: datetime | None = None
) -> None:
    """Set a cursor; call it in the transaction that stores the records it covers."""
    upsert(
        conn,
        cursors,
        [{"source": source, "object": object, "value": value, "updated_at": at or utcnow()}],
        ("source", "object"),
    )


def all_cursors(conn: Connection) -> list[CursorRecord]:
    """Every cursor, for ``status``."""
    rows = conn.execute(sa.select(cursors).order_by(cursors.c.source, cursors.c.object))
    return [CursorRecord(r.source, r.object, r.value, r.updated_at) for r in rows]


def clear_cursors(conn: Connection, source: str | None = None) -> int:
    """Forget cursors (all, or one source's), so the next pull starts from scratch."""
    stmt = sa.delete(cursors)
    if source is not None:
        stmt = stmt.where(cursors.c.source == source)
    return conn.execute(stmt).rowcount


# --- projects changed but not derived yet ----------------------------------------------------

#: Cursor source of the marks: one row per (project, pull transaction), so that a derive
#: clears exactly the marks it read and a mark written meanwhile survives.
DIRTY = "dirty"


def mark_dirty(conn: Connection, projects: Iterable[str], *, at: datetime | None = None) -> int:
    """Note that stored records of ``projects`` changed; call it in the transaction that
    stores them. The marks outlive a crash until a derive that covered them clears them
    (:func:`clear_dirty`), so a pull whose cursor advanced loses no change."""
    token = uuid.uuid4().hex[:12]
    when = at or utcnow()
    rows = [
        {"source": DIRTY, "object": f"{project}|{token}", "value": project, "updated_at": when}
        for project in sorted(set(projects))
    ]
    return upsert(conn, cursors, rows, ("source", "object")) if rows else 0


def dirty_marks(conn: Connection) -> dict[str, str]:
    """Every mark not cleared yet: mark name -> project key."""
    stmt = sa.select(cursors.c.object, cursors.c.value).where(cursors.c.source == DIRTY)
    return {str(name): str(project) for name, project in conn.execute(stmt)}


def clear_dirty(conn: Connection, marks: Iterable[str]) -> int:
    """Remove marks (by name) that a derive covered."""
    removed = 0
    for batch in in_chunks(marks):
        removed += conn.execute(
            sa.delete(cursors).where(cursors.c.source == DIRTY, cursors.c.object.in_(batch))
        ).rowcount
    return removed


# --- Jira work items -------------------------------------------------------------------------


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


# --- links -------------------------------------------------------------------------------------


class LinkRow(TypedDict):
    """A customer linked to a project, and by which rule."""

    customer_id: str
    rule: str
    scope: NotRequired[str | None]
    item_count: NotRequired[int]


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """A stored link."""

    customer_id: str
    project_key: str
    rule: str
    scope: str | None
    item_count: int
    updated_at: datetime


def set_links(
    conn: Connection, project_key: str, rows: Iterable[LinkRow], *, at: datetime | None = None
) -> None:
    """Replace the links of one project with ``rows``."""
    when = at or utcnow()
    conn.execute(sa.delete(links).where(links.c.project_key == project_key))
    values = {
        row["customer_id"]: {
            "customer_id": row["customer_id"],
            "project_key": project_key,
            "rule": row["rule"],
            "scope": row.get("scope"),
            "item_count": row.get("item_count", 0),
            "updated_at": when,
        }
        for row in rows
    }
    if values:
        conn.execute(sa.insert(links), list(values.values()))


def get_links(
    conn: Connection,
    *,
    project_keys: Iterable[str] | None = None,
    customer_ids: Iterable[str] | None = None,
) -> list[LinkRecord]:
    """Stored links, optionally only those of some projects and/or customers."""
    stmt = sa.select(links).order_by(links.c.project_key, links.c.customer_id)
    if project_keys is not None:
        stmt = stmt.where(links.c.project_key.in_(sorted(set(project_keys))))
    if customer_ids is not None:
        stmt = stmt.where(links.c.customer_id.in_(sorted(set(customer_ids))))
    return [
        LinkRecord(r.customer_id, r.project_key, r.rule, r.scope, r.item_count, r.updated_at)
        for r in conn.execute(stmt)
    ]


def delete_links_for_customers(conn: Connection, customer_ids: Iterable[str]) -> int:
    """Remove every link of some customers (their accounts were deleted)."""
    removed = 0
    for batch in in_chunks(customer_ids):
        removed += conn.execute(sa.delete(links).where(links.c.customer_id.in_(batch))).rowcount
    return removed
