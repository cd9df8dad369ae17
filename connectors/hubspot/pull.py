"""Reading: incremental searches by ``hs_lastmodifieddate``, deletes and merges.

A pull asks for ``hs_lastmodifieddate >= mark - overlap`` sorted ascending and pages by
``after``. The overlap re-reads what the search index had not yet caught up with when the
last pull read (HubSpot's search is eventually consistent); the (id, modified) pairs
already delivered inside the overlap travel in the cursor, so nothing is delivered twice.

One search query pages through at most 10,000 results. Past that the pull re-anchors: it
re-reads every record modified at exactly the last moment seen, sorted by
``hs_object_id`` (re-anchoring on the id when even those pass the cap: the id
tie-break), then continues with ``hs_lastmodifieddate > that moment``.

Deletes: archived records come from the list endpoint (``archived=true``; it has no
filter, so it is read at most every ``deletes_every_seconds``). Merges: a surviving record
names the ids merged into it in ``hs_merged_object_ids``; those ids are gone (and the
surviving company carries them as its ``merged_ids``: links naming them are remapped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from connectors.exceptions import RemoteError
from connectors.hubspot import search
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.search import Record, Search, SearchPages, filter_
from connectors.hubspot.settings import SIDE
from connectors.times import parse_timestamp

MODIFIED: Final = "hs_lastmodifieddate"
OBJECT_ID: Final = "hs_object_id"
MERGED: Final = "hs_merged_object_ids"


def modified_ms(record: Mapping[str, Any]) -> int | None:
    """A record's ``hs_lastmodifieddate`` in epoch ms (None when missing or unreadable)."""
    props = record.get("properties") or {}
    raw = props.get(MODIFIED) or record.get("updatedAt")
    if raw is None:
        return None
    text = str(raw)
    if text.isdigit():
        return int(text)
    try:
        return search.millis(parse_timestamp(text))
    except ValueError:
        return None


def merged_ids(record: Mapping[str, Any]) -> list[str]:
    """The ids merged into ``record`` (``hs_merged_object_ids``: ``"12;34"``)."""
    raw = (record.get("properties") or {}).get(MERGED)
    if not raw:
        return []
    return [part.strip() for part in str(raw).split(";") if part.strip()]


@dataclass(frozen=True)
class ModifiedCursor:
    """Where the next pull of one object resumes.

    ``at_ms``: the highest ``hs_lastmodifieddate`` delivered; ``seen``: the (id, ms)
    pairs delivered at or after ``at_ms - overlap``; ``deletes_ms``: the latest
    ``archivedAt`` seen and ``deletes_read_ms`` when (our clock) archived records were
    last listed.
    """

    at_ms: int
    seen: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    deletes_ms: int | None = None
    deletes_read_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        """For the state store."""
        doc: dict[str, Any] = {"at_ms": self.at_ms, "seen": sorted([i, ms] for i, ms in self.seen)}
        if self.deletes_ms is not None:
            doc["deletes_ms"] = self.deletes_ms
        if self.deletes_read_ms is not None:
            doc["deletes_read_ms"] = self.deletes_read_ms
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ModifiedCursor:
        """From the state store."""

        def optional(key: str) -> int | None:
            value = doc.get(key)
            return int(value) if value is not None else None

        return cls(
            int(doc["at_ms"]),
            frozenset((str(i), int(ms)) for i, ms in doc.get("seen") or ()),
            optional("deletes_ms"),
            optional("deletes_read_ms"),
        )


@dataclass
class Pulled:
    """One page of a pull: records to deliver, ids gone (merged away), the cursor after."""

    live: list[Record]
    gone: list[str]
    cursor: ModifiedCursor | None
    unreadable: list[tuple[str, str]] = field(default_factory=list)


