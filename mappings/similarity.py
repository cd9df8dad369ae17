"""Suggested links for unlinked projects and customers, ranked by name similarity.

Pure: names in, ranked suggestions out (reconcile prints them). Works for Latin and CJK
names alike. A name is NFKC-folded (full-width ``（１）`` becomes ``(1)``) and case-folded;
its *core* drops company-form and project words ("Ltd", "Rollout", "有限公司", "实施项目")
and bare numbers, which say nothing about who a name belongs to. Two cores are compared by
difflib's character matching (CJK has no spaces, so characters are the unit) and by the
share of tokens they have in common, a token being a Latin word or a CJK character bigram;
the score is their mean, or three quarters of the character match when no token is shared.
An inverted index on tokens keeps the comparisons to candidates sharing one, so ranking
thousands of accounts against hundreds of projects stays cheap.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

__all__ = ["NameIndex", "Suggestion", "core", "similarity", "tokens"]

#: Words that name a company form or a kind of project, not who or what it is.
NOISE_WORDS = frozenset(
    {
        "ag",
        "and",
        "co",
        "company",
        "corp",
        "corporation",
        "gmbh",
        "group",
        "holdings",
        "implementation",
        "inc",
        "incorporated",
        "industries",
        "international",
        "labs",
        "limited",
        "llc",
        "ltd",
        "plc",
        "program",
        "programme",
        "project",
        "rollout",
        "sa",
        "services",
        "solutions",
        "systems",
        "technologies",
        "technology",
        "the",
    }
)
#: The same for CJK names, longest first (removed as substrings: no spaces to split on).
NOISE_CJK = (
    "软件股份有限公司",
    "信息技术有限公司",
    "科技有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "实施项目",
    "信息技术",
    "科技",
    "集团",
    "公司",
    "软件",
    "贸易",
    "项目",
    "实施",
    "平台",
)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_IS_CJK = re.compile(rf"[{_CJK}]")

#: Below this score a name is no suggestion at all.
THRESHOLD = 0.5
#: Suggestions kept per unlinked project or customer.
LIMIT = 3


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A candidate link: the other side's id and name, and how alike the names are (0-1)."""

    id: str
    name: str
    score: float

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {"id": self.id, "name": self.name, "score": self.score}


def _fold(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


def _runs(text: str) -> list[str]:
    return _RUNS.findall(text)


@lru_cache(maxsize=65536)
def core(name: str) -> str:
    """The distinctive part of a name, folded; the whole folded name when nothing is left."""
    folded = _fold(name)
    stripped = folded
    for noise in NOISE_CJK:
        stripped = stripped.replace(noise, " ")
    kept = [
        run
        for run in _runs(stripped)
        if run not in NOISE_WORDS and not run.isdigit() and not (len(run) == 1 and run.isascii())
    ]
    if kept:
        return " ".join(kept)
    return " ".join(_runs(folded))


@lru_cache(maxsize=65536)
def tokens(name: str) -> frozenset[str]:
    """Tokens of a name's core: Latin words, and character bigrams of CJK runs."""
    found: set[str] = set()
    for run in core(name).split():
        if _IS_CJK.match(run):
            if len(run) == 1:
                found.add(run)
            else:
                found.update(run[i : i + 2] for i in range(len(run) - 1))
        else:
            found.add(run)
    return frozenset(found)


def similarity(a: str, b: str) -> float:
    """How alike two names are, 0 to 1 (1: the same once company forms are dropped)."""
    core_a, core_b = core(a), core(b)
    if not core_a or not core_b:
        return 0.0
    ratio = SequenceMatcher(None, core_a, core_b, autojunk=False).ratio()
    tokens_a, tokens_b = tokens(a), tokens(b)
    shared = len(tokens_a & tokens_b)
    overlap = shared / min(len(tokens_a), len(tokens_b)) if tokens_a and tokens_b else 0.0
    # Shared tokens count as much as matching characters; a near-miss spelling with no
    # shared token ("Globex", "Globox") still scores on its characters alone, discounted.
    return round(max((ratio + overlap) / 2, 0.75 * ratio), 3)


def _tie_break(a: str, b: str) -> float:
    """Whole-name likeness: orders candidates whose cores score the same."""
    return SequenceMatcher(None, _fold(a), _fold(b), autojunk=False).ratio()


def _keys(name: str) -> set[str]:
    """Index keys of a name: its tokens, and 3-letter prefixes of its Latin words (so a
    slightly different spelling still meets its candidates)."""
    keys = set(tokens(name))
    keys.update(t[:3] for t in tokens(name) if len(t) > 3 and not _IS_CJK.match(t))
    return keys


class NameIndex:
    """Candidates (id and one or more names, e.g. a project's key and name), findable by
    the names most like a given one."""

    def __init__(self, entries: Iterable[tuple[str, Sequence[str]]]) -> None:
        self._entries: list[tuple[str, tuple[str, ...]]] = []
        self._postings: dict[str, set[int]] = defaultdict(set)
        for entry_id, names in entries:
            position = len(self._entries)
            usable = tuple(n for n in names if n and n.strip())
            self._entries.append((entry_id, usable))
            for name in usable:
                for key in _keys(name):
                    self._postings[key].add(position)

    def rank(
        self,
        names: Sequence[str],
        *,
        limit: int = LIMIT,
        threshold: float = THRESHOLD,
        exclude: Iterable[str] = (),
    ) -> tuple[Suggestion, ...]:
        """The ``limit`` best candidates for an entity known by ``names`` (best first),
        scoring at least ``threshold``; ``exclude`` are ids never to suggest."""
        skip = set(exclude)
        queries = [n for n in names if n and n.strip()]
        candidates: set[int] = set()
        for name in queries:
            for key in _keys(name):
                candidates.update(self._postings.get(key, ()))
        scored: list[tuple[float, float, str, str]] = []
        for position in candidates:
            entry_id, entry_names = self._entries[position]
            if entry_id in skip:
                continue
            best: tuple[float, float, str] | None = None
            for query in queries:
                for entry_name in entry_names:
                    score = similarity(query, entry_name)
                    tie = _tie_break(query, entry_name)
                    if best is None or (score, tie) > best[:2]:
                        best = (score, tie, entry_name)
            if best is not None and best[0] >= threshold:
                scored.append((best[0], best[1], entry_id, entry_names[-1]))
        scored.sort(key=lambda s: (-s[0], -s[1], s[3], s[2]))
        return tuple(
            Suggestion(entry_id, name, score) for score, _, entry_id, name in scored[:limit]
        )
