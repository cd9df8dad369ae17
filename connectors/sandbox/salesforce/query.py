"""SOQL bound to the schema: type checks with Salesforce's messages, then filter, sort, page.

:func:`compile_soql` turns a statement into a :class:`CompiledQuery` of plain closures over
record dicts; the backend feeds it candidate records (all of an object, or a slice of its
``SystemModstamp`` index when the query allows) and renders the rows it returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.sandbox.salesforce.metadata import (
    ID_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldDef,
    SObjectDef,
    normalize_id,
    sobject,
)
from connectors.sandbox.salesforce.render import RowPlan, render_row
from connectors.sandbox.salesforce.soql import (
    BoolOp,
    Compare,
    Condition,
    Count,
    InList,
    Like,
    Literal,
    Not,
    Path,
    Query,
    SoqlError,
    decode_string,
    located,
    parse,
    string_value,
)

Record = dict[str, Any]
Lookup = Callable[[str], Record | None]
Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]

_TYPE_WORDS = {"datetime": "dateTime", "date": "date", "boolean": "boolean", "int": "integer"}


@dataclass
class CompiledQuery:
    """A checked query: what to select, filter, sort and how many rows to keep."""

    query: Query
    sobject: SObjectDef
    lookup: Lookup
    predicate: Predicate | None = None
    sort_keys: list[tuple[Getter, bool, bool]] = field(default_factory=list)
    count: str | None = None  # "count" for COUNT(), "aggregate" for COUNT(field)
    count_getter: Getter | None = None
    modstamp_bounds: tuple[datetime | None, datetime | None] | None = None
    natural_order: bool = False
    id_filter: set[str] | None = None
    plan: RowPlan | None = None

    @property
    def limit(self) -> int | None:
        """LIMIT, if any."""
        return self.query.limit

    def execute(self, candidates: Iterable[Record], in_index_order: bool = False) -> list[Record]:
        """The matching records, sorted, after OFFSET and LIMIT."""
        presorted = not self.sort_keys or (self.natural_order and in_index_order)
        stop = None
        if presorted and self.query.limit is not None and self.count is None:
            stop = self.query.offset + self.query.limit
        rows: list[Record] = []
        predicate = self.predicate
        for record in candidates:
            if predicate is None or predicate(record):
                rows.append(record)
                if stop is not None and len(rows) >= stop:
                    break
        if not presorted:
            for getter, descending, nulls_first in reversed(self.sort_keys):
                rows.sort(
                    key=_sort_key(getter, 0 if nulls_first != descending else 2), reverse=descending
                )
        end = None if self.query.limit is None else self.query.offset + self.query.limit
        return rows[self.query.offset : end]

    def aggregate(self, rows: list[Record]) -> int:
        """COUNT(field): rows whose field is not null."""
        getter = self.count_getter
        return sum(1 for r in rows if getter is None or getter(r) is not None)

    def columns(self) -> list[tuple[str, ...]]:
        """The selected paths as rendered rows key them (``("Owner", "Name")``), in SELECT
        order: the columns of a Bulk API 2.0 CSV result."""
        binder = _Binder(self.query, self.lookup)
        out: list[tuple[str, ...]] = []
        for item in self.query.items:
            if isinstance(item, Path):
                hops, fdef = binder.resolve(self.sobject, item)
                out.append((*(ref.relationship_name or ref.name for ref, _ in hops), fdef.name))
        return out

    def render(self, record: Record, version: str) -> dict[str, Any]:
        """One row of a query response, with nested parent objects."""
        assert self.plan is not None
        return render_row(self.plan, record, version, self.lookup)


class _Binder:
    """Resolves names and literals of one query against the schema."""

    def __init__(self, query: Query, lookup: Lookup) -> None:
        self.query = query
        self.lookup = lookup

    def fail(self, code: str, line: int, column: int, detail: str) -> SoqlError:
        return SoqlError(code, located(self.query.text, line, column, detail))

    def resolve(
        self, obj: SObjectDef, path: Path
    ) -> tuple[list[tuple[FieldDef, SObjectDef]], FieldDef]:
        names = list(path.names)
        if (
            len(names) > 1
            and names[0].lower() == obj.name.lower()
            and names[0].lower() not in obj.by_relationship
        ):
            names = names[1:]
        hops: list[tuple[FieldDef, SObjectDef]] = []
        current = obj
        for name in names[:-1]:
            ref = current.by_relationship.get(name.lower())
            target = sobject(ref.reference_to[0]) if ref and len(ref.reference_to) == 1 else None
            if ref is None or target is None:
                raise self.fail(
                    "INVALID_FIELD",
                    path.line,
                    path.column,
                    f"Didn't understand relationship '{name}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe "
                    "call for the appropriate names.",
                )
            hops.append((ref, target))
            current = target
        fdef = current.field(names[-1])
        if fdef is None:
            raise self.fail(
                "INVALID_FIELD",
                path.line,
                path.column,
                f"No such column '{names[-1]}' on entity '{current.name}'. If you are attempting "
                "to use a custom field, be sure to append the '__c' after the custom field name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
            )
        return hops, fdef

    def getter(self, obj: SObjectDef, path: Path) -> tuple[FieldDef, Getter]:
        hops, fdef = self.resolve(obj, path)
        name = fdef.name
        if not hops:
            return fdef, lambda r: r.get(name)
        refs = [ref.name for ref, _ in hops]
        lookup = self.lookup

        def get(record: Record) -> Any:
            current: Record | None = record
            for ref in refs:
                parent_id = current.get(ref) if current is not None else None
                current = lookup(parent_id) if parent_id else None
                if current is None:
                    return None
            return current.get(name) if current is not None else None

        return fdef, get

    def coerce(self, fdef: FieldDef, lit: Literal) -> Any:
        """A literal as the comparable form of ``fdef``'s values; None for null."""
        kind = fdef.type
        if lit.kind == "null":
            return None
        if kind in TEXT_TYPES or kind in ID_TYPES:
            if lit.kind != "string":
                raise self.fail(
                    "INVALID_FIELD",
                    lit.line,
                    lit.column,
                    f"value of filter criterion for field '{fdef.name}' must be of "
                    "type string and should be enclosed in quotes",
                )
            text = self.text(lit)
            if kind in ID_TYPES:
                normalized = normalize_id(text)
                if normalized is None:
                    raise self.fail(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        lit.line,
                        lit.column,
                        f"invalid ID field: {text}",
                    )
                return normalized
            return text.lower()
        wanted = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(
            kind, "number" if kind in NUMBER_TYPES else None
        )
        if wanted is None or lit.kind != wanted:
            word = _TYPE_WORDS.get(kind, "double")
            raise self.fail(
                "INVALID_FIELD",
                lit.line,
                lit.column,
                f"value of filter criterion for field '{fdef.name}' must be of type "
                f"{word} and should not be enclosed in quotes",
            )
        return lit.value

    def text(self, lit: Literal) -> str:
        try:
            return string_value(lit.raw)
        except ValueError as exc:
            raise self.fail("MALFORMED_QUERY", lit.line, lit.column, str(exc)) from None

    def filterable(self, fdef: FieldDef, path: Path, verb: str = "filtered") -> None:
        if not fdef.filterable:
            raise self.fail(
                "INVALID_FIELD",
                path.line,
                path.column,
                f"field '{fdef.name}' can not be {verb} in a query call",
            )

    def condition(self, obj: SObjectDef, cond: Condition) -> Predicate:
        if isinstance(cond, BoolOp):
            parts = [self.condition(obj, item) for item in cond.items]
            if cond.op == "and":
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        if isinstance(cond, Not):
            inner = self.condition(obj, cond.item)
            return lambda r: not inner(r)
        fdef, get = self.getter(obj, cond.path)
        self.filterable(fdef, cond.path)
        norm = _normalizer(fdef)
        if isinstance(cond, Like):
            return self.like(fdef, get, cond)
        if isinstance(cond, InList):
            wanted = [self.coerce(fdef, lit) for lit in cond.values]
            with_null = None in wanted
            values = {v for v in wanted if v is not None}

            def member(record: Record) -> bool:
                value = get(record)
                return with_null if value is None else norm(value) in values

            if cond.negate:
                return lambda r: not member(r)
            return member
        return self.compare(fdef, get, norm, cond)

    def compare(
        self, fdef: FieldDef, get: Getter, norm: Callable[[Any], Any], cond: Compare
    ) -> Predicate:
        target = self.coerce(fdef, cond.value)
        op = cond.op
        if (target is None or fdef.type == "boolean") and op not in ("=", "!="):
            raise self.fail(
                "INVALID_QUERY_FILTER_OPERATOR",
                cond.value.line,
                cond.value.column,
                f"invalid operator on {fdef.type} field: {fdef.name}"
                if target is not None
                else "invalid operator for null",
            )
        if target is None:
            return (lambda r: get(r) is None) if op == "=" else (lambda r: get(r) is not None)
        if op == "=":
            return lambda r: (v := get(r)) is not None and norm(v) == target
        if op == "!=":
            return lambda r: (v := get(r)) is None or norm(v) != target
        ops: dict[str, Callable[[Any], bool]] = {
            "<": lambda v: bool(v < target),
            "<=": lambda v: bool(v <= target),
            ">": lambda v: bool(v > target),
            ">=": lambda v: bool(v >= target),
        }
        test = ops[op]
        return lambda r: (v := get(r)) is not None and test(norm(v))

    def like(self, fdef: FieldDef, get: Getter, cond: Like) -> Predicate:
        lit = cond.value
        if fdef.type not in TEXT_TYPES:
            raise self.fail(
                "INVALID_QUERY_FILTER_OPERATOR",
                cond.path.line,
                cond.path.column,
                f"invalid operator on {fdef.type} field: {fdef.name}",
            )
        if lit.kind != "string":
            raise self.fail(
                "INVALID_FIELD",
                lit.line,
                lit.column,
                f"value of filter criterion for field '{fdef.name}' must be of type "
                "string and should be enclosed in quotes",
            )
        pattern = ""
        for char, escaped in decode_string(lit.raw, like=True):
            if not escaped and char == "%":
                pattern += ".*"
            elif not escaped and char == "_":
                pattern += "."
            else:
                pattern += re.escape(char)
        regex = re.compile(pattern, re.DOTALL | re.IGNORECASE)
        return lambda r: (v := get(r)) is not None and regex.fullmatch(v) is not None


