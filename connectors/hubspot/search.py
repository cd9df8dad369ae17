"""Search requests built safely, and the one paginator of HubSpot's ``after`` pages.

A filter value goes into the JSON body, so no quoting is involved, but HubSpot still
refuses (or silently mis-reads) some values: a value list of more than 100, an empty value
for an operator that needs one, a string with control characters, a string longer than
HubSpot accepts, a non-finite number. :func:`value` refuses those here with a message
naming the property, instead of a 400 from the portal or a filter that matches nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from connectors.exceptions import QueryError, RemoteError

PAGE_SIZE: Final = 100
#: Results one search query can page through; asking past it answers 400.
SEARCH_CAP: Final = 10_000
MAX_GROUPS: Final = 5
MAX_FILTERS: Final = 6
MAX_VALUES: Final = 100
MAX_VALUE_LENGTH: Final = 3_000
OPERATORS: Final = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
)

Scalar = str | int | float | bool | datetime
Record = dict[str, Any]


class FilterValueError(QueryError, ValueError):
    """A value that would break a search filter (the message names the property); a
    QueryError, so the engine treats it as the config problem it usually is."""

    def __init__(self, message: str) -> None:
        super().__init__(message, side="hubspot")


def millis(moment: datetime) -> int:
    """An aware datetime as HubSpot's epoch milliseconds."""
    if moment.tzinfo is None:
        raise FilterValueError(f"refusing naive datetime {moment.isoformat()}: give it a zone")
    return int(moment.astimezone(UTC).timestamp() * 1000)


