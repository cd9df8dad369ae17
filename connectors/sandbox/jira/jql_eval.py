"""Compile a parsed JQL query into a predicate over issues, once per query.

Semantics follow Jira where the subset reaches: ``!=`` and ``NOT IN`` never match an
empty field (Jira's behaviour, often a surprise); ``NOT`` is plain negation. The default
order is ``key ASC`` (project key, then issue number): the order issues are scanned in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.jira.jql import (
    And,
    Clause,
    EmptyValue,
    Function,
    JqlError,
    Literal,
    Node,
    Not,
    Query,
)
from connectors.sandbox.jira.jql_fields import (
    FIELDS,
    FUNCTIONS,
    KEY,
    PROJECT,
    Catalog,
    JqlField,
    Predicate,
    is_known_field,
    lookup_field,
)
from connectors.sandbox.jira.jql_text import parse_text_query
from connectors.sandbox.world import JiraIssue

# -- compiling ----------------------------------------------------------------------------

_EMPTY = object()


def _values(clause: Clause, field: JqlField, catalog: Catalog) -> list[Any]:
    out: list[Any] = []
    for value in clause.values:
        if isinstance(value, EmptyValue):
            out.append(_EMPTY)
        elif isinstance(value, Function):
            if value.name.lower() in FUNCTIONS:
                raise JqlError(
                    f"Error in the JQL Query: the sandbox does not support the JQL "
                    f"function '{value.name}()'."
                )
            raise JqlError(f"Unable to find JQL function '{value.name}()'.")
        else:
            assert isinstance(value, Literal)
            out.append(field.resolve(value.text, clause.field.name, catalog))
    return out


def _compile_clause(clause: Clause, catalog: Catalog) -> Predicate:
    field = lookup_field(clause.field.name)
    op = clause.op
    if op == "was":
        raise JqlError(
            "Error in the JQL Query: the sandbox does not support the history "
            "operators WAS and CHANGED."
        )
    if op not in field.ops:
        raise JqlError(
            f"The operator '{op.upper()}' is not supported by the '{clause.field.name}' field."
        )
    values = _values(clause, field, catalog)
    get = field.getter(catalog)
    if op in ("=", "!=") and values[0] is _EMPTY:
        op = "is" if op == "=" else "is not"
    if field.multi:
        return _compile_multi(op, values, get)
    if op == "is":
        return lambda i: get(i) is None
    if op == "is not":
        return lambda i: get(i) is not None
    if _EMPTY in values and op in ("=", "!=", "~", "!~", ">", ">=", "<", "<="):
        raise JqlError(f"The operator '{op}' does not accept EMPTY for '{clause.field.name}'.")
    value = values[0]
    if field.text and op in ("~", "!~"):
        query = parse_text_query(str(value), clause.field.name)
        if op == "~":
            return lambda i: (v := get(i)) is not None and query.matches(v)
        return lambda i: (v := get(i)) is not None and not query.matches(v)
    if op == "=":
        return lambda i: get(i) == value
    if op == "!=":
        return lambda i: (v := get(i)) is not None and v != value
    if op in ("in", "not in"):
        allowed = frozenset(v for v in values if v is not _EMPTY)
        with_empty = _EMPTY in values
        if op == "in":
            return lambda i: (v := get(i)) in allowed or (with_empty and v is None)
        return lambda i: (v := get(i)) is not None and v not in allowed
    if op in ("~", "!~"):
        needle = str(value).lower()
        if op == "~":
            return lambda i: (v := get(i)) is not None and needle in str(v).lower()
        return lambda i: (v := get(i)) is not None and needle not in str(v).lower()
    compare: dict[str, Predicate] = {
        ">": lambda i: (v := get(i)) is not None and v > value,
        ">=": lambda i: (v := get(i)) is not None and v >= value,
        "<": lambda i: (v := get(i)) is not None and v < value,
        "<=": lambda i: (v := get(i)) is not None and v <= value,
    }
    return compare[op]


def _compile_multi(op: str, values: list[Any], get: Callable[[JiraIssue], Any]) -> Predicate:
    allowed = frozenset(v for v in values if v is not _EMPTY)
    with_empty = _EMPTY in values
    if op == "is":
        return lambda i: not get(i)
    if op == "is not":
        return lambda i: bool(get(i))
    if op in ("=", "in"):
        return lambda i: (not allowed.isdisjoint(v := get(i))) or (with_empty and not v)
    return lambda i: bool(v := get(i)) and allowed.isdisjoint(v)


def _compile(node: Node, catalog: Catalog) -> Predicate:
    if isinstance(node, Clause):
        return _compile_clause(node, catalog)
    if isinstance(node, Not):
        inner = _compile(node.item, catalog)
        return lambda i: not inner(i)
    parts = [_compile(item, catalog) for item in node.items]
    combined = parts[0]
    for part in parts[1:]:
        combined = _both(combined, part) if isinstance(node, And) else _either(combined, part)
    return combined


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda i: a(i) and b(i)


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda i: a(i) or b(i)


def _narrowing(node: Node | None, catalog: Catalog, field: JqlField) -> frozenset[str] | None:
    """Values a top-level ``field = x`` / ``field in (...)`` conjunct restricts to."""
    if node is None:
        return None
    conjuncts = node.items if isinstance(node, And) else (node,)
    found: frozenset[str] | None = None
    for item in conjuncts:
        if not isinstance(item, Clause) or item.op not in ("=", "in"):
            continue
        if FIELDS.get(item.field.name.lower()) is not field:
            continue
        if not all(isinstance(v, Literal) for v in item.values):
            continue
        keys = frozenset(str(v) for v in _values(item, field, catalog))
        found = keys if found is None else found & keys
    return found


# -- ordering -----------------------------------------------------------------------------


def key_order(issue: JiraIssue) -> tuple[str, int]:
    """Sort key of ``ORDER BY key``: project key, then the issue number."""
    return issue.project_key, int(issue.key.rsplit("-", 1)[1])


_ORDER: dict[str, Callable[[JiraIssue], Any]] = {
    "key": key_order,
    "issuekey": key_order,
    "id": lambda i: i.id,
    "created": lambda i: i.created,
    "updated": lambda i: i.updated,
}


def _order_getter(name: str) -> Callable[[JiraIssue], Any]:
    getter = _ORDER.get(name.lower())
    if getter is not None:
        return getter
    if not is_known_field(name):
        raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
    raise JqlError(f"Error in the JQL Query: the sandbox does not support ordering by '{name}'.")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A query ready to run: predicate, candidate narrowing and ordering."""

    predicate: Predicate | None  # None: no restriction
    projects: frozenset[str] | None
    keys: frozenset[str] | None
    order: tuple[tuple[Callable[[JiraIssue], Any], bool], ...]

    @property
    def bounded(self) -> bool:
        """Whether the query restricts the search at all (Jira Cloud requires it)."""
        return self.predicate is not None

    def sort(self, issues: list[JiraIssue]) -> None:
        """Order issues already in key order (stable sorts, last term first)."""
        for getter, descending in reversed(self.order):
            issues.sort(key=getter, reverse=descending)


def compile_query(query: Query, catalog: Catalog) -> Compiled:
    """Compile a parsed query; raises :class:`JqlError` for anything outside the subset."""
    predicate = None if query.where is None else _compile(query.where, catalog)
    order = tuple((_order_getter(s.field.name), s.descending) for s in query.order)
    if all(getter is key_order and not descending for getter, descending in order):
        order = ()  # already the scan order
    return Compiled(
        predicate=predicate,
        projects=_narrowing(query.where, catalog, PROJECT),
        keys=_narrowing(query.where, catalog, KEY),
        order=order,
    )
