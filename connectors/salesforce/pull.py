"""Reading: one ``nextRecordsUrl`` paginator, incremental pulls by SystemModstamp, deletes.

Pulls are bounded by ``SystemModstamp >= <cursor, whole seconds>`` and ordered by
``SystemModstamp, Id``; records at or before the cursor (same instant, Id not greater
than the last one seen) are dropped here, so equal timestamps neither repeat nor get lost.
Results stream as pages of plain dicts; nothing holds the whole result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from simple_salesforce import Salesforce

from connectors import soql
from connectors.exceptions import QueryError, RemoteError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SIDE

PAGE_SIZE = 2000
QUERY_OPTIONS = {"Sforce-Query-Options": f"batchSize={PAGE_SIZE}"}
MODSTAMP = "SystemModstamp"
#: Composite takes at most 25 subrequests, of which at most 5 may be queries.
MAX_COMPOSITE_QUERIES = 5
#: A query longer than this (URL-encoded) goes in a Composite body instead of the URI:
#: Salesforce refuses a URI over 16,384 bytes, or URI and headers over 16,384 together.
MAX_QUERY_IN_URI = 12_000
CASE_FIELDS = ("Id", "AccountId", "IsClosed", "IsEscalated", "Status", MODSTAMP)

Record = dict[str, Any]


def parse_datetime(text: str) -> datetime:
    """A Salesforce date-time (``2013-05-20T20:49:32.000+0000``) as an aware UTC datetime."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = value[:-2] + ":" + value[-2:]
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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


def strip_attributes(record: Mapping[str, Any]) -> Record:
    """A query record as a plain dict: ``attributes`` removed, also from parent records."""
    return {
        key: strip_attributes(value) if isinstance(value, Mapping) else value
        for key, value in record.items()
        if key != "attributes"
    }


def page_records(
    result: Any,
    what: str,
    *,
    stamped: bool = False,
    unreadable: list[tuple[str, str]] | None = None,
) -> list[Record]:
    """The records of one query answer, checked: a page without a records list, or a
    record without Id, is a RemoteError (nothing of it can be stored or set aside). A
    record whose SystemModstamp (``stamped``: it was selected) cannot be read is a
    RemoteError too, unless ``unreadable`` is given: then it is left out of the result and
    listed there as (Id, reason), for the caller to set aside while the rest goes on."""
    records = result.get("records") if isinstance(result, Mapping) else None
    if not isinstance(records, list):
        raise RemoteError(
            f"Salesforce answered {what} without a records list; nothing of it was "
            "stored; the next cycle tries again",
            side=SIDE,
        )
    out = [strip_attributes(r) for r in records if isinstance(r, Mapping)]
    kept: list[Record] = []
    for record in out:
        problem = None
        if not isinstance(record.get("Id"), str) or not record["Id"]:
            problem = "a record without Id"
        elif stamped or MODSTAMP in record:
            try:
                parse_datetime(str(record[MODSTAMP]))
            except (KeyError, ValueError):
                if unreadable is not None:
                    shown = str(record.get(MODSTAMP))[:40]
                    unreadable.append((record["Id"], f"{MODSTAMP} is {shown!r}, not a time"))
                    continue
                problem = f"record {record['Id']} with an unreadable {MODSTAMP}"
        if problem or len(out) != len(records):
            raise RemoteError(
                f"Salesforce answered {what} with {problem or 'a record that is not an object'}"
                "; nothing of that page was stored; the next cycle tries again",
                side=SIDE,
            )
        kept.append(record)
    return kept


def query_pages(
    client: SalesforceClient, query: str, *, include_deleted: bool = False
) -> Iterator[list[Record]]:
    """Pages of a SOQL query (up to 2000 records each), following ``nextRecordsUrl`` lazily.

    A ``nextRecordsUrl`` seen twice, or ``done: false`` without one, raises RemoteError
    instead of looping.
    """
    verb = "queryAll" if include_deleted else "query"
    if len(quote_plus(query)) > MAX_QUERY_IN_URI:
        # Salesforce answers 414 past 16,384 bytes of URI (431 with the headers); a query
        # in a Composite body has no such limit and still costs one call.
        (result,) = first_pages(client, [query], include_deleted=include_deleted)
    else:
        result = client.call(
            f"{verb} {query[:120]}",
            lambda sf: sf.query(query, include_deleted=include_deleted, headers=QUERY_OPTIONS),
        )
    seen: set[str] = set()
    while True:
        records = page_records(result, verb)
        if records:
            yield records
        if result.get("done", True):
            return
        next_url = result.get("nextRecordsUrl")
        if not next_url:
            raise RemoteError(f"{verb}: done is false but no nextRecordsUrl came", side=SIDE)
        if next_url in seen:
            raise RemoteError(f"{verb}: nextRecordsUrl {next_url} repeated; stopping", side=SIDE)
        seen.add(next_url)
        result = client.call(f"{verb} page {next_url}", _more(next_url))


def first_pages(
    client: SalesforceClient, texts: Sequence[str], *, include_deleted: bool
) -> list[dict[str, Any]]:
    """The first page of each query (at most five: Salesforce's limit of query subrequests)
    in ONE Composite call; QueryError naming the query Salesforce refused."""
    if len(texts) > MAX_COMPOSITE_QUERIES:
        raise ValueError(f"at most {MAX_COMPOSITE_QUERIES} queries per Composite call")
    version = client.sf.sf_version
    verb = "queryAll" if include_deleted else "query"
    subrequests = [
        {
            "method": "GET",
            "url": f"/services/data/v{version}/{verb}?q={quote_plus(text)}",
            "referenceId": f"q{i}",
            "httpHeaders": dict(QUERY_OPTIONS),
        }
        for i, text in enumerate(texts)
    ]
    answer = client.call(
        f"composite of {len(texts)} queries",
        lambda sf: sf.restful(
            "composite", method="POST", json={"allOrNone": False, "compositeRequest": subrequests}
        ),
    )
    results = (answer or {}).get("compositeResponse") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != len(texts):
        raise RemoteError("Salesforce answered a Composite query call without results", side=SIDE)
    pages: list[dict[str, Any]] = []
    for text, result in zip(texts, results, strict=True):
        status = int(result.get("httpStatusCode", 0)) if isinstance(result, dict) else 0
        body = result.get("body") if isinstance(result, dict) else None
        if status != 200 or not isinstance(body, dict):
            detail = "; ".join(
                f"{e.get('errorCode')}: {e.get('message')}"
                for e in (body if isinstance(body, list) else ())
                if isinstance(e, dict)
            )
            raise QueryError(
                f"Salesforce refused the query {text[:160]!r} (HTTP {status}: {detail}); "
                "check the object and field names in the config",
                side=SIDE,
            )
        pages.append(body)
    return pages


def _more(url: str) -> Callable[[Salesforce], Any]:
    return lambda sf: sf.query_more(url, identifier_is_url=True, headers=QUERY_OPTIONS)


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
