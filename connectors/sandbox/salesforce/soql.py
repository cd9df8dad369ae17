"""The SOQL subset the sandbox answers: a lark grammar, a syntax tree, and vendor-shaped errors.

Supported: ``SELECT`` fields (with parent relationship paths such as ``Owner.Name``) or
``COUNT()``/``COUNT(field)``; ``FROM`` one object; ``WHERE`` with ``= != <> < <= > >=``,
``IN``, ``NOT IN``, ``LIKE``, ``AND``/``OR``/``NOT`` and parentheses (mixing ``AND`` and
``OR`` needs parentheses, as in Salesforce); string, number, boolean, ``null``, date and
date-time literals; ``ORDER BY ... [ASC|DESC] [NULLS FIRST|LAST]``; ``LIMIT``; ``OFFSET``.
Anything else (sub-queries, ``GROUP BY``, date literals such as ``TODAY``, aliases, ...)
is refused with ``MALFORMED_QUERY``: the sandbox never answers a query it only half reads.
Binding names to the schema and evaluating is in ``query.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

_KEYWORDS = (
    "SELECT",
    "COUNT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "TRUE",
    "FALSE",
    "NULL",
)

_GRAMMAR = r"""
start: select_clause from_clause where_clause? order_clause? limit_clause? offset_clause?

select_clause: SELECT select_item ("," select_item)*
select_item: field_path
           | COUNT "(" field_path? ")"         -> count
field_path: NAME ("." NAME)*
from_clause: FROM NAME
where_clause: WHERE condition

condition: simple                        -> single
         | simple (AND simple)+          -> and_
         | simple (OR simple)+           -> or_
         | NOT simple                    -> not_
simple: "(" condition ")"                -> group
      | field_path OP value              -> compare
      | field_path LIKE value            -> like
      | field_path IN "(" value ("," value)* ")"       -> in_
      | field_path NOT IN "(" value ("," value)* ")"   -> not_in
value: STRING | NUMBER | DATETIME | DATE | TRUE | FALSE | NULL

order_clause: ORDER BY order_item ("," order_item)*
order_item: field_path direction? nulls?
direction: ASC | DESC
nulls: NULLS (FIRST | LAST)
limit_clause: LIMIT NUMBER
offset_clause: OFFSET NUMBER