def _sort_key(getter: Getter, null_rank: int) -> Callable[[Record], tuple[int, Any]]:
    """Nulls rank apart from values, so ``reverse`` keeps NULLS FIRST/LAST right."""

    def key(record: Record) -> tuple[int, Any]:
        value = getter(record)
        return (null_rank, 0) if value is None else (1, value)

    return key


def _normalizer(fdef: FieldDef) -> Callable[[Any], Any]:
    if fdef.type in TEXT_TYPES:
        return str.lower
    return lambda v: v


def _sort_normalizer(fdef: FieldDef) -> Callable[[Any], Any]:
    # Salesforce sorts text by its upper-case form (case-insensitive).
    return str.upper if fdef.type in TEXT_TYPES else (lambda v: v)


def compile_soql(text: str, lookup: Lookup) -> CompiledQuery:
    """Parse and check ``text``; raises :class:`SoqlError` with Salesforce's code and message."""
    query = parse(text)
    obj = sobject(query.sobject)
    if obj is None:
        raise SoqlError(
            "INVALID_TYPE",
            located(
                text,
                query.sobject_line,
                query.sobject_column,
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            ),
        )
    binder = _Binder(query, lookup)
    compiled = CompiledQuery(query, obj, lookup)
    counts = [item for item in query.items if isinstance(item, Count)]
    if counts:
        _bind_count(binder, compiled, counts)
    else:
        compiled.plan = _bind_fields(binder, obj, [i for i in query.items if isinstance(i, Path)])
    if query.where is not None:
        compiled.predicate = binder.condition(obj, query.where)
        _plan_index(binder, compiled, query.where)
    for item in query.order_by:
        fdef, get = binder.getter(obj, item.path)
        binder.filterable(fdef, item.path, "sorted")
        compiled.sort_keys.append(
            (_sorted_by(get, _sort_normalizer(fdef)), item.descending, item.nulls_first)
        )
    names = [(i.path.text.lower(), i.descending) for i in query.order_by]
    compiled.natural_order = names in (
        [],
        [("systemmodstamp", False)],
        [("systemmodstamp", False), ("id", False)],
    )
    return compiled