def value(prop: str, raw: Scalar) -> str:
    """``raw`` as the string a filter carries; FilterValueError when it would break one."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, datetime):
        return str(millis(raw))
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise FilterValueError(f"cannot filter {prop} on {raw!r}: not a finite number")
        return repr(raw)
    if not isinstance(raw, str):
        raise FilterValueError(f"cannot filter {prop} on a {type(raw).__name__}")
    if raw.strip() == "":
        raise FilterValueError(
            f"cannot filter {prop} on an empty value (use HAS_PROPERTY or NOT_HAS_PROPERTY)"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise FilterValueError(
            f"cannot filter {prop} on a value with control characters "
            f"(line breaks, tabs): {raw[:40]!r}"
        )
    if len(raw) > MAX_VALUE_LENGTH:
        raise FilterValueError(
            f"cannot filter {prop} on a value of {len(raw)} characters "
            f"(HubSpot takes at most {MAX_VALUE_LENGTH})"
        )
    return raw


def filter_(prop: str, operator: str, raw: Scalar | Sequence[Scalar] | None = None) -> Record:
    """One filter; FilterValueError for a value HubSpot would refuse."""
    if operator not in OPERATORS:
        raise FilterValueError(f"unknown search operator {operator!r}")
    if not prop or any(c.isspace() for c in prop):
        raise FilterValueError(f"{prop!r} is not a property name")
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return {"propertyName": prop, "operator": operator}
    if operator in ("IN", "NOT_IN"):
        if raw is None or isinstance(raw, str | datetime) or not isinstance(raw, Sequence):
            raise FilterValueError(f"{operator} on {prop} needs a list of values")
        if not raw:
            raise FilterValueError(f"{operator} on {prop} needs at least one value")
        if len(raw) > MAX_VALUES:
            raise FilterValueError(
                f"{operator} on {prop} with {len(raw)} values: HubSpot takes at most "
                f"{MAX_VALUES} (split the ids)"
            )
        return {"propertyName": prop, "operator": operator, "values": [value(prop, v) for v in raw]}
    if raw is None or (isinstance(raw, Sequence) and not isinstance(raw, str)):
        raise FilterValueError(f"{operator} on {prop} needs one value")
    return {"propertyName": prop, "operator": operator, "value": value(prop, raw)}


@dataclass(frozen=True)
class Search:
    """One search body: filter groups (OR of ANDs), one sort, the properties to return."""

    groups: tuple[tuple[Record, ...], ...]
    sort: str
    properties: tuple[str, ...]
    descending: bool = False
    limit: int = PAGE_SIZE

    def __post_init__(self) -> None:
        if len(self.groups) > MAX_GROUPS:
            raise FilterValueError(f"at most {MAX_GROUPS} filter groups, not {len(self.groups)}")
        for group in self.groups:
            if len(group) > MAX_FILTERS:
                raise FilterValueError(f"at most {MAX_FILTERS} filters a group, not {len(group)}")

    def body(self, after: int) -> Record:
        """The JSON body of the page starting at ``after``."""
        body: Record = {
            "filterGroups": [{"filters": list(g)} for g in self.groups],
            "sorts": [
                {
                    "propertyName": self.sort,
                    "direction": "DESCENDING" if self.descending else "ASCENDING",
                }
            ],
            "properties": list(self.properties),
            "limit": self.limit,
        }
        if after:
            body["after"] = str(after)
        return body


def page_of(answer: Any, what: str) -> tuple[list[Record], str | None]:
    """The records and the next ``after`` of one page; RemoteError naming what is wrong
    when the answer is not a page (HubSpot always sends a ``results`` list, empty or not:
    one without is a proxy's or a broken transfer's, never "nothing changed"). A record
    that is not an object is kept out here and set aside by its reader."""
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
        shape = (
            "a document without a results list"
            if isinstance(answer, dict)
            else (f"a {type(answer).__name__}, not a page")
        )
        raise RemoteError(
            f"HubSpot answered {what} with {shape}; check that no proxy rewrites the API's "
            "answers; nothing was stored, the next cycle reads the page again",
            side="hubspot",
        )
    paging = answer.get("paging")
    nxt = ((paging or {}).get("next") or {}).get("after") if isinstance(paging, dict) else None
    if nxt is not None and not (isinstance(nxt, str | int) and str(nxt).strip()):
        raise RemoteError(
            f"HubSpot answered {what} with a paging cursor that is not a value ({nxt!r}); "
            "nothing was stored, the next cycle reads the page again",
            side="hubspot",
        )
    records = [r for r in answer["results"] if isinstance(r, dict)]
    return records, (str(nxt) if nxt is not None else None)


@dataclass
class SearchPages:
    """Pages of one search, stopping before the 10,000 cap; :attr:`capped` tells the
    caller to re-anchor. Each page is one call; a repeated ``after`` raises (loop guard)."""

    post: Callable[[Record], Any]
    search: Search
    capped: bool = False
    total: int | None = None
    _seen_after: set[int] = field(default_factory=set)

    def __iter__(self) -> Iterator[list[Record]]:
        after = 0
        while True:
            answer = self.post(self.search.body(after))
            results, nxt = page_of(answer, "a search")
            total = answer.get("total")
            self.total = total if isinstance(total, int) else self.total
            if results:
                yield results
            if not nxt or not results:
                return
            if not nxt.isdigit():
                raise RemoteError(
                    f"HubSpot answered a search with the paging cursor {nxt!r}, not a "
                    "number; nothing was stored, the next cycle reads the page again",
                    side="hubspot",
                )
            after = int(nxt)
            if after in self._seen_after:
                raise RemoteError(
                    f"HubSpot repeated the search page after={after}; nothing was stored, "
                    "the next cycle reads the page again",
                    side="hubspot",
                )
            self._seen_after.add(after)
            if after >= SEARCH_CAP:
                self.capped = True
                return


def list_pages(get: Callable[[Record], Any], params: Record) -> Iterator[list[Record]]:
    """Pages of a list endpoint (``GET /crm/v3/objects/{type}``), by ``after`` (no cap)."""
    after: str | None = None
    seen: set[str] = set()
    while True:
        query = dict(params, limit=PAGE_SIZE)
        if after:
            query["after"] = after
        results, nxt = page_of(get(query), "a list")
        if results:
            yield results
        if not nxt or not results:
            return
        if nxt in seen:
            raise RemoteError(
                f"HubSpot repeated the list page after={nxt}; the next cycle tries again",
                side="hubspot",
            )
        seen.add(nxt)
        after = str(nxt)
