"""Quarantined records and link problems in the state store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync.store import Store, repo

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_quarantine_counts_attempts_and_releases(store: Store) -> None:
    row: repo.QuarantineRow = {
        "side": "salesforce",
        "kind": "Account",
        "record_id": "001A",
        "reason": "CSAT__c is 'high', not a number",
    }
    with store.transaction() as tx:
        repo.quarantine_records(tx, [row], at=T0)
    with store.transaction() as tx:
        repo.quarantine_records(tx, [{**row, "reason": "CSAT__c is 'x'"}], at=T0 + timedelta(1))
        repo.quarantine_records(
            tx, [{"side": "jira", "kind": "issue", "record_id": "A-1", "reason": "r"}], at=T0
        )
    with store.read() as conn:
        records = repo.iter_quarantined(conn)
        assert repo.count_quarantined(conn) == 2
        assert repo.quarantined_ids(conn, "salesforce") == {"Account": ["001A"]}
    first = records[0]
    assert (first.record_id, first.reason, first.attempts) == ("001A", "CSAT__c is 'x'", 2)
    assert first.first_seen_at == T0 and first.last_seen_at == T0 + timedelta(1)
    with store.transaction() as tx:
        assert repo.release_quarantined(tx, "salesforce", "Account", ["001A", "001B"]) == 1
    with store.read() as conn:
        assert repo.quarantined_ids(conn, "salesforce") == {}
        assert repo.count_quarantined(conn) == 1


def test_link_problems_are_replaced_per_project(store: Store) -> None:
    with store.transaction() as tx:
        repo.set_link_problems(
            tx,
            "APOLLO",
            [
                {"item_key": "APOLLO-1", "reason": "not an id: 'acme'", "linked_by": "static"},
                {"item_key": "APOLLO-2", "reason": "unknown account", "linked_by": None},
            ],
            at=T0,
        )
        repo.set_link_problems(
            tx, "ORION", [{"item_key": "ORION-9", "reason": "r", "linked_by": None}], at=T0
        )
    with store.transaction() as tx:
        repo.set_link_problems(
            tx, "APOLLO", [{"item_key": "APOLLO-2", "reason": "r2", "linked_by": None}], at=T0
        )
    with store.read() as conn:
        listed = [(p.project_key, p.item_key, p.reason) for p in repo.iter_link_problems(conn)]
        assert repo.count_link_problems(conn) == 2
    assert listed == [("APOLLO", "APOLLO-2", "r2"), ("ORION", "ORION-9", "r")]
