"""The write ledger and the outbox: replace-on-replan, backoff, parking, crash leftovers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync.store import repo
from sync.store.db import Store
from sync.store.repo import LedgerRow, OutboxRow

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _ledger(key: str, field: str, value: object, run_id: int | None = None) -> LedgerRow:
    return {
        "target": "crm",
        "record_key": key,
        "field": field,
        "value_hash": f"h:{value}",
        "value": value,
        "run_id": run_id,
    }


def _write(key: str, payload: object, op: str = "crm_upsert", shard: str = "crm") -> OutboxRow:
    return {"target": "crm", "record_key": key, "op": op, "payload": payload, "shard": shard}


def test_ledger_round_trip(store: Store) -> None:
    with store.transaction() as tx:
        repo.ledger_put_many(
            tx,
            [
                _ledger("APOLLO:001A", "Percent__c", 40.0),
                _ledger("APOLLO:001A", "Health__c", "green"),
                _ledger("APOLLO:001B", "Percent__c", 10.0),
                {**_ledger("APOLLO:001A", "Percent__c", 40.0), "target": "jira"},
            ],
        )
        repo.ledger_put_many(tx, [_ledger("APOLLO:001A", "Percent__c", 55.5, run_id=7)])
    with store.read() as conn:
        got = repo.ledger_get_many(conn, "crm", ["APOLLO:001A", "APOLLO:001B", "NONE"])
    assert got == {
        "APOLLO:001A": {"Percent__c": ("h:55.5", 55.5), "Health__c": ("h:green", "green")},
        "APOLLO:001B": {"Percent__c": ("h:10.0", 10.0)},
    }
    with store.transaction() as tx:
        assert repo.ledger_delete(tx, "crm", "APOLLO:001A", ["Health__c"]) == 1
        assert repo.ledger_delete(tx, "crm", "APOLLO:001B") == 1
    with store.read() as conn:
        assert repo.ledger_get_many(conn, "crm", ["APOLLO:001A", "APOLLO:001B"]) == {
            "APOLLO:001A": {"Percent__c": ("h:55.5", 55.5)}
        }
        assert repo.ledger_get_many(conn, "jira", ["APOLLO:001A"]) != {}


def test_replanning_replaces_the_pending_payload(store: Store) -> None:
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("K1", {"v": 1}), _write("K2", {"v": 1})], now=T0)
        repo.enqueue_many(tx, [_write("K1", {"v": 2})], now=T0)
        repo.enqueue_many(tx, [_write("K1", {"c": "hi"}, op="jira_comment")], now=T0)
    with store.read() as conn:
        rows = repo.due(conn, "crm", T0, 100)
        assert repo.counts(conn)["pending"] == 3
    assert [(r.record_key, r.op, r.payload) for r in rows] == [
        ("K1", "crm_upsert", {"v": 2}),
        ("K2", "crm_upsert", {"v": 1}),
        ("K1", "jira_comment", {"c": "hi"}),
    ]
    assert all(r.payload_hash and r.created_at == T0 for r in rows)


def test_done_rows_are_history_and_a_new_write_gets_a_new_row(store: Store) -> None:
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("K1", {"v": 1})], now=T0)
    with store.read() as conn:
        [row] = repo.due(conn, "crm", T0, 10)
    with store.transaction() as tx:
        repo.mark_inflight(tx, [row.id])
    with store.transaction() as tx:
        repo.mark_done(tx, [row.id], [_ledger("K1", "v", 1)])
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("K1", {"v": 2})], now=T0)
    with store.read() as conn:
        [again] = repo.due(conn, "crm", T0, 10)
        assert again.id != row.id and again.payload == {"v": 2}
        assert repo.counts(conn) == {
            "pending": 1,
            "inflight": 0,
            "done": 1,
            "parked": 0,
            "exhausted": 0,
        }
    with store.transaction() as tx:
        assert repo.prune_done(tx, datetime.now(UTC) - timedelta(days=1)) == 0
        assert repo.prune_done(tx, datetime.now(UTC) + timedelta(seconds=1)) == 1
    with store.read() as conn:
        assert repo.counts(conn)["done"] == 0


def test_mark_done_commits_with_its_ledger_rows_or_not_at_all(store: Store) -> None:
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("K1", {"v": 1})], now=T0)
    with store.read() as conn:
        [row] = repo.due(conn, "crm", T0, 10)
    with store.transaction() as tx:
        repo.mark_inflight(tx, [row.id])

    class Crash(Exception):
        pass

    with pytest.raises(Crash), store.transaction() as tx:
        repo.mark_done(tx, [row.id], [_ledger("K1", "v", 1)])
        raise Crash
    with store.read() as conn:
        assert [r.id for r in repo.inflight(conn)] == [row.id]
        assert repo.ledger_get_many(conn, "crm", ["K1"]) == {}
    with store.transaction() as tx:
        repo.mark_done(tx, [row.id], [_ledger("K1", "v", 1)])
    with store.read() as conn:
        assert repo.inflight(conn) == []
        assert repo.ledger_get_many(conn, "crm", ["K1"]) == {"K1": {"v": ("h:1", 1)}}


def test_inflight_rows_left_by_a_crash_are_listed_not_offered_again(store: Store) -> None:
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("K1", 1), _write("K2", 2)], now=T0)
    with store.read() as conn:
        rows = repo.due(conn, "crm", T0, 10)
    with store.transaction() as tx:
        repo.mark_inflight(tx, [r.id for r in rows])
    # ... the process dies here; the next run finds:
    with store.read() as conn:
        assert [r.record_key for r in repo.inflight(conn)] == ["K1", "K2"]
        assert repo.inflight(conn, "jira") == []
        assert repo.due(conn, "crm", T0 + timedelta(days=1), 10) == []


def test_failed_writes_back_off_then_stay_parked(store: Store) -> None:
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("BAD", {"v": 1}), _write("OK", {"v": 1})], now=T0)
    with store.read() as conn:
        bad = next(r for r in repo.due(conn, "crm", T0, 10) if r.record_key == "BAD")

    def backoff(attempts: int) -> timedelta:
        return timedelta(minutes=10 * attempts)

    now = T0
    for attempt in range(1, 4):
        with store.transaction() as tx:
            repo.mark_inflight(tx, [bad.id])
            assert repo.mark_failed(tx, bad.id, f"rejected #{attempt}", now, backoff) == attempt
        retry_at = now + backoff(attempt)
        with store.read() as conn:
            assert bad.id not in [
                r.id for r in repo.due(conn, "crm", retry_at - timedelta(1), 10, max_attempts=3)
            ]
            offered = [r.id for r in repo.due(conn, "crm", retry_at, 10, max_attempts=3)]
            [listed] = repo.parked(conn)
        assert listed.last_error == f"rejected #{attempt}" and listed.attempts == attempt
        assert listed.next_attempt_at == retry_at
        assert (bad.id in offered) == (attempt < 3)
        now = retry_at
    with store.read() as conn:
        assert (
            repo.due(conn, "crm", now + timedelta(days=365), 10, max_attempts=3)[0].record_key
            == "OK"
        )
        assert repo.counts(conn, max_attempts=3)["exhausted"] == 1
    # Re-planning the same payload keeps the count; a new payload starts afresh.
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("BAD", {"v": 1})], now=now)
    with store.read() as conn:
        [still] = repo.parked(conn)
        assert still.attempts == 3 and still.state == "parked"
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("BAD", {"v": 2})], now=now)
    with store.read() as conn:
        assert repo.parked(conn) == []
        [fresh] = [r for r in repo.due(conn, "crm", now, 10) if r.record_key == "BAD"]
        assert fresh.id == bad.id and fresh.attempts == 0 and fresh.last_error is None


def test_default_backoff_is_exponential_and_capped() -> None:
    waits = [repo.default_backoff(n) for n in range(1, 15)]
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits == sorted(waits)
    assert waits[-1] == timedelta(hours=6)
    assert repo.default_backoff(10_000) == timedelta(hours=6)


def test_retry_parked_and_cancel(store: Store) -> None:
    with store.transaction() as tx:
        repo.enqueue_many(tx, [_write("A", 1), _write("B", 1)], now=T0)
    with store.read() as conn:
        ids = {r.record_key: r.id for r in repo.due(conn, "crm", T0, 10)}
    with store.transaction() as tx:
        for _ in range(repo.MAX_ATTEMPTS):
            repo.mark_failed(tx, ids["A"], "no", T0)
    with store.read() as conn:
        assert [r.record_key for r in repo.due(conn, "crm", T0 + timedelta(days=9), 10)] == ["B"]
    with store.transaction() as tx:
        assert repo.retry_parked(tx, [ids["A"]]) == 1
        assert repo.cancel(tx, "crm", "B") == 1
    with store.read() as conn:
        assert [r.record_key for r in repo.due(conn, "crm", datetime.now(UTC), 10)] == ["A"]
    with store.transaction() as tx, pytest.raises(KeyError):
        repo.mark_failed(tx, 99999, "no such row", T0)


def test_due_filters_by_target_shard_and_limit(store: Store) -> None:
    with store.transaction() as tx:
        repo.enqueue_many(
            tx,
            [_write(f"K{n}", n, shard="jira:APOLLO" if n % 2 else "crm") for n in range(10)]
            + [{"target": "jira", "record_key": "APOLLO-1", "op": "jira_update", "payload": {}}],
            now=T0,
        )
    with store.read() as conn:
        assert len(repo.due(conn, "crm", T0, 3)) == 3
        assert len(repo.due(conn, "crm", T0, 100, shard="crm")) == 5
        assert len(repo.due(conn, "crm", T0, 100, shard=["crm", "jira:APOLLO"])) == 10
        assert [r.record_key for r in repo.due(conn, "jira", T0, 100)] == ["APOLLO-1"]
        assert repo.due(conn, "crm", T0 - timedelta(seconds=1), 100) == []