def _sorted_by(get: Getter, norm: Callable[[Any], Any]) -> Getter:
    return lambda record: None if (value := get(record)) is None else norm(value)


def _bind_count(binder: _Binder, compiled: CompiledQuery, counts: list[Count]) -> None:
    query = binder.query
    first = counts[0]
    if len(query.items) > 1:
        other = next(i for i in query.items if i is not first)
        if first.path is None:
            detail = "COUNT() must be the only element in the SELECT list."
        elif isinstance(other, Path):
            detail = f"Field must be grouped or aggregated: {other.text}"
        else:
            detail = "Only one aggregate function is supported by the sandbox."
        raise binder.fail("MALFORMED_QUERY", other.line, other.column, detail)
    if query.order_by:
        item = query.order_by[0]
        raise binder.fail(
            "MALFORMED_QUERY",
            item.path.line,
            item.path.column,
            "ORDER BY is not supported with COUNT() in the sandbox",
        )
    if first.path is None:
        compiled.count = "count"
    else:
        _, compiled.count_getter = binder.getter(compiled.sobject, first.path)
        compiled.count = "aggregate"


def _bind_fields(binder: _Binder, obj: SObjectDef, paths: list[Path]) -> RowPlan:
    root = RowPlan(obj)
    seen: set[tuple[str, ...]] = set()
    for path in paths:
        hops, fdef = binder.resolve(obj, path)
        key = (*(ref.name.lower() for ref, _ in hops), fdef.name.lower())
        if key in seen:
            raise binder.fail(
                "MALFORMED_QUERY", path.line, path.column, f"duplicate field selected: {path.text}"
            )
        seen.add(key)
        node = root
        for ref, target in hops:
            rel = ref.relationship_name or ref.name
            if rel not in node.children:
                node.children[rel] = (ref.name, RowPlan(target))
                node.entries.append(("parent", rel))
            node = node.children[rel][1]
        node.entries.append(("field", fdef))
    return root


