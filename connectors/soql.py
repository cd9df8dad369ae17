"""SOQL text: the one quoting function for values, and small clause builders.

Every value that reaches a SOQL string goes through :func:`quote` (built on
``simple_salesforce.format.quote_soql_value``); every object or field name goes through
:func:`identifier`, because names cannot be quoted in SOQL and come from the config.
Date-times are written as UTC literals (``2026-11-21T10:00:00Z``); a naive date-time is
refused, since guessing its zone is how incremental pulls silently skip records.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from simple_salesforce.format import SoqlFormatter, quote_soql_value

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")


def datetime_literal(value: datetime) -> str:
    """``value`` as a SOQL date-time literal in UTC, whole seconds (fractions dropped)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"refusing naive datetime {value.isoformat()} in SOQL: give it a time zone"
        )
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def quote(value: Any) -> str:
    """A Python value as a SOQL literal: strings escaped and quoted, lists parenthesised."""
    if isinstance(value, datetime):
        return datetime_literal(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} has no SOQL literal")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no SOQL literal")
        return format(value, "f")
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        if not items:
            raise ValueError("an empty list has no SOQL literal (IN () is a syntax error)")
        return "(" + ",".join(quote(item) for item in items) + ")"
    return quote_soql_value(value)


def identifier(name: str) -> str:
    """``name`` unchanged if it is a valid object/field API name (or a dotted path)."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a Salesforce API name")
    return name


class _Formatter(SoqlFormatter):
    """simple-salesforce's formatter, with plain ``{}`` fields quoted by :func:`quote`."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        if not format_spec:
            return quote(value)
        if format_spec == "literal":
            raise ValueError("':literal' bypasses quoting; build the clause with soql helpers")
        return super().format_field(value, format_spec)


def render(template: str, *args: Any, **kwargs: Any) -> str:
    """``template`` with each ``{}`` field replaced by its quoted value (``:like`` allowed)."""
    return _Formatter().vformat(template, args, kwargs)


def compare(field: str, operator: str, value: Any) -> str:
    """``field <op> value`` for one of ``= != < <= > >=``."""
    if operator not in ("=", "!=", "<", "<=", ">", ">="):
        raise ValueError(f"unsupported SOQL operator {operator!r}")
    return f"{identifier(field)} {operator} {quote(value)}"


def in_(field: str, values: Iterable[Any]) -> str:
    """``field IN (...)``."""
    return f"{identifier(field)} IN {quote(list(values))}"


def and_(*conditions: str | None) -> str | None:
    """Conditions joined with AND, each parenthesised; None when there are none."""
    parts = [c for c in conditions if c]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({c})" for c in parts)


def select(
    sobject: str,
    fields: Sequence[str],
    *,
    where: str | None = None,
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> str:
    """``SELECT fields FROM sobject [WHERE ...] [ORDER BY ...] [LIMIT n]``.

    ``where`` must itself be built from these helpers (or :func:`render`).
    """
    if not fields:
        raise ValueError("a SELECT needs at least one field")
    text = f"SELECT {', '.join(identifier(f) for f in _unique(fields))} FROM {identifier(sobject)}"
    if where:
        text += f" WHERE {where}"
    if order_by:
        text += " ORDER BY " + ", ".join(_order_item(item) for item in order_by)
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    return text


def _order_item(item: str) -> str:
    name, _, direction = item.partition(" ")
    direction = direction.strip().upper()
    if direction not in ("", "ASC", "DESC"):
        raise ValueError(f"unsupported ORDER BY direction in {item!r}")
    return f"{identifier(name)} {direction}".rstrip()


def _unique(names: Sequence[str]) -> list[str]:
    """Names in order without case-insensitive repeats (SOQL rejects duplicate fields)."""
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())
