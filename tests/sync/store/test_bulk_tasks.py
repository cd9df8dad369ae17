"""The bulk tasks in flight (sync/store/repo/tasks.py, migration 0008): recorded, listed by
shard, deleted; the outbox rows and Jira issue ids a settle reads; the migration adds and
drops the table. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from sync.store import Store, repo
from sync.store.db import alembic_config, create_engine, current_revision, upgrade

T0 = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


def test_a_task_is_recorded_listed_by_shard_and_deleted(store: Store) -> None:
    with store.transaction() as tx:
        repo.upsert_items(
            tx,
            [
                {"key": "A-1", "project_key": "A", "issue_id": "10001", "updated": T0, "data": {}},
                {"key": "A-2", "project_key": "A", "updated": T0, "data": {}},  # no id known
            ],
        )
        repo.enqueue_many(
            tx,
            [
                {"target": "jira", "record_key": "A-1", "op": "jira_update", "payload": {"n": 1}},
                {"target": "jira", "record_key": "A-2", "op": "jira_update", "payload": {"n": 2}},
            ],
            now=T0,
        )
    with store.read() as conn:
        rows = repo.unfinished(conn)
        assert repo.issue_ids(conn, ["A-1", "A-2", "B-9"]) == {"A-1": "10001"}
    pairs = [(e.id, e.payload_hash) for e in rows]
    with store.transaction() as tx:
        repo.bulk_task_put(tx, "77", "jira", pairs, ["A-1", "A-2"], ["jira:A", None], now=T0)
    with store.read() as conn:
        (task,) = repo.bulk_tasks_open(conn, "jira")
        assert (task.task_id, task.outbox_ids, task.shards) == ("77", tuple(pairs), ("jira:A",))
        assert task.submitted_at == T0
        assert repo.bulk_tasks_open(conn, "jira", ["jira:B"]) == []
        assert repo.bulk_tasks_open(conn, "crm") == []
        assert [e.record_key for e in repo.outbox_rows(conn, [rows[1].id, 999])] == ["A-2"]
    with store.transaction() as tx:
        repo.mark_done(tx, [rows[0].id], now=T0)
        repo.bulk_task_delete(tx, "77")
    with store.read() as conn:
        assert repo.bulk_tasks_open(conn, "jira") == []
        assert [e.record_key for e in repo.outbox_rows(conn, [r.id for r in rows])] == ["A-2"]


def test_migration_0008_adds_and_drops_the_table(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        upgrade(engine, "0006")
        assert "bulk_tasks" not in sa.inspect(engine).get_table_names()
        upgrade(engine, "0008")
        assert current_revision(engine) == "0008"
        assert "bulk_tasks" in sa.inspect(engine).get_table_names()
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0006")
        assert "bulk_tasks" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