def _plan_index(binder: _Binder, compiled: CompiledQuery, where: Condition) -> None:
    """Note top-level ``SystemModstamp`` bounds and ``Id`` filters the backend can use.

    The bounds only narrow the candidates (inclusive); the predicate still decides.
    """
    conjuncts = where.items if isinstance(where, BoolOp) and where.op == "and" else (where,)
    low: datetime | None = None
    high: datetime | None = None
    id_field = compiled.sobject.by_lower["id"]
    for cond in conjuncts:
        if not isinstance(cond, (Compare, InList)) or len(cond.path.names) != 1:
            continue
        name = cond.path.names[0].lower()
        if name == "id":
            if isinstance(cond, Compare) and cond.op == "=":
                values = {binder.coerce(id_field, cond.value)}
            elif isinstance(cond, InList) and not cond.negate:
                values = {binder.coerce(id_field, v) for v in cond.values}
            else:
                continue
            ids = {v for v in values if isinstance(v, str)}
            compiled.id_filter = ids if compiled.id_filter is None else compiled.id_filter & ids
        elif (
            name == "systemmodstamp" and isinstance(cond, Compare) and cond.value.kind == "datetime"
        ):
            value = cond.value.value
            if cond.op in (">", ">=", "=") and (low is None or value > low):
                low = value
            if cond.op in ("<", "<=", "=") and (high is None or value < high):
                high = value
    if low is not None or high is not None:
        compiled.modstamp_bounds = (low, high)