class ModifiedPull:
    """The pages of one object's changes since a cursor (iterate once)."""

    def __init__(
        self,
        client: HubSpotClient,
        object_type: str,
        properties: Sequence[str],
        cursor: ModifiedCursor | None,
        overlap_ms: int,
        extra: Sequence[Record] = (),
    ) -> None:
        self.client = client
        self.object_type = object_type
        self.properties = tuple(dict.fromkeys([*properties, MODIFIED, OBJECT_ID]))
        self.since = cursor
        self.overlap_ms = overlap_ms
        self.extra = tuple(extra)
        self._high: int | None = cursor.at_ms if cursor else None
        self._window: dict[tuple[str, int], None] = dict.fromkeys(cursor.seen) if cursor else {}
        #: Searches sent and re-anchors made, for tests and logs.
        self.queries = 0
        self.reanchors = 0
        self.duplicates = 0

    def _post(self, body: Record) -> Any:
        return self.client.search(self.object_type, body)

    def _pages(self, groups: tuple[tuple[Record, ...], ...], sort: str) -> SearchPages:
        self.queries += 1
        return SearchPages(self._post, Search(groups, sort, self.properties))

    def __iter__(self) -> Iterator[Pulled]:
        extra = self.extra
        if self.since is None:
            first: tuple[tuple[Record, ...], ...] = ((*extra,),) if extra else ()
        else:
            bound = max(0, self.since.at_ms - self.overlap_ms)
            first = ((filter_(MODIFIED, "GTE", bound), *extra),)
        pages = self._pages(first, MODIFIED)
        while True:
            last: Record | None = None
            for page in pages:
                last = page[-1]
                yield self._deliver(page)
            if not pages.capped or last is None:
                return
            # Past the cap: every record at the last moment (by id), then what is later.
            self.reanchors += 1
            moment = modified_ms(last)
            if moment is None:
                raise RemoteError(
                    f"HubSpot answered a search of {self.object_type} whose last record "
                    f"({last.get('id')}) has no readable {MODIFIED}, so the pull cannot go "
                    "past the 10,000-result cap; the next cycle tries again",
                    side=SIDE,
                )
            yield from self._ties(moment, extra)
            pages = self._pages(((filter_(MODIFIED, "GT", moment), *extra),), MODIFIED)

    def _ties(self, moment: int, extra: tuple[Record, ...]) -> Iterator[Pulled]:
        after_id: str | None = None
        while True:
            group = [filter_(MODIFIED, "EQ", moment), *extra]
            if after_id is not None:
                group.append(filter_(OBJECT_ID, "GT", after_id))
            pages = self._pages((tuple(group),), OBJECT_ID)
            last: Record | None = None
            for page in pages:
                last = page[-1]
                yield self._deliver(page)
            if not pages.capped or last is None:
                return
            self.reanchors += 1
            after_id = str(last.get("id"))

    def _deliver(self, page: list[Record]) -> Pulled:
        live: list[Record] = []
        gone: list[str] = []
        unreadable: list[tuple[str, str]] = []
        for record in page:
            record_id = str(record.get("id") or "")
            ms = modified_ms(record)
            if not record_id or ms is None:
                unreadable.append((record_id, f"no readable {MODIFIED}"))
                continue
            pair = (record_id, ms)
            if pair in self._window:
                self.duplicates += 1
                continue
            self._window[pair] = None
            if self._high is None or ms > self._high:
                self._high = ms
            live.append(record)
            gone.extend(merged_ids(record))
        return Pulled(live, gone, self.cursor(), unreadable)

    def cursor(self) -> ModifiedCursor | None:
        """The cursor covering everything delivered so far (the deletes marks kept)."""
        if self._high is None:
            return None
        floor = self._high - self.overlap_ms
        self._window = {p: None for p in self._window if p[1] >= floor}
        since = self.since
        return ModifiedCursor(
            self._high,
            frozenset(self._window),
            since.deletes_ms if since else None,
            since.deletes_read_ms if since else None,
        )


def archived(
    client: HubSpotClient,
    object_type: str,
    cursor: ModifiedCursor | None,
    now_ms: int,
) -> tuple[list[str], int | None]:
    """Ids archived after the cursor's deletes mark (all on the first listing) and the new
    mark; one call per 100 archived records. The list endpoint reads the records, not the
    search index, so no overlap is needed."""
    mark = cursor.deletes_ms if cursor else None
    newest = mark
    ids: list[str] = []
    get: Callable[[Record], Any] = lambda params: client.call(  # noqa: E731
        f"list archived {object_type}", "GET", f"/crm/v3/objects/{object_type}", params=params
    )
    for page in search.list_pages(get, {"archived": "true", "properties": OBJECT_ID}):
        for record in page:
            raw = record.get("archivedAt")
            try:
                at = search.millis(parse_timestamp(str(raw))) if raw else now_ms
            except ValueError:
                at = now_ms
            if mark is None or at > mark:
                ids.append(str(record.get("id")))
            newest = at if newest is None else max(newest, at)
    return ids, newest
