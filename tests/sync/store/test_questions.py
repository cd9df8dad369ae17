"""The questions push, derive, reconcile and status ask of the store, which they used to
answer with SQL of their own: each is a repository function now, pinned here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.store import Store, repo
from sync.store.db import display_url
from sync.store.repo import OutboxRow
from sync.store.repo.runs import database_now

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _write(target: str, key: str, shard: str, **payload: object) -> OutboxRow:
    op = "jira_update" if target == "jira" else "crm_upsert"
    return {"target": target, "record_key": key, "op": op, "payload": payload, "shard": shard}


def _queue(store: Store) -> dict[str, int]:
    """Jira writes in three states and two shards, and CRM writes; ids by record key."""
    with store.transaction() as tx:
        repo.enqueue_many(
            tx,
            [
                _write("jira", "A-1", "jira:A"),
                _write("jira", "A-2", "jira:A", verify=True),
                _write("jira", "A-3", "jira:A"),
                _write("jira", "B-1", "jira:B"),
                _write("crm", "A:001", "crm"),
                _write("crm", "A:002", "crm"),
            ],
            now=T0,
        )
        ids = {e.record_key: e.id for e in repo.unfinished(tx)}
        repo.mark_inflight(tx, [ids["A-3"]], now=T0)
        repo.mark_failed(tx, ids["B-1"], "rejected", T0)  # due again a minute later
        repo.mark_failed(tx, ids["A:002"], "rejected", T0, backoff=lambda _n: timedelta(0))
    return ids


def test_due_count_is_what_due_hands_out(store: Store) -> None:
    _queue(store)
    later = T0 + timedelta(hours=1)
    with store.read() as conn:
        for target in ("jira", "crm"):
            for now in (T0, later):
                for shard in (None, ["jira:A"], ["jira:B", "crm"], "crm"):
                    due = repo.due(conn, target, now, 100, shard=shard)
                    assert repo.due_count(conn, target, now, shard=shard) == len(due)
        assert repo.due_count(conn, "jira", T0) == 2  # A-1, A-2 (B-1 backs off)
        assert repo.due_count(conn, "jira", later) == 3
        assert repo.due_count(conn, "crm", T0, max_attempts=1) == 1  # A:002 used its one


def test_writes_that_may_have_reached_the_remote(store: Store) -> None:
    _queue(store)
    with store.read() as conn:
        # In flight, or a re-plan marked to verify; never a done one.
        assert repo.maybe_sent_keys(conn, "jira") == {"A-2", "A-3"}
        assert repo.maybe_sent_keys(conn, "jira", ["jira:B"]) == set()
        assert repo.maybe_sent_keys(conn, "crm") == set()


def test_outbox_counts_per_side_and_parked_writes_retried_at_a_given_time(store: Store) -> None:
    ids = _queue(store)
    with store.read() as conn:
        assert repo.counts_by_target(conn, max_attempts=1) == {
            "crm": {"pending": 1, "inflight": 0, "parked": 1, "exhausted": 1, "done": 0},
            "jira": {"pending": 2, "inflight": 1, "parked": 1, "exhausted": 1, "done": 0},
        }
        parked = repo.parked_refs(conn)
    assert [(p.target, p.record_key, p.state) for p in parked] == [
        ("jira", "B-1", "parked"),
        ("crm", "A:002", "parked"),
    ]
    when = T0 - timedelta(days=1)  # e.g. a reconcile's own clock
    with store.transaction() as tx:
        assert repo.retry_parked(tx, [ids["B-1"], ids["A-1"]], now=when) == 1  # A-1 not parked
    with store.read() as conn:
        [b1] = [e for e in repo.unfinished(conn) if e.record_key == "B-1"]
        assert repo.counts_by_target(conn)["jira"]["exhausted"] == 0
    assert (b1.attempts, b1.next_attempt_at, b1.updated_at) == (0, when, when)


def test_live_ids_cases_and_ledger_values(store: Store) -> None:
    with store.transaction() as tx:
        repo.upsert_customers(
            tx, [{"id": i, "modstamp": T0, "data": {"Id": i}} for i in ("001A", "001B")]
        )
        repo.mark_customers_deleted(tx, ["001B"], at=T0)
        repo.upsert_cases(
            tx,
            [
                {"id": "500B", "customer_id": "001A", "is_closed": False, "modstamp": T0},
                {
                    "id": "500A",
                    "customer_id": None,
                    "is_closed": True,
                    "is_escalated": True,
                    "modstamp": T0,
                },
                {"id": "500C", "customer_id": "001A", "is_closed": False, "modstamp": T0},
            ],
        )
        repo.mark_cases_deleted(tx, ["500C"])
        repo.upsert_surveys(
            tx,
            [
                {"id": s, "customer_id": "001A", "score": 4.0, "responded_at": T0, "modstamp": T0}
                for s in ("0A1", "0A2")
            ],
        )
        repo.mark_surveys_deleted(tx, ["0A1"])
        repo.ledger_put_many(
            tx,
            [
                {"target": t, "record_key": k, "field": f, "value_hash": "h", "value": v}
                for t, k, f, v in [
                    ("jira", "A-1", "*", {"label": "x"}),
                    ("jira", "A-2", "Other", 1),
                    ("crm", "A:001A", "*", None),
                ]
            ],
        )
    with store.read() as conn:
        assert repo.live_customer_ids(conn) == {"001A"}
        assert repo.live_case_ids(conn) == {"500A", "500B"}
        assert repo.live_survey_ids(conn) == {"0A2"}
        assert [
            (c.id, c.customer_id, c.is_closed, c.is_escalated) for c in repo.iter_cases(conn)
        ] == [
            ("500A", None, True, True),
            ("500B", "001A", False, False),
        ]
        assert repo.ledger_values(conn, "jira", "*") == {"A-1": {"label": "x"}}
        assert repo.ledger_values(conn, "crm", "*") == {"A:001A": None}


def test_the_database_clock_and_the_url_shown(store: Store) -> None:
    with store.read() as conn:
        now = database_now(conn)
    if store.dialect == "postgresql":
        assert now is not None and abs(now - datetime.now(UTC)) < timedelta(minutes=5)
    else:
        assert now is None  # SQLite: the caller's clock stands in
    shown = display_url("postgresql+psycopg://sync:s3cret@db.example/state")
    assert shown == "postgresql+psycopg://sync:***@db.example/state"
