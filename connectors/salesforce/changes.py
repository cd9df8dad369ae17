"""Changes of several objects since their cursors, deletions included, in few calls.

Each object is read with ``queryAll`` (so deleted rows come back with ``IsDeleted``
true: one query covers changes and deletes), and the first page of every object comes
in ONE Composite call (up to five objects a call: Salesforce's limit of query
subrequests). A cycle with nothing new therefore costs one call for the whole CRM side;
further pages follow each query's ``nextRecordsUrl`` (:func:`~.paging.follow`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors import soql
from connectors.crm import Kind
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.paging import (
    MAX_COMPOSITE_QUERIES,
    MODSTAMP,
    PAGE_SIZE,
    Record,
    composite_path,
    first_pages,
    follow,
    page_records,
)
from connectors.salesforce.pull import ModstampCursor

#: On a record a merge took (deleted): the record it was merged into.
MASTER = "MasterRecordId"


@dataclass(frozen=True)
class ChangeQuery:
    """One object to read since a cursor (None: everything, e.g. a first or full sync);
    ``kind``: what the caller reads it as (:mod:`connectors.crm`), carried to its pages."""

    sobject: str
    fields: tuple[str, ...]
    cursor: ModstampCursor | None = None
    where: str | None = None
    kind: Kind | None = None
    #: Fields selected when the object has them (``MasterRecordId``: merges).
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectPage:
    """Records of one object, in (SystemModstamp, Id) order; deleted ones flagged."""

    query: ChangeQuery
    live: list[Record]
    deleted_ids: list[str]
    cursor: ModstampCursor | None  # just past the last record of this page
    #: Records whose SystemModstamp could not be read, as (Id, reason): left out of
    #: ``live`` for the caller to set aside (the cursor comes from the readable ones).
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: Deleted records a merge took: Id -> the record they were merged into.
    merged_into: dict[str, str] = field(default_factory=dict)


def _soql(client: SalesforceClient, query: ChangeQuery) -> str:
    names = client.resolve_fields(query.sobject, ["Id", *query.fields, MODSTAMP, "IsDeleted"])
    if query.optional:
        has = {str(f["name"]).lower() for f in client.describe(query.sobject).get("fields", [])}
        names += [name for name in query.optional if name.lower() in has]
    bound = soql.compare(MODSTAMP, ">=", query.cursor.at) if query.cursor else None
    return soql.select(
        query.sobject, names, where=soql.and_(bound, query.where), order_by=(MODSTAMP, "Id")
    )


def changes(client: SalesforceClient, queries: Sequence[ChangeQuery]) -> Iterator[ObjectPage]:
    """Pages of every object's changes since its cursor; the first pages of up to five
    objects in each Composite call (Salesforce refuses a sixth query in one)."""
    texts = [_soql(client, query) for query in queries]
    for start in range(0, len(queries), MAX_COMPOSITE_QUERIES):
        chunk = slice(start, start + MAX_COMPOSITE_QUERIES)
        firsts = first_pages(client, texts[chunk], include_deleted=True)
        for query, text, first in zip(queries[chunk], texts[chunk], firsts, strict=True):
            yield from _pages(client, query, text, first)


def _pages(
    client: SalesforceClient, query: ChangeQuery, text: str, first: dict[str, Any]
) -> Iterator[ObjectPage]:
    label = f"queryAll {query.sobject}"
    for result, where in follow(client, first, label, f"POST {composite_path(client)}"):
        unreadable: list[tuple[str, str]] = []
        records = page_records(result, f"{label} ({where})", stamped=True, unreadable=unreadable)
        kept = records if query.cursor is None else [r for r in records if query.cursor.admits(r)]
        if kept or unreadable:
            live = [r for r in kept if not r.get("IsDeleted")]
            gone = [r for r in kept if r.get("IsDeleted")]
            merged = {str(r["Id"]): str(r[MASTER]) for r in gone if r.get(MASTER)}
            cursor = ModstampCursor.after(kept[-1]) if kept else None
            yield ObjectPage(query, live, [str(r["Id"]) for r in gone], cursor, unreadable, merged)


__all__ = ["MASTER", "PAGE_SIZE", "ChangeQuery", "ObjectPage", "changes"]
