"""The remote-metadata cache: values with the time they were fetched."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import upsert
from sync.store.schema import remote_cache

__all__ = ["cache_clear", "cache_get", "cache_put"]


def cache_get(conn: Connection, key: str, now: datetime, max_age: timedelta) -> Any | None:
    """The cached value of ``key`` if fetched less than ``max_age`` before ``now``."""
    row = conn.execute(
        sa.select(remote_cache.c.value, remote_cache.c.fetched_at).where(remote_cache.c.key == key)
    ).first()
    if row is None or row.fetched_at + max_age <= now:
        return None
    return row.value


def cache_put(conn: Connection, key: str, value: Any, now: datetime) -> None:
    """Store ``value`` under ``key`` (JSON-serialisable, never a secret)."""
    upsert(conn, remote_cache, [{"key": key, "value": value, "fetched_at": now}], ["key"])


def cache_clear(conn: Connection, prefix: str = "") -> None:
    """Forget cached values (all, or those whose key starts with ``prefix``)."""
    stmt = sa.delete(remote_cache)
    if prefix:
        stmt = stmt.where(remote_cache.c.key.startswith(prefix))
    conn.execute(stmt)
