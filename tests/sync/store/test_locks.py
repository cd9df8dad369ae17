"""The run lock (one cycle at a time per store), and on PostgreSQL the same lock held shared
by serve's shard jobs; what `run` owns through it is tested in
tests/sync/cycle/test_ownership.py, the jobs in tests/sync/test_serve.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.store.db import Store, StoreError, create_engine
from sync.store.locks import (
    LockHeld,
    lock_path,
    pg_lock_holders,
    run_lock,
    session_name,
    shard_lock,
)

ROOT = Path(__file__).resolve().parents[3]

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from sync.store.db import create_engine
    from sync.store.locks import LockHeld, run_lock

    engine = create_engine(sys.argv[1])
    try:
        with run_lock(engine, sys.argv[2]):
            print("locked", flush=True)
            if sys.argv[2] == "holder":
                time.sleep(120)  # until the test kills it
    except LockHeld as err:
        print(err, flush=True)
        sys.exit(4)
    """
)


def _python(url: str, role: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, role],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.fixture
def holder(store: Store) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run lock of ``store`` (killed afterwards)."""
    proc = _python(store.engine.url.render_as_string(hide_password=False), "holder")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def _lock_soon(store: Store, seconds: float = 15.0) -> None:
    """Take and drop the lock, retrying while a killed holder's session is torn down."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with run_lock(store.engine, "after"):
                return
        except LockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_second_run_fails_at_once_while_another_process_holds_the_lock(
    store: Store, holder: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(LockHeld) as caught, run_lock(store.engine, "second"):
        pytest.fail("acquired a held lock")
    assert time.monotonic() - started < 5, "run_lock must not wait for the holder"
    message = str(caught.value)
    assert "another run holds the lock" in message
    assert f"pid={holder.pid}" in message or f"pid {holder.pid}" in message
    assert "wait for it to finish" in message

    second = _python(store.engine.url.render_as_string(hide_password=False), "second")
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 4
    assert "another run holds the lock" in out


def test_a_lock_held_by_a_killed_process_is_free_again(
    store: Store, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(LockHeld), run_lock(store.engine, "second"):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    _lock_soon(store)


def test_the_lock_is_released_on_exit_and_on_error(store: Store) -> None:
    with run_lock(store.engine, "first"), pytest.raises(LockHeld):  # noqa: SIM117
        with run_lock(store.engine, "nested"):
            pass
    with pytest.raises(RuntimeError), run_lock(store.engine, "fails"):
        raise RuntimeError("cycle failed")
    with run_lock(store.engine, "again"):
        pass


def test_sqlite_lock_file_sits_next_to_the_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with run_lock(engine, "me"):
        info = lock_path(tmp_path / "state.db").read_text()
        assert f'"pid": {os.getpid()}' in info and '"holder": "me"' in info
    assert lock_path(tmp_path / "state.db").read_text() == ""
    engine.dispose()


def test_in_memory_sqlite_locks_within_the_process() -> None:
    engine = create_engine("sqlite://")
    with run_lock(engine, "me"), pytest.raises(LockHeld), run_lock(engine, "other"):
        pass
    with run_lock(engine, "me"):
        pass


def test_unwritable_lock_file_is_a_clear_error(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    lock_path(tmp_path / "state.db").mkdir()  # a directory where the lock file should be
    with pytest.raises(StoreError, match="lock file"), run_lock(engine, "me"):
        pass
    engine.dispose()


# --- shard jobs: the lock shared ------------------------------------------------------------


def test_on_sqlite_a_shard_job_takes_the_run_lock(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with shard_lock(engine, "serve@here:1"), pytest.raises(LockHeld), run_lock(engine, "run"):
        pass
    engine.dispose()


@pytest.fixture
def pg_store(pg_schema_url: str) -> Iterator[Store]:
    from sync.store.db import open_store

    opened = open_store(pg_schema_url, pool_size=20)
    try:
        yield opened
    finally:
        opened.close()


def _names(store: Store) -> list[str]:
    with store.read() as conn:
        return sorted(h.application_name or "" for h in pg_lock_holders(conn))


@pytest.mark.postgres
def test_shard_jobs_hold_the_lock_together_and_a_run_is_refused_meanwhile(
    pg_store: Store,
) -> None:
    engine = pg_store.engine
    with shard_lock(engine, "serve@a:1"), shard_lock(engine, "serve@b:2"):
        assert _names(pg_store) == [session_name("serve@a:1"), session_name("serve@b:2")]
        with pytest.raises(LockHeld, match="serve@a:1"), run_lock(engine, "run@c:3"):
            pytest.fail("a run took the lock while shard jobs held it")
    assert _names(pg_store) == []
    with run_lock(engine, "run@c:3"):
        with pytest.raises(LockHeld, match="run@c:3"), shard_lock(engine, "serve@a:1"):
            pytest.fail("a shard job ran while a run held the store")
        assert _names(pg_store) == [session_name("run@c:3")]
    with shard_lock(engine, "serve@a:1"):
        pass


@pytest.mark.postgres
def test_a_lock_whose_session_ended_says_so(pg_store: Store) -> None:
    engine = pg_store.engine
    with run_lock(engine, "reconcile@here:7") as lock:
        lock.check()  # held
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :n"
                ),
                {"n": session_name("reconcile@here:7")},
            )
        with pytest.raises(LockHeld, match="lock was lost"):
            lock.check()
