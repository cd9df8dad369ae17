"""Cursors, Jira work items, links and CRM records in the state store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.store import repo
from sync.store.db import Store
from sync.store.repo import ItemRow

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _item(key: str, minutes: int = 0, **data: object) -> ItemRow:
    project = key.split("-")[0]
    return {
        "key": key,
        "project_key": project,
        "issue_id": str(abs(hash(key)) % 100000),
        "updated": T0 + timedelta(minutes=minutes),
        "data": {"summary": f"{key} summary", **data},
    }


def test_cursor_round_trip(store: Store) -> None:
    with store.read() as conn:
        assert repo.get_cursor(conn, "jira", "issues") is None
    with store.transaction() as tx:
        repo.set_cursor(tx, "jira", "issues", {"updated_ms": 1, "keys": ["A-1"]})
        repo.set_cursor(tx, "salesforce", "Account", {"modstamp": "2025-01-01T00:00:00Z"})
    with store.transaction() as tx:
        repo.set_cursor(tx, "jira", "issues", {"updated_ms": 2, "keys": []})
    with store.read() as conn:
        assert repo.get_cursor(conn, "jira", "issues") == {"updated_ms": 2, "keys": []}
        listed = repo.all_cursors(conn)
    assert [(c.source, c.object) for c in listed] == [
        ("jira", "issues"),
        ("salesforce", "Account"),
    ]
    assert all(c.updated_at.tzinfo == UTC for c in listed)
    with store.transaction() as tx:
        assert repo.clear_cursors(tx, "jira") == 1
    with store.read() as conn:
        assert repo.get_cursor(conn, "jira", "issues") is None
        assert repo.get_cursor(conn, "salesforce", "Account") is not None


def test_cursor_advances_only_with_the_records_it_covers(store: Store) -> None:
    with store.transaction() as tx:
        repo.upsert_items(tx, [_item("A-1")])
        repo.set_cursor(tx, "jira", "issues", 1)

    class Crash(Exception):
        pass

    with pytest.raises(Crash), store.transaction() as tx:
        repo.upsert_items(tx, [_item("A-2"), _item("A-1", 5, summary="changed")])
        repo.set_cursor(tx, "jira", "issues", 2)
        raise Crash
    with store.read() as conn:
        assert repo.get_cursor(conn, "jira", "issues") == 1
        items = {i.key: i for i in repo.iter_items(conn)}
    assert set(items) == {"A-1"}
    assert items["A-1"].data["summary"] == "A-1 summary"


def test_items_upsert_update_and_stale_copies(store: Store) -> None:
    with store.transaction() as tx:
        assert repo.upsert_items(tx, [_item("A-1"), _item("A-2"), _item("B-1")]) == 3
    with store.transaction() as tx:
        repo.upsert_items(tx, [_item("A-1", 10, summary="newer")])
        # An overlapping pull hands back an older copy of A-1: the newer one stays.
        repo.upsert_items(tx, [_item("A-1", 5, summary="older")])
        # The same key twice in one batch: the last one given wins.
        repo.upsert_items(tx, [_item("A-2", 1, summary="first"), _item("A-2", 2, summary="last")])
    with store.read() as conn:
        items = {i.key: i for i in repo.iter_items(conn)}
    assert items["A-1"].data["summary"] == "newer"
    assert items["A-1"].updated == T0 + timedelta(minutes=10)
    assert items["A-2"].data["summary"] == "last"


def test_deleted_items_leave_the_counts(store: Store) -> None:
    with store.transaction() as tx:
        repo.upsert_items(tx, [_item("A-1"), _item("A-2"), _item("A-3"), _item("B-1")])
        assert repo.mark_items_deleted(tx, ["A-2", "A-3", "NOPE-1"], at=T0) == 2
        assert repo.mark_items_deleted(tx, ["A-2"]) == 0
    with store.read() as conn:
        assert repo.count_items(conn) == 2
        assert repo.count_items(conn, "A") == 1
        assert repo.item_counts_by_project(conn) == {"A": 1, "B": 1}
        assert repo.item_keys(conn, "A") == {"A-1"}
        assert repo.item_keys(conn, "A", include_deleted=True) == {"A-1", "A-2", "A-3"}
        gone = [i for i in repo.iter_items(conn, ["A"], include_deleted=True) if i.deleted]
    assert [(i.key, i.deleted_at) for i in gone] == [("A-2", T0), ("A-3", T0)]
    # Seen again (restored in Jira): live again.
    with store.transaction() as tx:
        repo.upsert_items(tx, [_item("A-2", 30)])
    with store.read() as conn:
        assert repo.item_keys(conn, "A") == {"A-1", "A-2"}


def test_iter_items_streams_by_project(store: Store) -> None:
    rows = [_item(f"{p}-{n}") for p in ("APOLLO", "BOREAS", "CETUS") for n in range(1, 2501)]
    with store.transaction() as tx:
        assert repo.upsert_items(tx, rows) == 7500
    with store.read() as conn:
        assert repo.count_items(conn) == 7500
        keys = [i.key for i in repo.iter_items(conn, ["CETUS", "APOLLO"], yield_per=100)]
        assert list(repo.iter_items(conn, [])) == []
    assert len(keys) == 5000
    assert keys[0].startswith("APOLLO-") and keys[-1].startswith("CETUS-")
    assert len(set(keys)) == 5000


def test_item_data_gives_the_stored_records_of_live_items_by_project_then_key(
    store: Store,
) -> None:
    """What a derive merges: decoded a chunk at a time (more rows than one chunk here),
    each record as it was stored, deleted items left out, the collector's state kept."""
    import gc

    odd = {"text": 'a "quoted", [bracketed] \\u00e9 value\n', "none": None, "list": [{}]}
    rows = [_item(f"{p}-{n}", extra=n, **odd) for p in ("APOLLO", "BOREAS") for n in (1, 2)]
    rows += [_item(f"CETUS-{n}", n=n) for n in range(1, repo.items.DECODE_CHUNK + 80)]
    with store.transaction() as tx:
        repo.upsert_items(tx, rows)
        repo.mark_items_deleted(tx, ["BOREAS-2"], at=T0)
    with store.read() as conn:
        assert repo.item_data(conn, []) == []
        two = repo.item_data(conn, ["BOREAS", "APOLLO"])
        cetus = repo.item_data(conn, ["CETUS"])
    assert gc.isenabled()
    assert [r["extra"] for r in two] == [1, 2, 1]  # APOLLO-1, APOLLO-2, BOREAS-1
    assert {k: two[0][k] for k in odd} == odd
    assert sorted(r["n"] for r in cetus) == list(range(1, repo.items.DECODE_CHUNK + 80))
    assert cetus[0] == rows[4]["data"]


