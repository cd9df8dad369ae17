"""Text search (``comment ~ "..."``) the way Jira's index answers it, closely enough for a
client to rely on: words, not substrings.

Jira indexes text fields with Lucene's English analyser: text is split into words at
punctuation and spaces (``[jira-crm-sync:flag:x]`` is the words ``jira crm sync flag x``),
case is folded, and stop words (``the``, ``at``...) are dropped, from the text and from
the query alike, keeping their places. A query is a list of terms that must all be found
(Jira joins bare terms with AND): a word, a word with a trailing ``*`` (any word starting
so), or a phrase in double quotes (``"\\"jira crm sync flag\\""`` in JQL), whose words
must stand in those places within one comment (``jira, the crm`` is not ``jira crm``; a
stop word of the phrase stands for any word). Lucene's operators (``OR``, ``-``, ``~``,
``^``...) and stemming are not modelled: punctuation in a query only separates words, as
on Jira Cloud.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.sandbox.jira.jql import JqlError

#: Lucene's English stop words (StopAnalyzer.ENGLISH_STOP_WORDS_SET), which Jira drops.
STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with",
))  # fmt: skip
_WORD = re.compile(r"[^\W_]+")
_TERM = re.compile(r'"([^"]*)"|(\S+)')


def words(text: str) -> list[str | None]:
    """The indexed words of a text: split at punctuation, case folded, a stop word's place
    kept as None."""
    return [None if w in STOP_WORDS else w for w in _WORD.findall(text.casefold())]


@dataclass(frozen=True, slots=True)
class _Term:
    words: tuple[str | None, ...]  # one word, or a phrase (None: any word)
    prefix: bool = False  # a word with a trailing ``*``


@dataclass(frozen=True, slots=True)
class TextQuery:
    """A parsed text query: every term must match the field's texts."""

    terms: tuple[_Term, ...]

    def matches(self, texts: Sequence[str]) -> bool:
        """Whether the texts (one field value each: an issue's comments) match."""
        split = [words(text) for text in texts]
        found = {w for each in split for w in each if w is not None}
        for term in self.terms:
            first = term.words[0]
            assert first is not None  # a term starts with a word
            if term.prefix:
                if not any(w.startswith(first) for w in found):
                    return False
            elif len(term.words) == 1:
                if term.words[0] not in found:
                    return False
            elif not any(_has_run(each, term.words) for each in split):
                return False
        return True


def _has_run(haystack: list[str | None], run: tuple[str | None, ...]) -> bool:
    size = len(run)
    first = run[0]
    return any(
        haystack[i] == first
        and all(want is None or want == haystack[i + j] for j, want in enumerate(run))
        for i in range(len(haystack) - size + 1)
    )


def parse_text_query(value: str, field: str) -> TextQuery:
    """A ``~`` value as a :class:`TextQuery`; JqlError when nothing searchable is left."""
    terms: list[_Term] = []
    for phrase, bare in _TERM.findall(value):
        if phrase:
            found = words(phrase)
            while found and found[0] is None:
                found.pop(0)
            while found and found[-1] is None:
                found.pop()
            if found:
                terms.append(_Term(tuple(found)))
            continue
        prefix = bare.endswith("*")
        parts = [w for w in words(bare) if w is not None]
        for n, word in enumerate(parts):
            terms.append(_Term((word,), prefix=prefix and n == len(parts) - 1))
    if not terms:
        raise JqlError(f"The field '{field}' does not support searching for an empty string.")
    return TextQuery(tuple(terms))


__all__ = ["STOP_WORDS", "TextQuery", "parse_text_query", "words"]
