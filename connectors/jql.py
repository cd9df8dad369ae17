"""JQL text built safely: the one quoting function for values, and small clause builders.

Every value that reaches a JQL string goes through :func:`quote`, so a project key, a field
value or a name with quotes, backslashes, reserved words or Chinese text is always one
value and can never change the shape of the query around it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from connectors.jql_clause import check_clause

#: Field references that can be written bare: identifiers and ``cf[10100]``.
_BARE_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*|cf\[\d+\]", re.IGNORECASE)
#: Words JQL reserves; a field reference spelled like one must be quoted.
_RESERVED = frozenset(
    {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc", "was"}
    | {"changed", "from", "to", "on", "during", "before", "after"}
)


def quote(value: str) -> str:
    """A JQL string literal for ``value``: ``"..."`` with ``\\``, ``"`` and control
    characters escaped (``\\\\``, ``\\"``, ``\\uXXXX``); decodes back to ``value`` exactly."""
    out: list[str] = ['"']
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif unicodedata.category(char) == "Cc":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def field_ref(name: str) -> str:
    """A field as a clause names it: bare when it is a plain identifier, else quoted
    (``"Salesforce Account"``)."""
    if _BARE_FIELD.fullmatch(name) and name.lower() not in _RESERVED:
        return name
    return quote(name)


def equals(field: str, value: str) -> str:
    """``field = "value"``."""
    return f"{field_ref(field)} = {quote(value)}"


def in_values(field: str, values: Iterable[str]) -> str:
    """``field in ("a", "b")``; at least one value is required (JQL has no empty list)."""
    quoted = [quote(v) for v in values]
    if not quoted:
        raise ValueError(f"an IN clause on {field!r} needs at least one value")
    return f"{field_ref(field)} in ({', '.join(quoted)})"


def project_in(keys: Iterable[str]) -> str:
    """``project in ("A", "B")``."""
    return in_values("project", keys)


def updated_since(epoch_ms: int) -> str:
    """``updated >= <epoch ms>``: a bare integer is epoch milliseconds in JQL, which no
    user time zone can shift (a zone-less date would be read in the user's zone)."""
    if epoch_ms < 0:
        raise ValueError("epoch milliseconds must be >= 0")
    return f"updated >= {int(epoch_ms)}"


def all_of(*clauses: str | None) -> str:
    """The clauses joined with AND, each in parentheses (empty ones skipped), so an OR
    inside one of them cannot escape it."""
    parts = [c.strip() for c in clauses if c and c.strip()]
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({part})" for part in parts)


def order_by(*terms: str) -> str:
    """`` ORDER BY a ASC, b DESC`` (terms written as ``"key ASC"``)."""
    return " ORDER BY " + ", ".join(terms) if terms else ""


def scope(projects: Iterable[str] = (), extra: str | None = None) -> str:
    """The configured scope: ``project in (...)`` and the extra clause, both bounded.

    The extra clause comes from the user's own config and is kept as written, inside
    parentheses, once :func:`~connectors.jql_clause.check_clause` has proved it one
    balanced expression (ClauseError, a ValueError, otherwise); project keys are values
    and are quoted.
    """
    if extra and extra.strip():
        check_clause(extra)
    keys = list(projects)
    return all_of(project_in(keys) if keys else None, extra)
