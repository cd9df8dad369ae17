"""JQL subset: a lark grammar and the syntax tree it produces.

Only parsing lives here; ``jql_eval.py`` turns a :class:`Query` into a predicate. Errors
carry Jira's wording ("Error in the JQL Query: ... (line 1, character 9)") and surface as
a 400 in Jira's error shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.exceptions import VisitError

#: Characters JQL reserves: an unquoted word may not contain them (Jira asks for quoting).
RESERVED_CHARS = "+.,;?|*/%^$#@[]"
#: Words Jira reserves that we also treat as keywords (they must be quoted as values).
KEYWORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "is",
        "empty",
        "null",
        "order",
        "by",
        "asc",
        "desc",
        "was",
        "changed",
    }
)

# Regex character class body (escaped for a lark /regex/): what ends an unquoted word.
_WORD_EXCLUDED = r"\s\"'(),=!<>~&|\\+.;?*\/%^$#@\[\]"
_WORD = f"[^{_WORD_EXCLUDED}]+"
_KW_END = f"(?![^{_WORD_EXCLUDED}])"

_GRAMMAR = rf"""
start: expr? order?

?expr: and_expr
     | expr _OR and_expr            -> any_of
?and_expr: unary
     | and_expr _AND unary          -> all_of
?unary: _NOT unary                  -> negation
      | "(" expr ")"
      | clause

clause: field OPERATOR value             -> compare
      | field _IS EMPTY                  -> is_empty
      | field _IS _NOT EMPTY             -> is_not_empty
      | field _IN value_list             -> in_list
      | field _NOT _IN value_list        -> not_in_list
      | field _WAS value                 -> was
      | field _WAS _NOT value            -> was
      | field _WAS _IN value_list        -> was
      | field _WAS _NOT _IN value_list   -> was
      | field _CHANGED                   -> was

value_list: "(" value ("," value)* ")"
    | function

?value: STRING       -> quoted
      | WORD         -> word
      | EMPTY        -> empty
      | function

function: WORD "(" [value ("," value)*] ")"

field: STRING        -> quoted_field
     | WORD          -> word_field
     | CF            -> cf_field

order: _ORDER _BY sort ("," sort)*
sort: field DIRECTION?

OPERATOR: "!=" | ">=" | "<=" | "!~" | "=" | ">" | "<" | "~"
_AND.2: /and{_KW_END}/i | "&&" | "&"
_OR.2: /or{_KW_END}/i | "||" | "|"
_NOT.2: /not{_KW_END}/i | /!(?![=~])/
_IN.2: /in{_KW_END}/i
_IS.2: /is{_KW_END}/i
_WAS.2: /was{_KW_END}/i
_CHANGED.2: /changed{_KW_END}/i
EMPTY.2: /(empty|null){_KW_END}/i
_ORDER.2: /order{_KW_END}/i
_BY.2: /by{_KW_END}/i
DIRECTION.2: /(asc|desc){_KW_END}/i
CF.3: /cf\[\d+\]/i
STRING: /"(?:[^"\\]|\\.)*"/s | /'(?:[^'\\]|\\.)*'/s
WORD: /{_WORD}/

%import common.WS
%ignore WS
"""


class JqlError(ValueError):
    """A query the sandbox rejects, with the message Jira would put in ``errorMessages``."""


# -- syntax tree ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    """A value: ``quoted`` tells "Done" from Done (unquoted words may be keywords)."""

    text: str
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class EmptyValue:
    """The EMPTY / NULL keyword."""


@dataclass(frozen=True, slots=True)
class Function:
    """A JQL function call such as ``currentUser()``."""

    name: str
    args: tuple[Value, ...]


Value = Literal | EmptyValue | Function


@dataclass(frozen=True, slots=True)
class Field:
    """A field reference as written: ``status``, ``"Salesforce Account"``, ``cf[10100]``."""

    name: str


@dataclass(frozen=True, slots=True)
class Clause:
    """``field op values``; op is one of = != > >= < <= ~ !~ in, not in, is, is not, was."""

    field: Field
    op: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Clause | And | Or | Not


@dataclass(frozen=True, slots=True)
class Sort:
    field: Field
    descending: bool


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: an optional restriction and the ORDER BY terms."""

    where: Node | None
    order: tuple[Sort, ...]


# -- parsing ----------------------------------------------------------------------------------

_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", " ": " "}


def unescape(raw: str, token: Token) -> str:
    """Decode a quoted JQL string (quotes included in ``raw``)."""
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            column = (token.column or 1) + 1 + i
            raise JqlError(
                f"Error in the JQL Query: '\\{nxt}' is an illegal JQL escape sequence. The valid "
                "escape sequences are \\', \\\", \\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX. "
                f"(line {token.line}, character {column})"
            )
    return "".join(out)