OP: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
NAME: /[A-Za-z][A-Za-z0-9_]*/
STRING: /'(?:[^'\\]|\\.)*'/s
DATETIME.3: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})/
DATE.2: /\d{4}-\d{2}-\d{2}/
NUMBER: /[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/
%import common.WS
%ignore WS
""" + "\n".join(f"{kw}.2: /{kw.lower()}\\b/i" for kw in _KEYWORDS)


class SoqlError(Exception):
    """A query Salesforce would refuse: its errorCode and its (multi-line) message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def located(text: str, line: int, column: int, detail: str) -> str:
    """Salesforce's message layout: the query line, a caret, the position, the reason."""
    lines = text.splitlines() or [""]
    source = lines[min(max(line, 1), len(lines)) - 1]
    caret = " " * max(column - 1, 0) + "^"
    return f"\n{source}\n{caret}\nERROR at Row:{line}:Column:{column}\n{detail}"


# -- syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Path:
    """A field reference such as ``Name`` or ``Account.Owner.Name``."""

    names: tuple[str, ...]
    line: int
    column: int

    @property
    def text(self) -> str:
        """The path as written."""
        return ".".join(self.names)


@dataclass(frozen=True, slots=True)
class Count:
    """``COUNT()`` (path None) or ``COUNT(field)``."""

    path: Path | None
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Literal:
    """A value in WHERE; ``raw`` is the string literal's text between its quotes."""

    kind: str  # string, number, boolean, null, date, datetime
    value: Any
    raw: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Compare:
    """``path op value``; op is one of = != < <= > >= (``<>`` becomes ``!=``)."""

    path: Path
    op: str
    value: Literal


@dataclass(frozen=True, slots=True)
class Like:
    """``path LIKE 'pattern'``."""

    path: Path
    value: Literal


@dataclass(frozen=True, slots=True)
class InList:
    """``path [NOT] IN (values)``."""

    path: Path
    values: tuple[Literal, ...]
    negate: bool


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``AND`` or ``OR`` over two or more conditions."""

    op: str
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT condition``."""

    item: Condition


Condition = Compare | Like | InList | BoolOp | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One ORDER BY key."""

    path: Path
    descending: bool
    nulls_first: bool


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed SOQL statement (names not yet checked against the schema)."""

    text: str
    items: tuple[Path | Count, ...]
    sobject: str
    sobject_line: int
    sobject_column: int
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int


# -- literals -------------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def decode_string(raw: str, like: bool = False) -> list[tuple[str, bool]]:
    """Decode a quoted literal's body into (character, escaped) pairs.

    ``\\%`` and ``\\_`` are accepted only in a LIKE pattern, where they stand for a
    literal ``%`` or ``_``; any other unknown escape is a syntax error, as in Salesforce.
    """
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char != "\\":
            out.append((char, False))
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if nxt in _ESCAPES:
            out.append((_ESCAPES[nxt], True))
            i += 2
        elif nxt in ("%", "_") and like:
            out.append((nxt, True))
            i += 2
        elif nxt == "u" and len(raw) >= i + 6 and _is_hex(raw[i + 2 : i + 6]):
            out.append((chr(int(raw[i + 2 : i + 6], 16)), True))
            i += 6
        else:
            raise ValueError(
                f"Invalid string literal '{raw}'. Illegal character sequence "
                f"'\\{nxt}' in string literal."
            )
    return out


def string_value(raw: str) -> str:
    """A non-LIKE string literal's value."""
    return "".join(char for char, _ in decode_string(raw))


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def parse_datetime_literal(text: str) -> datetime:
    """``2026-11-21T10:00:00Z``, ``...00.000+0000`` or ``...00+08:00`` as an aware UTC value.

    Salesforce takes any number of fractional digits (tap-salesforce sends six, singer's
    ``%f``) though it stores milliseconds; digits past microseconds are dropped here.
    """
    body = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    if body[-5] in "+-" and body[-3] != ":":
        body = body[:-2] + ":" + body[-2:]
    return datetime.fromisoformat(body).astimezone(UTC)


# -- parser ---------------------------------------------------------------------------------


@cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=False)


