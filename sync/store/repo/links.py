"""Customer-project links: which customers a project's work is for, and by which rule.

Replaced per project at each derive; a deleted account's links go with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import in_chunks, utcnow
from sync.store.schema import links

__all__ = ["LinkRecord", "LinkRow", "delete_links_for_customers", "get_links", "set_links"]


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
