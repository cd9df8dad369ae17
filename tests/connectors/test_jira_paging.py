"""The paginators' loop guards and the pull's de-duplication, on scripted pages."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.exceptions import RemoteError
from connectors.jira.paging import (
    IssueCursor,
    IssuePull,
    RawIssue,
    offset_pages,
    token_pages,
    updated_ms,
)

BASE = 1_772_323_200_000  # 2026-03-01T00:00:00Z
MINUTE = 60_000


def issue(key: str, ms: int) -> RawIssue:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(ms / 1000, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"
    return {"id": key.split("-")[1], "key": key, "fields": {"updated": text}}


def test_updated_ms_parses_jira_times() -> None:
    assert updated_ms(issue("A-1", BASE + 19)) == BASE + 19
    assert updated_ms({"id": "1", "key": "A-1", "fields": {}}) is None


def test_token_pages_follow_tokens_to_the_end() -> None:
    answers = {
        None: {"issues": [issue("A-1", BASE)], "nextPageToken": "t1", "isLast": False},
        "t1": {"issues": [issue("A-2", BASE)], "nextPageToken": "t2", "isLast": False},
        "t2": {"issues": [issue("A-3", BASE)], "isLast": True},
    }
    asked: list[str | None] = []

    def fetch(token: str | None) -> dict[str, Any]:
        asked.append(token)
        return answers[token]

    pages = list(token_pages(fetch))
    assert [p[0]["key"] for p in pages] == ["A-1", "A-2", "A-3"]
    assert asked == [None, "t1", "t2"]


def test_token_pages_refuse_a_repeated_token() -> None:
    def fetch(token: str | None) -> dict[str, Any]:
        return {"issues": [issue("A-1", BASE)], "nextPageToken": "same", "isLast": False}

    pages = token_pages(fetch)
    next(pages)
    next(pages)
    with pytest.raises(RemoteError, match="already given"):
        next(pages)


def test_offset_pages_follow_the_servers_page_size() -> None:
    asked: list[tuple[int, int]] = []

    def fetch(start: int, size: int) -> dict[str, Any]:
        asked.append((start, size))
        served = min(size, 40)
        items = [issue(f"A-{n}", BASE) for n in range(start, min(start + served, 100))]
        return {"startAt": start, "maxResults": served, "total": 100, "issues": items}

    sizes = [len(p) for p in offset_pages(fetch, 1000)]
    assert sizes == [40, 40, 20]
    assert asked == [(0, 1000), (40, 40), (80, 40)]


def test_offset_pages_refuse_a_start_that_does_not_advance() -> None:
    def fetch(start: int, size: int) -> dict[str, Any]:
        return {"startAt": 0, "maxResults": 10, "total": 100, "issues": [issue("A-1", BASE)]}

    pages = offset_pages(fetch, 10)
    next(pages)
    with pytest.raises(RemoteError, match="startAt=0"):
        next(pages)


def test_offset_pages_refuse_an_empty_page_before_the_total() -> None:
    def fetch(start: int, size: int) -> dict[str, Any]:
        items = [issue("A-1", BASE)] if start == 0 else []
        return {"startAt": start, "maxResults": 10, "total": 100, "issues": items}

    with pytest.raises(RemoteError, match="empty page"):
        list(offset_pages(fetch, 10))


def test_pull_drops_a_repeat_across_a_page_boundary() -> None:
    # An issue created before the offset while paging shifts A-3 onto the next page too.
    pages = iter(
        [[issue("A-1", BASE), issue("A-3", BASE)], [issue("A-3", BASE), issue("A-4", BASE)]]
    )
    pull = IssuePull(pages, None, 5 * MINUTE, BASE + 10 * MINUTE)
    keys = [i["key"] for page in pull for i in page]
    assert keys == ["A-1", "A-3", "A-4"]
    assert pull.duplicates == 1 and pull.delivered == 3


def test_same_key_with_a_newer_updated_is_delivered_again() -> None:
    pages = iter([[issue("A-1", BASE)], [issue("A-1", BASE + 1)]])
    pull = IssuePull(pages, None, 5 * MINUTE, BASE + MINUTE)
    assert [len(p) for p in pull] == [1, 1]


def test_cursor_caps_at_the_pull_start_and_keeps_the_overlap() -> None:
    started = BASE + 10 * MINUTE
    pages = iter([[issue("A-1", BASE), issue("A-2", BASE + 8 * MINUTE), issue("A-3", started + 1)]])
    pull = IssuePull(pages, None, 5 * MINUTE, started)
    with pytest.raises(RuntimeError):
        _ = pull.cursor
    list(pull)
    cursor = pull.cursor
    assert cursor is not None
    # A-3 changed after the pull started: the next pull must reach back to the start.
    assert cursor.updated_ms == started
    assert cursor.seen == {("A-2", BASE + 8 * MINUTE), ("A-3", started + 1)}


def test_cursor_never_moves_back_and_filters_what_it_saw() -> None:
    since = IssueCursor(BASE, frozenset({("A-1", BASE - MINUTE)}))
    pages = iter([[issue("A-1", BASE - MINUTE), issue("A-2", BASE - 2 * MINUTE)]])
    pull = IssuePull(pages, since, 5 * MINUTE, BASE + MINUTE)
    assert [i["key"] for page in pull for i in page] == ["A-2"]
    cursor = pull.cursor
    assert cursor is not None and cursor.updated_ms == BASE
    assert cursor.seen == {("A-1", BASE - MINUTE), ("A-2", BASE - 2 * MINUTE)}


def test_empty_pull_keeps_the_cursor() -> None:
    since = IssueCursor(BASE)
    pull = IssuePull(iter([[]]), since, 5 * MINUTE, BASE + MINUTE)
    assert list(pull) == []
    assert pull.cursor == since
    first = IssuePull(iter([[]]), None, 5 * MINUTE, BASE)
    list(first)
    assert first.cursor is None


def test_window_stays_small_on_a_long_pull() -> None:
    pages = (
        [issue(f"A-{p * 100 + n}", BASE + (p * 100 + n) * MINUTE) for n in range(100)]
        for p in range(100)
    )
    pull = IssuePull(pages, None, 5 * MINUTE, BASE + 100_000 * MINUTE)
    assert sum(len(p) for p in pull) == 10_000
    assert len(pull._window) < 3000
    cursor = pull.cursor
    assert cursor is not None and len(cursor.seen) == 6  # the last 5 minutes, inclusive


@pytest.mark.parametrize(
    "last_page",
    [
        {"issues": []},  # neither isLast nor a token: the end is unknown
        {"issues": [], "isLast": False},  # "more follow", but no token to fetch them
        {"issues": [], "isLast": "true", "nextPageToken": ""},  # not a boolean, no token
    ],
)
def test_token_pages_refuse_a_page_that_breaks_the_paging_contract(
    last_page: dict[str, Any],
) -> None:
    answers = {None: {"issues": [issue("A-1", BASE)], "nextPageToken": "t1", "isLast": False}}
    answers["t1"] = {**last_page, "issues": [issue("A-2", BASE)]}
    pages = token_pages(lambda token: answers[token])
    assert next(pages)[0]["key"] == "A-1"
    with pytest.raises(RemoteError, match="no nextPageToken"):
        next(pages)  # and A-2's page is never given out as if it were complete


def test_token_pages_follow_a_token_even_without_is_last() -> None:
    answers = {
        None: {"issues": [issue("A-1", BASE)], "nextPageToken": "t1"},
        "t1": {"issues": [issue("A-2", BASE)], "isLast": True},
    }
    assert [p[0]["key"] for p in token_pages(lambda token: answers[token])] == ["A-1", "A-2"]


@pytest.mark.parametrize("total", [None, "100", -1, True])
def test_offset_pages_refuse_a_page_without_a_total(total: Any) -> None:
    def fetch(start: int, size: int) -> dict[str, Any]:
        page: dict[str, Any] = {"startAt": start, "maxResults": 10, "issues": [issue("A-1", BASE)]}
        if total is not None:
            page["total"] = total
        return page

    with pytest.raises(RemoteError, match="total"):
        next(offset_pages(fetch, 10))


def test_updated_ms_is_none_for_an_unreadable_time() -> None:
    broken = {"id": "1", "key": "A-1", "fields": {"updated": "yesterday"}}
    assert updated_ms(broken) is None  # type: ignore[arg-type]