class _ToAst(Transformer[Token, Query]):
    """Lark tree -> frozen dataclasses."""

    def start(self, items: list[object]) -> Query:
        where = next((i for i in items if isinstance(i, Clause | And | Or | Not)), None)
        order = next((i for i in items if isinstance(i, tuple)), ())
        return Query(where, order)

    def any_of(self, items: list[Node]) -> Node:
        left, right = items
        return Or((*left.items, right) if isinstance(left, Or) else (left, right))

    def all_of(self, items: list[Node]) -> Node:
        left, right = items
        return And((*left.items, right) if isinstance(left, And) else (left, right))

    def negation(self, items: list[Node]) -> Node:
        return Not(items[0])

    def compare(self, items: list[object]) -> Clause:
        field, op, value = items
        assert isinstance(field, Field) and isinstance(value, Literal | EmptyValue | Function)
        return Clause(field, str(op), (value,))

    def is_empty(self, items: list[object]) -> Clause:
        assert isinstance(items[0], Field)
        return Clause(items[0], "is", (EmptyValue(),))

    def is_not_empty(self, items: list[object]) -> Clause:
        assert isinstance(items[0], Field)
        return Clause(items[0], "is not", (EmptyValue(),))

    def in_list(self, items: list[object]) -> Clause:
        field, values = items
        assert isinstance(field, Field) and isinstance(values, tuple)
        return Clause(field, "in", values)

    def not_in_list(self, items: list[object]) -> Clause:
        field, values = items
        assert isinstance(field, Field) and isinstance(values, tuple)
        return Clause(field, "not in", values)

    def was(self, items: list[object]) -> Clause:
        assert isinstance(items[0], Field)
        return Clause(items[0], "was", ())

    def value_list(self, items: list[Value]) -> tuple[Value, ...]:
        return tuple(items)

    def quoted(self, items: list[Token]) -> Literal:
        return Literal(unescape(str(items[0]), items[0]), quoted=True)

    def word(self, items: list[Token]) -> Literal:
        return Literal(str(items[0]))

    def empty(self, items: list[Token]) -> EmptyValue:
        return EmptyValue()

    def function(self, items: list[object]) -> Function:
        name = str(items[0])
        args = tuple(i for i in items[1:] if isinstance(i, Literal | EmptyValue | Function))
        return Function(name, args)

    def quoted_field(self, items: list[Token]) -> Field:
        return Field(unescape(str(items[0]), items[0]))

    def word_field(self, items: list[Token]) -> Field:
        return Field(str(items[0]))

    def cf_field(self, items: list[Token]) -> Field:
        return Field(str(items[0]).lower())

    def order(self, items: list[Sort]) -> tuple[Sort, ...]:
        return tuple(items)

    def sort(self, items: list[object]) -> Sort:
        field = items[0]
        assert isinstance(field, Field)
        direction = str(items[1]).lower() if len(items) > 1 else "asc"
        return Sort(field, direction == "desc")


_OPERATORS_HINT = (
    "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', "
    "'IS' and 'IS NOT'."
)


def _describe(expected: set[str]) -> tuple[str, str]:
    """What the parser wanted, in Jira's words, plus a hint."""
    if "OPERATOR" in expected:
        return "operator", _OPERATORS_HINT
    if "CF" in expected:
        return "a field name", ""
    if "STRING" in expected:
        return "either a value, list or function", ""
    if "_AND" in expected or "_OR" in expected:
        if "RPAR" in expected:
            return "either 'OR', 'AND' or ')'", ""
        return "either 'OR' or 'AND'", ""
    if "DIRECTION" in expected:
        return "either 'ASC' or 'DESC'", ""
    if "RPAR" in expected:
        return "')'", ""
    return "the end of the query", ""


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', re.S)


def _open_parentheses(text: str) -> int:
    bare = _QUOTED.sub("", text)
    return bare.count("(") - bare.count(")")


def _syntax_error(exc: UnexpectedInput, jql: str) -> JqlError:
    where = f"(line {exc.line}, character {exc.column})"
    if isinstance(exc, UnexpectedCharacters):
        char = exc.char
        if char in RESERVED_CHARS:
            return JqlError(
                f"Error in the JQL Query: The character '{char}' is a reserved JQL character. "
                f"You must enclose it in a string or use the escape '\\u{ord(char):04x}' "
                f"instead. {where}"
            )
        return JqlError(f"Error in the JQL Query: Unexpected character '{char}'. {where}")
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        expected = set(exc.expected)
        end = len(jql) if token.type == "$END" else (token.start_pos or 0)
        if _open_parentheses(jql[:end]) <= 0:
            expected.discard("RPAR")  # LALR merges states: only offer ')' when one is open
        wanted, hint = _describe(expected)
        if token.type == "$END":
            return JqlError(f"Error in the JQL Query: Expecting {wanted} but got end of query.")
        message = f"Error in the JQL Query: Expecting {wanted} but got '{token}'."
        if str(token).lower() in KEYWORDS and wanted.startswith("either a value"):
            hint = f"You must surround '{token}' in quotation marks to use it as a value."
        return JqlError(" ".join(part for part in (message, hint, where) if part))
    return JqlError(f"Error in the JQL Query: The query could not be parsed. {where}")


@lru_cache(maxsize=256)
def parse(jql: str) -> Query:
    """Parse a JQL string; raises :class:`JqlError` with Jira's wording."""
    if not jql.strip():
        return Query(None, ())
    try:
        tree = _parser().parse(jql)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, jql) from None
    try:
        return _ToAst().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, JqlError):
            raise exc.orig_exc from None
        raise


def quote(value: str) -> str:
    """Quote a value for JQL the safe way (what a client should send)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'
