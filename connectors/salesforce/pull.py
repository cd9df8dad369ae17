"""Reading: incremental pulls by SystemModstamp, and deletes (pages: :mod:`.paging`).

Pulls are bounded by ``SystemModstamp >= <cursor, whole seconds>`` and ordered by
``SystemModstamp, Id``; records at or before the cursor (same instant, Id not greater
than the last one seen) are dropped here, so equal timestamps neither repeat nor get lost.
Results stream as pages of plain dicts; nothing holds the whole result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors import soql
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.paging import MODSTAMP, PAGE_SIZE, Record, query_pages
from connectors.times import parse_timestamp as parse_datetime

CASE_FIELDS = ("Id", "AccountId", "IsClosed", "IsEscalated", "Status", MODSTAMP)

__all__ = [
    "CASE_FIELDS",
    "MODSTAMP",
    "PAGE_SIZE",
    "ModstampCursor",
    "Record",
    "deleted_ids",
    "parse_datetime",
    "pull",
]


@dataclass(frozen=True)
class ModstampCursor:
    """Where an incremental pull resumes: the last record's SystemModstamp and Id."""

    at: datetime
    last_id: str = ""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("a cursor needs an aware datetime")

    def admits(self, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` comes after this cursor in (SystemModstamp, Id) order."""
        stamp = parse_datetime(str(record[MODSTAMP]))
        return stamp > self.at or (stamp == self.at and str(record["Id"]) > self.last_id)

    @classmethod
    def after(cls, record: Mapping[str, Any]) -> ModstampCursor:
        """The cursor just past ``record`` (the last of a page)."""
        return cls(parse_datetime(str(record[MODSTAMP])), str(record["Id"]))

    def to_json(self) -> dict[str, str]:
        """For the state store."""
        return {"at": self.at.astimezone(UTC).isoformat(), "last_id": self.last_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModstampCursor:
        """From the state store."""
        return cls(parse_datetime(str(data["at"])), str(data.get("last_id") or ""))


def pull(
    client: SalesforceClient,
    sobject: str,
    fields: Sequence[str],
    cursor: ModstampCursor | None = None,
    *,
    where: str | None = None,
) -> Iterator[list[Record]]:
    """Records of ``sobject`` changed since ``cursor`` (all with None), in modstamp order.

    Fields are checked against describe first (ConfigError naming a missing one); ``Id``
    and ``SystemModstamp`` are always selected.
    """
    names = client.resolve_fields(sobject, ["Id", *fields, MODSTAMP])
    bound = soql.compare(MODSTAMP, ">=", cursor.at) if cursor else None
    query = soql.select(sobject, names, where=soql.and_(bound, where), order_by=(MODSTAMP, "Id"))
    for page in query_pages(client, query):
        kept = page if cursor is None else [r for r in page if cursor.admits(r)]
        if kept:
            yield kept


def deleted_ids(client: SalesforceClient, sobject: str, since: datetime) -> Iterator[list[str]]:
    """Ids of ``sobject`` records deleted since ``since`` (queryAll, IsDeleted = true).

    Salesforce keeps deleted records about 15 days: a longer gap needs a full comparison.
    """
    client.describe(sobject)
    query = soql.select(
        sobject,
        ["Id"],
        where=soql.and_(soql.compare("IsDeleted", "=", True), soql.compare(MODSTAMP, ">=", since)),
        order_by=(MODSTAMP, "Id"),
    )
    for page in query_pages(client, query, include_deleted=True):
        yield [str(r["Id"]) for r in page]
