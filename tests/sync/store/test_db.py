"""Opening the store: default path, SQLite pragmas, migrations, unusable paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sync.store import repo
from sync.store.db import (
    Store,
    StoreError,
    create_engine,
    current_revision,
    default_state_path,
    default_url,
    head_revision,
    open_store,
    upgrade,
)
from sync.store.schema import jira_items, metadata


def _tables(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_default_path_is_in_the_users_state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_path() == tmp_path / "xdg" / "jira-crm-sync" / "state.db"
    assert default_url() == f"sqlite:///{tmp_path}/xdg/jira-crm-sync/state.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_path() == tmp_path / "home/.local/state/jira-crm-sync/state.db"


def test_default_store_is_created_with_its_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    store = open_store()
    try:
        assert store.path == tmp_path / "xdg" / "jira-crm-sync" / "state.db"
        assert store.path.is_file()
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with store.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        store.close()


def test_first_use_of_an_empty_database_creates_the_schema(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()
    store = open_store(store_url)
    try:
        assert current_revision(store.engine) == head_revision()
        assert set(metadata.tables) <= _tables(store)
    finally:
        store.close()


def test_upgrade_of_an_up_to_date_database_is_a_no_op(store: Store) -> None:
    with store.transaction() as tx:
        repo.set_cursor(tx, "jira", "issues", {"updated": 1})
    before = _tables(store)
    upgrade(store.engine)
    reopened = open_store(store.engine.url)
    try:
        assert current_revision(reopened.engine) == head_revision()
        assert _tables(reopened) == before
        with reopened.read() as conn:
            assert repo.get_cursor(conn, "jira", "issues") == {"updated": 1}
    finally:
        reopened.close()


def _diffs(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_migrations_match_the_schema_module(store: Store) -> None:
    assert _diffs(store) == []


def test_the_schema_comparison_does_see_a_difference(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute(sa.text("DROP INDEX ix_jira_items_project_key_deleted"))
    assert any("ix_jira_items_project_key_deleted" in repr(diff) for diff in _diffs(store))


def test_datetimes_come_back_tz_aware_utc(store: Store) -> None:
    cet = timezone(timedelta(hours=1))
    updated = datetime(2025, 3, 1, 10, 30, 15, 123000, tzinfo=cet)
    with store.transaction() as tx:
        repo.upsert_items(
            tx, [{"key": "A-1", "project_key": "A", "updated": updated, "data": {"x": 1}}]
        )
    with store.read() as conn:
        [item] = repo.iter_items(conn)
    assert item.updated == updated
    assert item.updated is not None and item.updated.tzinfo == UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"), store.transaction() as tx:
        repo.upsert_items(
            tx, [{"key": "A-1", "project_key": "A", "updated": datetime(2025, 1, 1), "data": {}}]
        )
    with pytest.raises(sa.exc.StatementError, match="naive"), store.transaction() as tx:
        tx.execute(
            sa.insert(jira_items).values(
                key="A-2", project_key="A", updated=datetime.now(), data={}
            )
        )


def test_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    path = blocker / "jira-crm-sync" / "state.db"
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{path}")
    message = str(caught.value)
    assert str(blocker / "jira-crm-sync") in message
    assert "[state].url" in message


def test_unwritable_system_path_is_a_clear_error() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("sqlite:////proc/jira-crm-sync/state.db")
    assert "/proc/jira-crm-sync" in str(caught.value)
    assert "writable location" in str(caught.value)


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable: by its mode, or for root (who ignores modes) immutable."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("running as root, and chattr +i is not available to make a file read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_read_only_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    open_store(f"sqlite:///{path}").close()
    with _read_only(path), pytest.raises(StoreError, match="read-only") as caught:
        open_store(f"sqlite:///{path}")
    assert str(path) in str(caught.value)
    assert "writable location" in str(caught.value)


def test_read_only_file_found_by_sqlite_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the up-front check cannot tell (e.g. a read-only mount), SQLite's own refusal
    to write becomes the same StoreError, at the first write transaction."""
    path = tmp_path / "state.db"
    open_store(f"sqlite:///{path}").close()
    with _read_only(path):
        monkeypatch.setattr("sync.store.db.os.access", lambda *_args, **_kw: True)
        store = open_store(f"sqlite:///{path}")
        try:
            with pytest.raises(StoreError) as caught, store.transaction() as tx:
                repo.set_cursor(tx, "jira", "issues", 1)
        finally:
            store.close()
    assert str(path) in str(caught.value)
    assert "writable location" in str(caught.value)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a SQLite database, just some bytes" * 100)
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{path}")
    assert str(path) in str(caught.value)


def test_database_with_foreign_tables_is_refused(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE something_else (id INTEGER PRIMARY KEY)")
    engine.dispose()
    with pytest.raises(StoreError, match="something_else"):
        open_store(store_url)


def test_database_from_a_newer_version_is_refused(store: Store) -> None:
    with store.transaction() as tx:
        tx.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="upgrade the program"):
        open_store(store.engine.url)


def test_database_at_an_older_revision_asks_for_db_upgrade_which_upgrades_it(
    store_url: str,
) -> None:
    engine = create_engine(store_url)
    upgrade(engine, "0001")
    engine.dispose()
    with pytest.raises(StoreError, match="jira-crm-sync db upgrade"):
        open_store(store_url)
    engine = create_engine(store_url)
    upgrade(engine)  # what `db upgrade` runs
    assert current_revision(engine) == head_revision()
    engine.dispose()
    open_store(store_url).close()


def test_unsupported_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"\[state\]\.url"):
        open_store("mysql://somewhere/db")


def test_several_openers_of_an_empty_database_at_once(store_url: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait()
            open_store(store_url).close()
        except BaseException as err:  # re-raised below
            errors.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    engine = create_engine(store_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_missing_postgres_schema_is_a_clear_error(pg_schema_url: str) -> None:
    url = pg_schema_url.replace("jcs_test_", "jcs_missing_")
    with pytest.raises(StoreError, match=r"\[state\]\.url"):
        open_store(url)