def test_links_are_replaced_per_project(store: Store) -> None:
    with store.transaction() as tx:
        repo.set_links(
            tx,
            "APOLLO",
            [
                {"customer_id": "001A", "rule": "project_property", "item_count": 10},
                {"customer_id": "001B", "rule": "label", "scope": "epic APOLLO-1"},
            ],
        )
        repo.set_links(tx, "BOREAS", [{"customer_id": "001A", "rule": "component"}])
    with store.transaction() as tx:
        repo.set_links(tx, "APOLLO", [{"customer_id": "001C", "rule": "label"}])
    with store.read() as conn:
        links = repo.get_links(conn)
        assert [(lk.project_key, lk.customer_id) for lk in links] == [
            ("APOLLO", "001C"),
            ("BOREAS", "001A"),
        ]
        assert [lk.project_key for lk in repo.get_links(conn, customer_ids=["001A"])] == ["BOREAS"]
        assert len(repo.get_links(conn, project_keys=["APOLLO"])) == 1
    with store.transaction() as tx:
        repo.set_links(tx, "APOLLO", [])
        assert repo.delete_links_for_customers(tx, ["001A"]) == 1
    with store.read() as conn:
        assert repo.get_links(conn) == []


def test_accounts(store: Store) -> None:
    with store.transaction() as tx:
        repo.upsert_customers(
            tx,
            [
                {"id": f"001{n:03d}", "modstamp": T0, "data": {"name": f"Customer {n}"}}
                for n in range(1200)
            ],
        )
        repo.upsert_customers(tx, [{"id": "001000", "modstamp": T0 - timedelta(1), "data": {}}])
        repo.upsert_customers(
            tx, [{"id": "001001", "modstamp": T0 + timedelta(1), "data": {"name": "Renamed"}}]
        )
        assert repo.mark_customers_deleted(tx, ["001002"], at=T0) == 1
    with store.read() as conn:
        assert repo.count_customers(conn) == 1199
        some = repo.get_customers(conn, [f"001{n:03d}" for n in range(1100)] + ["missing"])
        assert len(some) == 1099 and "001002" not in some
        assert some["001000"].data == {"name": "Customer 0"}
        assert some["001001"].data == {"name": "Renamed"}
        assert repo.get_customers(conn, ["001002"], include_deleted=True)["001002"].deleted
        streamed = [a.id for a in repo.iter_customers(conn, yield_per=50)]
    assert len(streamed) == 1199 and streamed == sorted(streamed)


