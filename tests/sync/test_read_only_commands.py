"""`run --dry-run` and `reconcile` without --apply write nothing, not even the state store:
a store that does not exist yet is not created (the plan is that of a first sync, from an
empty store in memory), an empty database is not migrated, and a store at an older
schema is left at it (exit 2: `jira-crm-sync db upgrade`). Commands run in-process
(typer's runner) over the HTTPS sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.sandbox.server import Tls
from sync.store import current_revision, head_revision, upgrade
from sync.store.db import create_engine, sqlite_path
from tests.sync.e2e import ANCHOR, SyncEnv, calls, make_sandbox, sync_env
from tests.sync.e2e import cli_in_process as cli


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    box = make_sandbox(40, 8, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, store_url, tls) as opened:
        yield opened


def _what_exists(url: str) -> list[str]:
    """The files of a SQLite store (the database and its -wal, -shm, .lock), or the tables
    of a PostgreSQL schema, without creating anything."""
    path = sqlite_path(url)
    if path is not None:
        return sorted(p.name for p in path.parent.glob(path.name + "*"))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_a_dry_run_and_a_plain_reconcile_create_no_store(env: SyncEnv) -> None:
    assert _what_exists(env.store_url) == []

    code, out, err = cli(env, "run", "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)["plan"]
    assert plan["crm"] and plan["jira"]  # a first sync's plan: every report is new
    code, text, err = cli(env, "run", "--dry-run")
    assert code == 0 and "dry run: nothing was written" in text, err
    code, out, err = cli(env, "reconcile", "--json")
    assert code == 0, err
    assert json.loads(out)["counts"]["drift"] > 0  # nothing was ever written there

    assert calls(env.box).writes == 0
    assert _what_exists(env.store_url) == []
    if (path := sqlite_path(env.store_url)) is not None:
        assert not path.parent.exists() or not any(path.parent.iterdir())

    # A real run then creates it, as before.
    assert cli(env, "run")[0] == 0
    assert _what_exists(env.store_url) != []


def test_a_store_at_an_older_schema_is_left_at_it(env: SyncEnv) -> None:
    engine = create_engine(env.store_url)
    try:
        upgrade(engine, "0003")
    finally:
        engine.dispose()

    for args in (("run", "--dry-run"), ("reconcile",), ("reconcile", "--json")):
        code, out, err = cli(env, *args)
        assert (code, out) == (2, ""), err
        assert "is at schema 0003" in err and "run `jira-crm-sync db upgrade`" in err
        assert "Traceback" not in err
    engine = create_engine(env.store_url)
    try:
        assert current_revision(engine) == "0003"
    finally:
        engine.dispose()
    assert calls(env.box).writes == 0

    # Upgraded, the dry run reads it.
    assert cli(env, "db", "upgrade")[0] == 0
    engine = create_engine(env.store_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    assert cli(env, "run", "--dry-run")[0] == 0
