"""Migration 0010 on a store of revision 0006 that several serve workers leased shards of:
the ``leases`` table goes with its rows (procrastinate's job locks replace it), nothing
else changes; a downgrade makes the empty table again. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from sync.store import current_revision, head_revision, repo, upgrade
from sync.store.db import alembic_config, create_engine

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)

# ``leases`` as revision 0006 knows it.
_leases_0006 = sa.table(
    "leases",
    sa.column("shard", sa.String),
    sa.column("owner", sa.String),
    sa.column("expires_at", sa.DateTime(timezone=True)),
    sa.column("heartbeat_at", sa.DateTime(timezone=True)),
)


@pytest.fixture
def at_0006(store_url: str) -> Iterator[Engine]:
    engine = create_engine(store_url)
    try:
        upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(
                sa.insert(_leases_0006),
                [
                    {"shard": "crm", "owner": "serve@a:1", "expires_at": T0, "heartbeat_at": T0},
                    {
                        "shard": "jira:APOLLO",
                        "owner": None,
                        "expires_at": None,
                        "heartbeat_at": None,
                    },
                ],
            )
            run_id = repo.start_run(conn, "serve@a:1", started_at=T0)
            repo.finish_run(conn, run_id, status="ok", exit_code=0)
        yield engine
    finally:
        engine.dispose()


def test_upgrade_drops_the_leases_and_keeps_the_rest(at_0006: Engine) -> None:
    upgrade(at_0006)
    assert current_revision(at_0006) == head_revision()
    assert "leases" not in sa.inspect(at_0006).get_table_names()
    with at_0006.connect() as conn:
        [run] = repo.last_runs(conn, 5)
    assert (run.worker, run.status) == ("serve@a:1", "ok")


def test_downgrade_makes_the_empty_table_again(at_0006: Engine) -> None:
    upgrade(at_0006)
    with at_0006.begin() as conn:
        command.downgrade(alembic_config(conn), "0006")
    assert current_revision(at_0006) == "0006"
    columns = {c["name"] for c in sa.inspect(at_0006).get_columns("leases")}
    assert columns == {"shard", "owner", "expires_at", "heartbeat_at"}
    with at_0006.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(_leases_0006)).scalar() == 0
    upgrade(at_0006)
    assert "leases" not in sa.inspect(at_0006).get_table_names()
