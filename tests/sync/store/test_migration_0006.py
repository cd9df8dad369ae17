"""Migration 0006 on a store written by the schema before it (revision 0005): the runs
recorded there keep everything and have no failed stage; a run recorded after says the
stage it failed in; a downgrade drops the column and keeps the runs. SQLite and
PostgreSQL."""

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

# ``runs`` as revision 0005 knows it (not sync.store.schema, which moves on).
_runs_0005 = sa.table(
    "runs",
    sa.column("id", sa.Integer),
    sa.column("worker", sa.String),
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("finished_at", sa.DateTime(timezone=True)),
    sa.column("status", sa.String),
    sa.column("exit_code", sa.Integer),
    sa.column("dry_run", sa.Boolean),
    sa.column("full", sa.Boolean),
    sa.column("error", sa.Text),
)


@pytest.fixture
def at_0005(store_url: str) -> Iterator[Engine]:
    engine = create_engine(store_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            conn.execute(
                sa.insert(_runs_0005),
                [
                    {
                        "id": 1,
                        "worker": "run@host:1",
                        "started_at": T0,
                        "finished_at": T0,
                        "status": "failed",
                        "exit_code": 3,
                        "dry_run": False,
                        "full": False,
                        "error": "jira answered 502",
                    },
                    {
                        "id": 2,
                        "worker": "run@host:2",
                        "started_at": T0,
                        "finished_at": None,
                        "status": "running",
                        "exit_code": None,
                        "dry_run": False,
                        "full": True,
                        "error": None,
                    },
                ],
            )
        yield engine
    finally:
        engine.dispose()


def test_upgrade_keeps_the_runs_and_records_the_failed_stage_after(at_0005: Engine) -> None:
    upgrade(at_0005)
    assert current_revision(at_0005) == head_revision()
    with at_0005.connect() as conn:
        old = repo.get_run(conn, 1)
        assert old is not None
        assert (old.status, old.exit_code, old.error, old.failed_stage) == (
            "failed",
            3,
            "jira answered 502",
            None,
        )
    with at_0005.begin() as conn:
        repo.finish_run(conn, 2, status="failed", exit_code=3, error="no", stage="push")
    with at_0005.connect() as conn:
        new = repo.get_run(conn, 2)
        assert new is not None and (new.status, new.failed_stage) == ("failed", "push")


def test_downgrade_drops_the_column_and_keeps_the_runs(at_0005: Engine) -> None:
    upgrade(at_0005)
    with at_0005.begin() as conn:
        repo.finish_run(conn, 2, status="failed", exit_code=3, error="no", stage="push")
        command.downgrade(alembic_config(conn), "0005")
    assert current_revision(at_0005) == "0005"
    columns = {c["name"] for c in sa.inspect(at_0005).get_columns("runs")}
    assert "failed_stage" not in columns and "error" in columns
    with at_0005.connect() as conn:
        rows = conn.execute(sa.select(_runs_0005.c.id, _runs_0005.c.status)).all()
    assert sorted(rows) == [(1, "failed"), (2, "failed")]
    upgrade(at_0005)  # and up again
    assert current_revision(at_0005) == head_revision()
