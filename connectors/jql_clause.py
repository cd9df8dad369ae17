"""The user's extra JQL clause, checked before it is put inside the scope's parentheses.

``[jira] jql`` is text from the config that :func:`connectors.jql.scope` writes as
``project in (...) AND (<extra>)``. An unbalanced clause such as
``status != Done) OR (project is not EMPTY`` would close that parenthesis and widen the
search to every project the user can see, and the sync would then write to them. So the
clause is tokenized (strings, parentheses, operators, words) and parsed as one boolean
expression of clauses joined by AND/OR/NOT; anything else is refused with the character
where it goes wrong. Jira still parses the clause itself (field names, functions, values):
this parser only proves the clause is one balanced expression that cannot escape.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

#: Longest clause accepted; a longer one is a mistake, and Jira refuses long URLs anyway.
MAX_CLAUSE_CHARS = 10_000
#: Deepest nesting of parentheses accepted (the parser recurses once per level).
MAX_DEPTH = 32

_OPERATORS = ("!=", "!~", ">=", "<=", "&&", "||", "=", "~", ">", "<", "&", "|", "!")
#: Characters that end an unquoted word.
_BREAKS = frozenset(" \t\r\n\f\v\"'(),=!~<>&|\\")
_AND = frozenset({"and", "&&", "&"})
_OR = frozenset({"or", "||", "|"})


class ClauseError(ValueError):
    """The clause is not one balanced JQL expression; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit: ``kind`` is word, string, op, ``(``, ``)`` or ``,``."""

    kind: str
    text: str
    at: int  # 1-based character position, as Jira counts

    @property
    def lower(self) -> str:
        """The text in lower case (JQL keywords are case-insensitive)."""
        return self.text.lower()


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``; raises ClauseError on an unclosed string or a stray ``\\``."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "\"'":
            end = _string_end(text, i)
            tokens.append(Token("string", text[i : end + 1], i + 1))
            i = end + 1
        elif char in "(),":
            tokens.append(Token(char, char, i + 1))
            i += 1
        elif char == "\\":
            raise ClauseError(
                f"a backslash at character {i + 1} is outside a quoted string; put the value "
                'in quotes ("...") and escape inside them'
            )
        elif op := next((o for o in _OPERATORS if text.startswith(o, i)), None):
            tokens.append(Token("op", op, i + 1))
            i += len(op)
        else:
            start = i
            while i < n and text[i] not in _BREAKS:
                i += 1
            tokens.append(Token("word", text[start:i], start + 1))
    return tokens


def _string_end(text: str, start: int) -> int:
    """Index of the quote closing the string opened at ``start`` (escapes skipped)."""
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == quote:
            return i
        else:
            i += 1
    raise ClauseError(
        f"the string opened with {quote} at character {start + 1} is never closed; "
        f"close it with {quote} (write \\{quote} for a quote inside it)"
    )


def check_clause(text: str) -> None:
    """Raise ClauseError unless ``text`` is one balanced boolean JQL expression without
    ORDER BY (the sync orders its own searches)."""
    if len(text) > MAX_CLAUSE_CHARS:
        raise ClauseError(
            f"is {len(text):,} characters, more than the {MAX_CLAUSE_CHARS:,} allowed; shorten it"
        )
    tokens = tokenize(text)
    if not tokens:
        raise ClauseError("is empty; remove the key or write a clause such as status != Done")
    _check_balance(tokens)
    _check_no_order_by(tokens)
    parser = _Parser(tokens)
    parser.expression()
    if parser.pos < len(tokens):  # balanced, so this is a clause after a complete one
        token = tokens[parser.pos]
        raise ClauseError(
            f"{token.text!r} at character {token.at} follows a complete expression; join "
            "the parts with AND or OR"
        )


def _check_balance(tokens: list[Token]) -> None:
    """Parentheses pair up, none closes more than was opened, nesting stays bounded."""
    opened: list[Token] = []
    for token in tokens:
        if token.kind == "(":
            opened.append(token)
            if len(opened) > MAX_DEPTH:
                raise ClauseError(
                    f"nests parentheses more than {MAX_DEPTH} deep (character {token.at}); "
                    "simplify it"
                )
        elif token.kind == ")":
            if not opened:
                raise ClauseError(
                    f"the ) at character {token.at} closes a ( that was never opened: it "
                    "would end the scope's parentheses and widen the search beyond "
                    "[jira] projects; remove it or add the matching ("
                )
            opened.pop()
    if opened:
        raise ClauseError(f"the ( at character {opened[-1].at} is never closed; add the matching )")


def _check_no_order_by(tokens: list[Token]) -> None:
    for token, after in itertools.pairwise(tokens):
        if token.kind == after.kind == "word" and (token.lower, after.lower) == ("order", "by"):
            raise ClauseError(
                f"has ORDER BY at character {token.at}; remove it: the sync orders its "
                "searches itself and the clause must be a condition only"
            )


class _Parser:
    """Recursive descent over the tokens: expression = term {(AND|OR) term};
    term = NOT term | ( expression ) | clause. A clause is a field and what follows it
    up to the next AND/OR or closing parenthesis; parentheses inside a clause (value
    lists, function arguments) must hold values separated by commas."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expression(self) -> None:
        """One or more terms joined by AND/OR."""
        self.term()
        while (token := self._peek()) is not None and _joins(token):
            self.pos += 1
            if self._peek() is None or self._peek_kind(")"):
                raise ClauseError(
                    f"{token.text.upper()} at character {token.at} has no condition after "
                    "it; add one or remove the operator"
                )
            self.term()

    def _peek_kind(self, kind: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == kind

    def term(self) -> None:
        """NOT term, a parenthesised expression, or a clause."""
        token = self._peek()
        assert token is not None  # callers check there is a token
        while _negates(token):  # a loop, not recursion: NOT NOT ... has no depth bound
            self.pos += 1
            following = self._peek()
            if following is None or following.kind == ")":
                raise ClauseError(f"NOT at character {token.at} has no condition after it")
            token = following
        if token.kind == "(":
            self.pos += 1
            if self._peek_kind(")"):
                raise ClauseError(f"the parentheses at character {token.at} are empty")
            self.expression()
            self.pos += 1  # the matching ")" (balance was checked)
            return
        self.clause()

    def clause(self) -> None:
        """``field operator value...``: a field, then at least one more token."""
        first = self.tokens[self.pos]
        if first.kind not in ("word", "string") or _joins(first):
            raise ClauseError(
                f"expected a condition at character {first.at}, found {first.text!r}; "
                "write e.g. status != Done"
            )
        self.pos += 1
        length = 1
        while (token := self._peek()) is not None and token.kind != ")" and not _joins(token):
            if token.kind == "(":
                self.values()
            else:
                self.pos += 1
            length += 1
        if length < 2:
            raise ClauseError(
                f"{first.text!r} at character {first.at} is not a condition; write e.g. "
                f"{first.text} = value"
            )

    def values(self) -> None:
        """``( v, v, ... )`` after IN, a function name or DURING: values, no AND/OR."""
        opening = self.tokens[self.pos]
        self.pos += 1
        while (token := self._peek()) is not None and token.kind != ")":
            if _joins(token):
                raise ClauseError(
                    f"{token.text.upper()} at character {token.at} is inside the value list "
                    f"opened at character {opening.at}; close the list first"
                )
            if token.kind == "(":
                self.values()
            else:
                self.pos += 1
        self.pos += 1  # the matching ")" (balance was checked)


def _joins(token: Token) -> bool:
    """AND / OR in any of JQL's spellings."""
    if token.kind == "word":
        return token.lower in ("and", "or")
    return token.kind == "op" and (token.text in _AND or token.text in _OR)


def _negates(token: Token) -> bool:
    return (token.kind == "word" and token.lower == "not") or (
        token.kind == "op" and token.text == "!"
    )
