"""Search evaluation (``POST /crm/v3/objects/{type}/search``), without HTTP: filter groups,
the one sort, ``after`` paging and HubSpot's 10,000-result cap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from connectors.sandbox.hubspot.schema import Prop
from connectors.sandbox.hubspot.values import as_millis

MAX_GROUPS: Final = 5
MAX_FILTERS: Final = 6
MAX_LIMIT: Final = 200
SEARCH_CAP: Final = 10_000
OPERATORS: Final = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)


class SearchError(ValueError):
    """A search HubSpot answers 400 (VALIDATION_ERROR)."""


def _key(prop: Prop | None, value: Any) -> Any:
    """A comparable form of a stored or filter value for ``prop``."""
    if value is None:
        return None
    if prop is not None and (prop.type == "number" or prop.name == "hs_object_id"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SearchError(f"{value!r} is not a valid number for {prop.name}") from None
    if prop is not None and prop.type in ("datetime", "date"):
        ms = as_millis(value)
        if ms is None:
            raise SearchError(f"{value!r} is not a valid date for {prop.name}")
        return ms
    return str(value).lower()


def check(body: Mapping[str, Any], props: Mapping[str, Prop]) -> None:
    """Raise SearchError for what HubSpot refuses before evaluating anything."""
    groups = body.get("filterGroups") or []
    if len(groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups ({len(groups)}); the maximum is {MAX_GROUPS}.")
    for group in groups:
        filters = group.get("filters") or []
        if len(filters) > MAX_FILTERS:
            raise SearchError(
                f"Too many filters in a group ({len(filters)}); the maximum is {MAX_FILTERS}."
            )
        for f in filters:
            if f.get("operator") not in OPERATORS:
                raise SearchError(f"Unknown operator {f.get('operator')!r}.")
            if f.get("propertyName") not in props and not str(f.get("propertyName", "")).startswith(
                "associations."
            ):
                raise SearchError(f"Property {f.get('propertyName')!r} does not exist.")
            if f.get("operator") in ("IN", "NOT_IN") and len(f.get("values") or []) > 100:
                raise SearchError("IN filters take at most 100 values.")
    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        raise SearchError("Only one sort is supported.")
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}.")
    try:
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise SearchError(f"after {body.get('after')!r} is not a valid offset.") from None
    if after + limit > SEARCH_CAP:
        raise SearchError(
            f"The request is for results {after} to {after + limit}; search returns at most "
            f"{SEARCH_CAP} results for a query. Narrow the query's filters."
        )


def _match(
    f: Mapping[str, Any],
    values: Mapping[str, Any],
    props: Mapping[str, Prop],
    associations: Mapping[str, set[str]],
) -> bool:
    name = str(f.get("propertyName"))
    op = f.get("operator")
    if name.startswith("associations."):
        linked = associations.get(name.split(".", 1)[1], set())
        wanted = {str(f.get("value"))} if "value" in f else {str(v) for v in f.get("values") or []}
        return bool(linked & wanted) if op in ("EQ", "IN") else not (linked & wanted)
    prop = props.get(name)
    stored = values.get(name)
    if op == "HAS_PROPERTY":
        return stored not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return stored in (None, "")
    if op in ("IN", "NOT_IN"):
        wanted = {_key(prop, v) for v in f.get("values") or []}
        inside = stored not in (None, "") and _key(prop, stored) in wanted
        return inside if op == "IN" else not inside
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(f.get("value") or "").lower().strip("*")
        inside = token in str(stored or "").lower()
        return inside if op == "CONTAINS_TOKEN" else not inside
    if stored in (None, ""):
        return op == "NEQ"
    have = _key(prop, stored)
    if op == "BETWEEN":
        return bool(_key(prop, f.get("value")) <= have <= _key(prop, f.get("highValue")))
    want = _key(prop, f.get("value"))
    return {
        "EQ": have == want,
        "NEQ": have != want,
        "LT": have < want,
        "LTE": have <= want,
        "GT": have > want,
        "GTE": have >= want,
    }[str(op)]


def evaluate(
    body: Mapping[str, Any],
    rows: list[tuple[str, dict[str, Any], dict[str, set[str]]]],
    props: Mapping[str, Prop],
) -> tuple[list[tuple[str, dict[str, Any]]], int, int | None]:
    """(the page's (id, values), total matching, the next ``after`` or None)."""
    check(body, props)
    return page_of(body, matching(body, rows, props))


def matching(
    body: Mapping[str, Any],
    rows: list[tuple[str, dict[str, Any], dict[str, set[str]]]],
    props: Mapping[str, Prop],
) -> list[tuple[str, dict[str, Any]]]:
    """Every row the filter groups match, in the sort's order (ties by id)."""
    groups = body.get("filterGroups") or []
    matched = [
        (rid, values)
        for rid, values, assoc in rows
        if not groups
        or any(all(_match(f, values, props, assoc) for f in g.get("filters") or []) for g in groups)
    ]
    sorts = body.get("sorts") or []
    if sorts:
        sort = sorts[0]
        name = sort.get("propertyName") if isinstance(sort, Mapping) else str(sort).lstrip("-")
        descending = (
            str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
            if isinstance(sort, Mapping)
            else str(sort).startswith("-")
        )
        prop = props.get(str(name))

        def order(item: tuple[str, dict[str, Any]]) -> tuple[bool, Any, int]:
            raw = item[1].get(str(name))
            key = _key(prop, raw) if raw not in (None, "") else None
            # Ties (and missing values) fall back to the id, as HubSpot's results do.
            return (key is None, key if key is not None else 0, int(item[0]))

        matched.sort(key=order, reverse=descending)
    else:
        matched.sort(key=lambda item: int(item[0]))
    return matched


def page_of(
    body: Mapping[str, Any], matched: list[tuple[str, dict[str, Any]]]
) -> tuple[list[tuple[str, dict[str, Any]]], int, int | None]:
    """The page ``after``/``limit`` ask for, the total and the next ``after``."""
    limit = int(body.get("limit", 10))
    after = int(body.get("after") or 0)
    page = matched[after : after + limit]
    nxt = after + limit if after + limit < len(matched) else None
    return page, len(matched), nxt
