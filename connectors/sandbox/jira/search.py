"""Issue search: page-size rules as data, opaque page tokens, and a small result cache.

A query is parsed and compiled once per request (parsing is cached by string); the
ordered matches are cached per JQL and backend revision, so the pages after the first
are slices, not re-scans. A token names its query (a token from another JQL is a 400)
and the last key it returned, so a page after a change resumes where the last one ended.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from connectors.sandbox.jira.jql import JqlError, parse
from connectors.sandbox.jira.jql_eval import Compiled, compile_query, key_order
from connectors.sandbox.world import JiraIssue

if TYPE_CHECKING:
    from connectors.sandbox.jira.models import JiraBackend

UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
BAD_TOKEN = "The nextPageToken is invalid or was issued for a different query."


@dataclass(frozen=True, slots=True)
class PageRule:
    """Default and maximum page sizes of one endpoint (requests above are clipped)."""

    default: int
    maximum: int
    maximum_identity: int  # when only id/key are asked for

    def size(self, requested: int | None, identity_only: bool = False) -> int:
        """The page size Jira would use for a request."""
        limit = self.maximum_identity if identity_only else self.maximum
        if requested is None:
            return min(self.default, limit)
        return max(0, min(requested, limit))


#: Page sizes per endpoint, as Jira Cloud and Server document them.
PAGE_RULES: Final = {
    "search/jql": PageRule(default=50, maximum=100, maximum_identity=5000),
    "search": PageRule(default=50, maximum=1000, maximum_identity=1000),
    "comment": PageRule(default=5000, maximum=5000, maximum_identity=5000),
    "changelog": PageRule(default=100, maximum=100, maximum_identity=100),
}


class SearchError(ValueError):
    """A search request Jira answers with 400; the message goes to ``errorMessages``."""


@dataclass(slots=True)
class _Result:
    revision: int
    issues: list[JiraIssue]


@dataclass(frozen=True, slots=True)
class _Token:
    query: str
    offset: int
    last_key: str


class IssueSearch:
    """Runs JQL against a backend's indexes."""

    CACHE_SIZE: Final = 16

    def __init__(self, backend: JiraBackend) -> None:
        self.backend = backend
        self._cache: OrderedDict[str, _Result] = OrderedDict()

    def clear(self) -> None:
        """Forget cached results (after a reset)."""
        self._cache.clear()

    def compile(self, jql: str) -> Compiled:
        """Parse and compile; raises JqlError."""
        return compile_query(parse(jql), self.backend)

    def _run(self, jql: str, compiled: Compiled) -> list[JiraIssue]:
        backend = self.backend
        if compiled.keys is not None:
            found = (backend.issues.get(key) for key in compiled.keys)
            candidates = sorted((i for i in found if i is not None), key=key_order)
        else:
            candidates = backend.ordered_issues(compiled.projects)
        predicate = compiled.predicate
        matches = candidates if predicate is None else [i for i in candidates if predicate(i)]
        compiled.sort(matches)
        self._cache[jql] = _Result(backend.revision, matches)
        self._cache.move_to_end(jql)
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return matches

    def _cached(self, jql: str) -> list[JiraIssue] | None:
        entry = self._cache.get(jql)
        if entry is None or entry.revision != self.backend.revision:
            return None
        return entry.issues

    def matches(self, jql: str, require_bounded: bool = False) -> list[JiraIssue]:
        """Every match, ordered; raises JqlError or SearchError."""
        compiled = self.compile(jql)
        if require_bounded and not compiled.bounded:
            raise SearchError(UNBOUNDED)
        return self._run(jql, compiled)

    # -- enhanced search (nextPageToken) ---------------------------------------------------

    def token_page(
        self, jql: str, token: str | None, size: int
    ) -> tuple[list[JiraIssue], str | None]:
        """One page of ``/search/jql``: the issues and the next token (None on the last)."""
        compiled = self.compile(jql)
        if not compiled.bounded:
            raise SearchError(UNBOUNDED)
        if token:
            decoded = self._decode(token, jql)
            results = self._cached(jql)
            start = decoded.offset
            if results is None:
                results = self._run(jql, compiled)
                start = self._resume(results, decoded)
        else:
            results = self._run(jql, compiled)
            start = 0
        page = results[start : start + size] if size else []
        end = start + len(page)
        if end >= len(results) or not page:
            return page, None
        return page, self._encode(jql, end, page[-1].key)

    @staticmethod
    def _resume(results: list[JiraIssue], token: _Token) -> int:
        for index, issue in enumerate(results):
            if issue.key == token.last_key:
                return index + 1
        return min(token.offset, len(results))

    def _query_id(self, jql: str) -> str:
        return hashlib.sha256(jql.encode("utf-8")).hexdigest()[:16]

    def _sign(self, payload: str) -> str:
        return hmac.new(self.backend.secret, payload.encode("utf-8"), "sha256").hexdigest()[:20]

    def _encode(self, jql: str, offset: int, last_key: str) -> str:
        payload = f"{self._query_id(jql)}|{offset}|{last_key}"
        raw = f"{payload}|{self._sign(payload)}".encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def _decode(self, token: str, jql: str) -> _Token:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
            query, offset, last_key, signature = raw.split("|")
            valid = hmac.compare_digest(signature, self._sign(f"{query}|{offset}|{last_key}"))
            decoded = _Token(query, int(offset), last_key)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise SearchError(BAD_TOKEN) from None
        if not valid or decoded.query != self._query_id(jql) or decoded.offset < 0:
            raise SearchError(BAD_TOKEN)
        return decoded

    # -- legacy search (startAt) and counts ------------------------------------------------

    def offset_page(self, jql: str, start: int, size: int) -> tuple[list[JiraIssue], int]:
        """One page of the legacy ``/search``: the issues and the total."""
        results = self._cached(jql) if start > 0 else None
        if results is None:
            results = self._run(jql, self.compile(jql))
        return results[start : start + size], len(results)

    def count(self, jql: str) -> int:
        """``/search/approximate-count`` (exact here)."""
        return len(self.matches(jql, require_bounded=True))


__all__ = ["PAGE_RULES", "IssueSearch", "JqlError", "PageRule", "SearchError"]
