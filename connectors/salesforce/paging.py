"""Query answers page by page: the one ``nextRecordsUrl`` paginator.

A query's first page comes from ``query``/``queryAll`` in the URI, or from a Composite
subrequest (several first pages in one call, or one query too long for a URI); every
further page from the answer's ``nextRecordsUrl``. :func:`follow` is the one loop that
walks them, for plain queries (:func:`query_pages`) and for the changes of a cycle
(:mod:`connectors.salesforce.changes`) alike, with one guard: a ``nextRecordsUrl`` seen
twice, or ``done: false`` without one, is a RemoteError instead of a loop or a silent
end. :func:`page_records` checks each answer before anything of it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlsplit

from connectors.exceptions import QueryError, RemoteError
from connectors.times import parse_timestamp

if TYPE_CHECKING:  # in annotations only: MODSTAMP's readers (the report) need no client
    from simple_salesforce import Salesforce

    from connectors.salesforce.client import SalesforceClient

#: ``connectors.salesforce.errors.SIDE``, not imported from there: that module imports
#: simple-salesforce, which the readers of MODSTAMP (``report``) do not need.
SIDE = "salesforce"

PAGE_SIZE = 2000
QUERY_OPTIONS = {"Sforce-Query-Options": f"batchSize={PAGE_SIZE}"}
MODSTAMP = "SystemModstamp"
#: Composite takes at most 25 subrequests, of which at most 5 may be queries.
MAX_COMPOSITE_QUERIES = 5
#: A query longer than this (URL-encoded) goes in a Composite body instead of the URI:
#: Salesforce refuses a URI over 16,384 bytes, or URI and headers over 16,384 together.
MAX_QUERY_IN_URI = 12_000

Record = dict[str, Any]


def follow(
    client: SalesforceClient, first: Mapping[str, Any], label: str, where: str
) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Every answer of one query, lazily: ``first``, then each page its ``nextRecordsUrl``
    names, as (answer, where it came from: ``METHOD /path``, for messages). ``label``
    names the query in messages (``queryAll Account``).

    A ``nextRecordsUrl`` seen twice, or ``done: false`` without one, raises RemoteError:
    the pages before it were delivered, nothing after it is guessed at.
    """
    result, seen = first, set[str]()
    while True:
        yield result, where
        if result.get("done", True):
            return
        next_url = result.get("nextRecordsUrl")
        if not isinstance(next_url, str) or not next_url:
            raise RemoteError(
                f"Salesforce answered {label} ({where}) with done false but no "
                "nextRecordsUrl; the pages before it were kept; the next cycle tries again",
                side=SIDE,
            )
        if next_url in seen:
            raise RemoteError(
                f"Salesforce answered {label} with nextRecordsUrl {next_url} a second time; "
                "stopped instead of reading it again; the next cycle tries again",
                side=SIDE,
            )
        seen.add(next_url)
        where = f"GET {urlsplit(next_url).path}"
        result = client.call(f"{label} page {next_url}", _more(next_url))


def _more(url: str) -> Callable[[Salesforce], Any]:
    return lambda sf: sf.query_more(url, identifier_is_url=True, headers=QUERY_OPTIONS)


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
                parse_timestamp(str(record[MODSTAMP]))
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
    """Pages of a SOQL query (up to 2000 records each), following ``nextRecordsUrl`` lazily
    (:func:`follow`); empty pages are left out."""
    verb = "queryAll" if include_deleted else "query"
    if len(quote_plus(query)) > MAX_QUERY_IN_URI:
        # Salesforce answers 414 past 16,384 bytes of URI (431 with the headers); a query
        # in a Composite body has no such limit and still costs one call.
        (result,) = first_pages(client, [query], include_deleted=include_deleted)
        where = f"POST {composite_path(client)}"
    else:
        result = client.call(
            f"{verb} {query[:120]}",
            lambda sf: sf.query(query, include_deleted=include_deleted, headers=QUERY_OPTIONS),
        )
        where = f"GET /services/data/v{client.sf.sf_version}/{verb}/"
    for answer, came_from in follow(client, result, verb, where):
        records = page_records(answer, f"{verb} ({came_from})")
        if records:
            yield records


def composite_path(client: SalesforceClient) -> str:
    """The path of the Composite resource of the client's API version."""
    return f"/services/data/v{client.sf.sf_version}/composite"


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
