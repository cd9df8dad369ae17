"""Small SQL helpers shared by the repository modules: upserts, chunking, UTC time."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

T = TypeVar("T")

#: Rows per executemany batch; keeps memory flat on 100,000-row upserts.
CHUNK = 2000
#: Values per ``IN (...)`` list; well under SQLite's bound-parameter limit.
IN_CHUNK = 500


def utcnow() -> datetime:
    """The current time, tz-aware UTC."""
    return datetime.now(UTC)


def aware(value: datetime, what: str = "time") -> datetime:
    """``value`` in UTC; a naive value is refused (it would be read in some unknown zone)."""
    if value.tzinfo is None:
        raise ValueError(f"naive {what} {value!r}: pass a tz-aware datetime")
    return value.astimezone(UTC)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def json_digest(value: Any) -> str:
    """A stable SHA-256 of a JSON value (keys sorted)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT construct, which knows ``ON CONFLICT``."""
    # Each dialect's module is imported by the first statement on it (not for the other).
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise NotImplementedError(f"state store on {conn.dialect.name} is not supported")


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Iterable[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    update: Sequence[str] | None = None,
    where: Any = None,
) -> int:
    """Insert ``rows``, updating ``update`` columns (default: all non-key ones) on a key clash.

    Rows go in chunks as executemany batches. Within a chunk a key given twice keeps its
    last row, so one statement never touches a row twice. ``where`` (a function of the
    statement) guards the update, e.g. to never go back to an older version.
    Returns the number of rows given.
    """
    count = 0
    for batch in chunked(rows, CHUNK):
        unique = list({tuple(row[k] for k in keys): row for row in batch}.values())
        columns = list(unique[0])
        stmt = insert_for(conn, table)
        set_cols = [c for c in (update if update is not None else columns) if c not in keys]
        set_ = {c: stmt.excluded[c] for c in set_cols}
        if set_:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_=set_,
                where=where(stmt) if where is not None else None,
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        conn.execute(stmt, unique)
        count += len(unique)
    return count


def in_chunks(values: Iterable[T]) -> Iterator[list[T]]:
    """Distinct ``values`` in lists short enough for one ``IN (...)``."""
    return chunked(dict.fromkeys(values), IN_CHUNK)