@v_args(inline=True)
class _ToAst(Transformer[Token, Any]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def start(self, *clauses: Any) -> Query:
        parts: dict[str, Any] = {}
        for clause in clauses:
            parts[clause[0]] = clause[1]
        name_token: Token = parts["from"]
        return Query(
            text=self.text,
            items=tuple(parts["select"]),
            sobject=str(name_token),
            sobject_line=name_token.line or 1,
            sobject_column=name_token.column or 1,
            where=parts.get("where"),
            order_by=tuple(parts.get("order", ())),
            limit=parts.get("limit"),
            offset=parts.get("offset", 0),
        )

    def select_clause(self, _kw: Token, *items: Any) -> tuple[str, list[Any]]:
        return ("select", list(items))

    def select_item(self, path: Path) -> Path:
        return path

    def count(self, kw: Token, path: Path | None = None) -> Count:
        return Count(path, kw.line or 1, kw.column or 1)

    def field_path(self, *names: Token) -> Path:
        return Path(tuple(str(n) for n in names), names[0].line or 1, names[0].column or 1)

    def from_clause(self, _kw: Token, name: Token) -> tuple[str, Token]:
        return ("from", name)

    def where_clause(self, _kw: Token, condition: Condition) -> tuple[str, Condition]:
        return ("where", condition)

    def single(self, item: Condition) -> Condition:
        return item

    def and_(self, *parts: Any) -> BoolOp:
        return BoolOp("and", tuple(p for p in parts if not isinstance(p, Token)))

    def or_(self, *parts: Any) -> BoolOp:
        return BoolOp("or", tuple(p for p in parts if not isinstance(p, Token)))

    def not_(self, _kw: Token, item: Condition) -> Not:
        return Not(item)

    def group(self, item: Condition) -> Condition:
        return item

    def compare(self, path: Path, op: Token, value: Literal) -> Compare:
        return Compare(path, "!=" if str(op) == "<>" else str(op), value)

    def like(self, path: Path, _kw: Token, value: Literal) -> Like:
        return Like(path, value)

    def in_(self, path: Path, _kw: Token, *values: Literal) -> InList:
        return InList(path, values, negate=False)

    def not_in(self, path: Path, _not: Token, _in: Token, *values: Literal) -> InList:
        return InList(path, values, negate=True)

    def value(self, token: Token) -> Literal:
        kind = token.type
        text = str(token)
        line, column = token.line or 1, token.column or 1
        if kind == "STRING":
            raw = text[1:-1]
            try:
                decode_string(raw, like=True)
            except ValueError as exc:
                raise SoqlError(
                    "MALFORMED_QUERY", located(self.text, line, column, str(exc))
                ) from None
            return Literal("string", None, raw, line, column)
        if kind == "NUMBER":
            return Literal("number", float(Decimal(text)), text, line, column)
        if kind in ("TRUE", "FALSE"):
            return Literal("boolean", kind == "TRUE", text, line, column)
        if kind == "NULL":
            return Literal("null", None, text, line, column)
        try:
            if kind == "DATE":
                return Literal("date", date.fromisoformat(text), text, line, column)
            return Literal("datetime", parse_datetime_literal(text), text, line, column)
        except ValueError:
            raise SoqlError(
                "MALFORMED_QUERY",
                located(
                    self.text,
                    line,
                    column,
                    f"line {line}:{column - 1} no viable alternative at character '{text}'",
                ),
            ) from None

    def order_clause(self, _order: Token, _by: Token, *items: OrderItem) -> tuple[str, Any]:
        return ("order", list(items))

    def order_item(self, path: Path, *mods: tuple[str, str]) -> OrderItem:
        options = dict(mods)
        return OrderItem(
            path,
            descending=options.get("direction") == "DESC",
            # Salesforce: "By default, null values are sorted first."
            nulls_first=options.get("nulls", "FIRST") == "FIRST",
        )

    def direction(self, token: Token) -> tuple[str, str]:
        return ("direction", token.type)

    def nulls(self, _kw: Token, which: Token) -> tuple[str, str]:
        return ("nulls", which.type)

    def limit_clause(self, kw: Token, number: Token) -> tuple[str, int]:
        return ("limit", self._count(number))

    def offset_clause(self, kw: Token, number: Token) -> tuple[str, int]:
        value = self._count(number)
        if value > 2000:
            raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        return ("offset", value)

    def _count(self, token: Token) -> int:
        try:
            number = Decimal(str(token))
        except InvalidOperation:  # pragma: no cover - the grammar only lets numbers through
            number = Decimal(-1)
        if number < 0 or number != number.to_integral_value() or "." in str(token):
            raise SoqlError(
                "MALFORMED_QUERY",
                located(
                    self.text, token.line or 1, token.column or 1, f"unexpected token: '{token}'"
                ),
            )
        return int(number)


def parse(text: str) -> Query:
    """Parse one SOQL statement; raises :class:`SoqlError` (``MALFORMED_QUERY``)."""
    try:
        tree = _parser().parse(text)
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            line, column = _end_position(text)
            raise SoqlError(
                "MALFORMED_QUERY", located(text, line, column, "unexpected token: <EOF>")
            ) from None
        raise SoqlError(
            "MALFORMED_QUERY", located(text, exc.line, exc.column, f"unexpected token: '{token}'")
        ) from None
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        detail = (
            f"Unterminated string literal starting with {text[pos:][:20]}"
            if char == "'"
            else f"unexpected token: '{char}'"
        )
        raise SoqlError("MALFORMED_QUERY", located(text, exc.line, exc.column, detail)) from None
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        raise SoqlError("MALFORMED_QUERY", located(text, exc.line, exc.column, str(exc))) from None
    try:
        result: Query = _ToAst(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SoqlError):
            raise exc.orig_exc from None
        raise
    return result


def _end_position(text: str) -> tuple[int, int]:
    lines = text.rstrip().splitlines() or [""]
    return len(lines), len(lines[-1]) + 1
