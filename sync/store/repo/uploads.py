"""Uploaded progress reports: which account got its report for which period."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks, upsert
from sync.store.schema import report_uploads

__all__ = ["UploadRecord", "put_upload", "uploads_of_period"]


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """One report file attached to one account for one period."""

    account_id: str
    period: str
    title: str
    content_version_id: str
    uploaded_at: datetime


def put_upload(conn: Connection, record: UploadRecord) -> None:
    """Remember an upload (a second record of the same account and period replaces it)."""
    upsert(
        conn,
        report_uploads,
        [
            {
                "account_id": record.account_id,
                "period": record.period,
                "title": record.title,
                "content_version_id": record.content_version_id,
                "uploaded_at": aware(record.uploaded_at, "uploaded_at"),
            }
        ],
        ("account_id", "period"),
    )


def uploads_of_period(
    conn: Connection, period: str, account_ids: Iterable[str] | None = None
) -> dict[str, UploadRecord]:
    """Uploads of ``period`` by account id (all accounts when ``account_ids`` is None)."""
    r = report_uploads
    base = sa.select(r).where(r.c.period == period)
    if account_ids is None:
        rows = list(conn.execute(base))
    else:
        rows = [
            row
            for batch in in_chunks(account_ids)
            for row in conn.execute(base.where(r.c.account_id.in_(batch)))
        ]
    return {row.account_id: UploadRecord(**row._mapping) for row in rows}