def test_case_counts_are_counted_in_sql(store: Store) -> None:
    cases: list[repo.CaseRow] = [
        {"id": "500A1", "customer_id": "001A", "is_closed": False, "modstamp": T0},
        {
            "id": "500A2",
            "customer_id": "001A",
            "is_closed": False,
            "is_escalated": True,
            "modstamp": T0,
        },
        {
            "id": "500A3",
            "customer_id": "001A",
            "is_closed": True,
            "is_escalated": True,
            "modstamp": T0,
        },
        {"id": "500A4", "customer_id": "001A", "is_closed": False, "modstamp": T0},
        {"id": "500B1", "customer_id": "001B", "is_closed": True, "modstamp": T0},
        {
            "id": "500C1",
            "customer_id": "001C",
            "is_closed": False,
            "is_escalated": True,
            "modstamp": T0,
        },
        {"id": "500X1", "customer_id": None, "is_closed": False, "modstamp": T0},
    ]
    with store.transaction() as tx:
        repo.upsert_cases(tx, cases)
        repo.mark_cases_deleted(tx, ["500A4"])
    with store.read() as conn:
        counts = repo.case_counts(conn)
        assert counts == {
            "001A": repo.CaseCounts(open=2, escalated_open=1),
            "001C": repo.CaseCounts(open=1, escalated_open=1),
        }
        assert repo.case_counts(conn, ["001C", "001B"]) == {"001C": repo.CaseCounts(1, 1)}
    with store.transaction() as tx:  # the escalated case is closed
        repo.upsert_cases(
            tx,
            [
                {
                    "id": "500C1",
                    "customer_id": "001C",
                    "is_closed": True,
                    "is_escalated": True,
                    "modstamp": T0 + timedelta(1),
                }
            ],
        )
    with store.read() as conn:
        assert "001C" not in repo.case_counts(conn)


def test_surveys_within_a_window(store: Store) -> None:
    rows: list[repo.SurveyRow] = [
        {
            "id": f"a{n}",
            "customer_id": "001A" if n % 2 else "001B",
            "score": float(n),
            "responded_at": T0 + timedelta(days=n),
            "modstamp": T0,
        }
        for n in range(10)
    ]
    with store.transaction() as tx:
        repo.upsert_surveys(tx, rows)
        repo.mark_surveys_deleted(tx, ["a3"])
    since, until = T0 + timedelta(days=2), T0 + timedelta(days=8)
    with store.read() as conn:
        found = repo.surveys_by_customer(conn, ["001A", "001B", "001Z"], since=since, until=until)
        streamed = list(repo.iter_surveys(conn, since=since))
    assert [s.score for s in found["001A"]] == [5.0, 7.0]
    assert [s.score for s in found["001B"]] == [2.0, 4.0, 6.0]
    assert "001Z" not in found
    assert found["001A"][0].responded_at == T0 + timedelta(days=5)
    assert [(s.customer_id, s.score) for s in streamed] == [
        ("001A", 5.0),
        ("001A", 7.0),
        ("001A", 9.0),
        ("001B", 2.0),
        ("001B", 4.0),
        ("001B", 6.0),
        ("001B", 8.0),
    ]


def test_remote_cache_expires(store: Store) -> None:
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    with store.transaction() as tx:
        repo.cache_put(tx, "jira:fields", [{"id": "summary"}], now)
    with store.read() as conn:
        hour = timedelta(hours=1)
        assert repo.cache_get(conn, "jira:fields", now + hour / 2, hour) == [{"id": "summary"}]
        assert repo.cache_get(conn, "jira:fields", now + hour, hour) is None
        assert repo.cache_get(conn, "other", now, hour) is None
    with store.transaction() as tx:
        repo.cache_clear(tx, "jira:")
    with store.read() as conn:
        assert repo.cache_get(conn, "jira:fields", now, timedelta(days=1)) is None
