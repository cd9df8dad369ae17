"""Search pagination (one paginator per API style) and the incremental-pull cursor.

Cloud's enhanced search (``/search/jql``) pages by ``nextPageToken``; Server/Data Center's
``/search`` by ``startAt``. Each paginator yields the raw ``issues`` of one page at a time
and refuses to loop: a repeated token or an offset that does not advance is a RemoteError.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from connectors.exceptions import RemoteError
from connectors.jira.settings import SIDE

#: The largest pages each API allows: enhanced search with fields, and key-only listing.
CLOUD_PAGE = 100
KEYS_PAGE = 5000
#: What Server/Data Center allows by default (jira.search.views.default.max); a smaller
#: ``maxResults`` in the answer is followed.
SERVER_PAGE = 1000


class RawIssue(TypedDict):
    """An issue as search returns it (``self``/``expand`` omitted here)."""

    id: str
    key: str
    fields: dict[str, Any]


Page = dict[str, Any]


def token_pages(fetch: Callable[[str | None], Page]) -> Iterator[list[RawIssue]]:
    """Pages of ``/search/jql``: ``fetch(token)`` until a page says ``isLast: true``.

    The paging contract (Jira's schema, ``SearchAndReconcileResults``): every page says
    ``isLast``; a page that is not the last carries a ``nextPageToken``. A page that breaks
    it (no ``isLast`` and no token, ``isLast: false`` without a token, a token seen before)
    is a RemoteError: taking it as the last page would end the pull early, and the cursor
    would move past every issue on the pages never read.
    """
    token: str | None = None
    used: set[str] = set()
    while True:
        page = fetch(token)
        last = page.get("isLast")
        token = page.get("nextPageToken")
        if last is not True and not (isinstance(token, str) and token):
            said = "isLast: false" if last is False else f"isLast {_shown(last)}"
            raise RemoteError(
                f"Jira answered a search page with {said} and no nextPageToken, so whether "
                "more pages follow is unknown; nothing after the pages already stored was "
                "read and no cursor moved; the next cycle tries again (check for a proxy "
                "that rewrites answers if it persists)",
                side=SIDE,
            )
        yield list(page.get("issues") or [])
        if last is True:
            return
        assert isinstance(token, str)
        if token in used:
            raise RemoteError(
                "Jira returned a nextPageToken it had already given; stopping the search "
                "rather than looping",
                side=SIDE,
            )
        used.add(token)


def _shown(value: object) -> str:
    """How a paging field was answered, short (for messages)."""
    return "missing" if value is None else repr(value)[:40]


def offset_pages(fetch: Callable[[int, int], Page], page_size: int) -> Iterator[list[RawIssue]]:
    """Pages of ``/search``: ``fetch(startAt, maxResults)`` while ``startAt < total``,
    following the ``maxResults`` the server says it used.

    Server/Data Center always answers ``startAt``, ``maxResults`` and ``total``; a page
    without a numeric ``total``, or one that does not start where it was asked to, breaks
    the paging contract and is a RemoteError rather than a guess at the end.
    """
    start, size = 0, page_size
    while True:
        page = fetch(start, size)
        issues = list(page.get("issues") or [])
        total = page.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise RemoteError(
                f"Jira answered a search page at startAt={start} with total {_shown(total)}, "
                "so where the result ends is unknown; no cursor moved; the next cycle tries "
                "again",
                side=SIDE,
            )
        answered_start = page.get("startAt", start)
        if answered_start != start:
            raise RemoteError(
                f"Jira answered startAt={_shown(answered_start)} to a request for {start}; "
                "stopping the search rather than looping",
                side=SIDE,
            )
        answered_size = page.get("maxResults")
        if isinstance(answered_size, int) and not isinstance(answered_size, bool):
            size = answered_size or size
        if issues:
            yield issues
        start += len(issues)
        if start >= total:
            return
        if not issues:
            raise RemoteError(
                f"Jira returned an empty page at startAt={start} of total={total}; "
                "stopping the search rather than looping",
                side=SIDE,
            )


def updated_ms(issue: RawIssue) -> int | None:
    """``fields.updated`` (``2017-09-06T08:13:46.019+0000``) in epoch milliseconds; None
    when it is missing or unreadable (such an issue is set aside by the pull, and no
    cursor is made from it)."""
    fields = issue.get("fields")
    text = fields.get("updated") if isinstance(fields, dict) else None
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class IssueCursor:
    """Where the next incremental pull starts.

    ``updated_ms`` is a high-water mark of ``updated`` (server clock); the next pull asks
    for ``updated >= lower_bound(overlap)``. ``seen`` holds the (key, updated) pairs already
    delivered inside that overlap, so re-reading the overlap delivers nothing twice.
    ``read_at_ms`` is when (server clock) the pull that made this cursor started.
    """

    updated_ms: int
    seen: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    # Not part of the position (equal mark and pairs are the same cursor); see lower_bound.
    read_at_ms: int | None = field(default=None, compare=False)

    def lower_bound(self, overlap_ms: int) -> int:
        """Where the next pull starts: ``updated_ms - overlap``, or later when the pull that
        made this cursor started well after its mark.

        The overlap catches issues that were not yet searchable when that pull read (an
        index lag up to ``overlap``): such an issue was updated after ``read_at - overlap``.
        Anything earlier and up to the mark was delivered. So ``min(mark, read_at -
        overlap)`` misses nothing, and a quiet site is not re-read back to ``mark -
        overlap`` every cycle (the whole burst of our own writes, measured in bench/).
        """
        bound = self.updated_ms - overlap_ms
        if self.read_at_ms is not None:
            bound = max(bound, min(self.updated_ms, self.read_at_ms - overlap_ms))
        return max(0, bound)

    def to_json(self) -> dict[str, Any]:
        """A JSON document for the state store."""
        doc: dict[str, Any] = {
            "updated_ms": self.updated_ms,
            "seen": sorted([k, ms] for k, ms in self.seen),
        }
        if self.read_at_ms is not None:
            doc["read_at_ms"] = self.read_at_ms
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> IssueCursor:
        """The cursor a :meth:`to_json` document describes."""
        read_at = doc.get("read_at_ms")
        return cls(
            int(doc["updated_ms"]),
            frozenset((str(k), int(ms)) for k, ms in doc.get("seen", ())),
            int(read_at) if read_at is not None else None,
        )


class IssuePull:
    """One pull: iterate it for de-duplicated pages, then read :attr:`cursor`.

    Memory stays flat: only the pairs near the high-water mark and those of the last two
    pages are kept, never the result.
    """

    def __init__(
        self,
        pages: Iterator[list[RawIssue]],
        since: IssueCursor | None,
        overlap_ms: int,
        started_ms: int,
    ) -> None:
        self._pages = pages
        self._since = since
        self._overlap_ms = overlap_ms
        self._started_ms = started_ms
        self._max_ms: int | None = None
        self._window: dict[tuple[str, int], None] = {}
        self._pruned_at = 0
        self._done = False
        #: Issues delivered and duplicates dropped, for logs and tests.
        self.delivered = 0
        self.duplicates = 0

    def __iter__(self) -> Iterator[list[RawIssue]]:
        prior = self._since.seen if self._since else frozenset()
        # A shift while paging (an issue created or deleted before the current offset)
        # repeats the tail of the previous page; two pages of pairs cover that.
        recent: deque[set[tuple[str, int]]] = deque(maxlen=2)
        for page in self._pages:
            out: list[RawIssue] = []
            current: set[tuple[str, int]] = set()
            for issue in page:
                ms = updated_ms(issue)
                if ms is None:
                    out.append(issue)
                    continue
                pair = (issue["key"], ms)
                self._note(pair)
                if pair in prior or pair in current or any(pair in s for s in recent):
                    self.duplicates += 1
                    continue
                current.add(pair)
                out.append(issue)
            recent.append(current)
            self.delivered += len(out)
            if out:
                yield out
        self._done = True

    def _high(self) -> int | None:
        previous = self._since.updated_ms if self._since else None
        if self._max_ms is None:
            return previous
        # An issue changed while we paged may sit on a page already read; capping at the
        # pull's start (server clock) makes the next pull read it again.
        high = min(self._max_ms, self._started_ms)
        return high if previous is None else max(previous, high)

    def _note(self, pair: tuple[str, int]) -> None:
        if self._max_ms is None or pair[1] > self._max_ms:
            self._max_ms = pair[1]
        self._window[pair] = None
        if len(self._window) > 2 * self._pruned_at + 1024:
            self._prune()

    def _prune(self) -> None:
        high = self._high()
        if high is not None:
            floor = high - self._overlap_ms
            self._window = {p: None for p in self._window if p[1] >= floor}
        self._pruned_at = len(self._window)

    @property
    def cursor(self) -> IssueCursor | None:
        """The cursor covering everything delivered (only once the pull is exhausted)."""
        if not self._done:
            raise RuntimeError("the pull is not finished; iterate every page first")
        high = self._high()
        if high is None:
            return None
        floor = high - self._overlap_ms
        prior = self._since.seen if self._since else frozenset()
        seen = {p for p in self._window if p[1] >= floor} | {p for p in prior if p[1] >= floor}
        return IssueCursor(high, frozenset(seen), self._started_ms)
