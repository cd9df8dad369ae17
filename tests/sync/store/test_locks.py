"""The run lock (one cycle at a time per store) and shard leases on PostgreSQL, the store's
primitives; what a worker owns through them is tested in tests/sync/cycle/test_ownership.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.store.db import Store, StoreError, create_engine
from sync.store.locks import LockHeld, lock_path, run_lock
from sync.store.repo.leases import lease_shards, list_leases, live_leases, release, renew

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


# --- leases ------------------------------------------------------------------------------------


def test_sqlite_lock_holder_owns_every_shard(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    shards = ["jira:B", "crm", "jira:A"]
    assert lease_shards(engine, "w1", shards, ttl=60, limit=1) == ["crm", "jira:A", "jira:B"]
    assert renew(engine, "w1", shards, ttl=60) == ["crm", "jira:A", "jira:B"]
    assert release(engine, "w1") == 0
    assert list_leases(engine) == []
    engine.dispose()


@pytest.fixture
def pg_store(pg_schema_url: str) -> Iterator[Store]:
    from sync.store.db import open_store

    opened = open_store(pg_schema_url, pool_size=20)
    try:
        yield opened
    finally:
        opened.close()


def _lease_at_once(
    engine: sa.Engine, owners: list[str], shards: list[str], limit: int
) -> dict[str, list[str]]:
    """Every owner leases from ``shards`` at the same moment, each on its own thread."""
    barrier = threading.Barrier(len(owners))
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(owner: str) -> None:
        try:
            barrier.wait()
            got[owner] = lease_shards(engine, owner, shards, ttl=300, limit=limit)
        except BaseException as err:  # re-raised below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return got


@pytest.mark.postgres
def test_concurrent_workers_never_lease_the_same_shard(pg_store: Store) -> None:
    workers, limit = 8, 30
    rounds: list[dict[str, list[str]]] = []
    for round_ in range(5):
        # Fresh shard names each round, so the workers also race to create the rows.
        shards = [f"jira:P{round_}-{n:03d}" for n in range(200 if round_ else 100)]
        owners = [f"w{round_}-{n}" for n in range(workers)]
        got = _lease_at_once(pg_store.engine, owners, shards, limit)
        rounds.append(got)
        held = [shard for mine in got.values() for shard in mine]
        assert len(held) == len(set(held)), "a shard was leased by two workers"
        assert len(held) == min(len(shards), limit * workers)
        owner_of = {lease.shard: lease.owner for lease in list_leases(pg_store.engine)}
        for owner, mine in got.items():
            assert all(owner_of[shard] == owner for shard in mine)
    # Rows that exist, some free again: the free ones go, each to one worker only.
    busiest = sorted(rounds[0], key=lambda owner: -len(rounds[0][owner]))[:2]
    freed = [shard for owner in busiest for shard in rounds[0][owner]]
    assert sum(release(pg_store.engine, owner) for owner in busiest) == len(freed) > 0
    all_round0 = [f"jira:P0-{n:03d}" for n in range(100)]
    got = _lease_at_once(pg_store.engine, ["x", "y", "z"], all_round0, 100)
    held = [shard for mine in got.values() for shard in mine]
    assert len(held) == len(set(held))
    assert sorted(held) == sorted(freed)


@pytest.mark.postgres
def test_expired_leases_are_taken_over(pg_store: Store) -> None:
    engine = pg_store.engine
    shards = ["crm", "jira:APOLLO", "jira:BOREAS"]
    start = datetime.now(UTC)
    assert lease_shards(engine, "alive", shards, ttl=60, now=start) == sorted(shards)
    later = start + timedelta(seconds=59)
    assert lease_shards(engine, "other", shards, ttl=60, now=later) == []
    assert [r.owner for r in live_leases(engine, now=later)] == ["alive"] * 3
    # "alive" died and stopped renewing: a minute on, its leases have run out
    gone = start + timedelta(seconds=61)
    assert live_leases(engine, now=gone) == []
    assert lease_shards(engine, "other", shards, ttl=60, now=gone) == sorted(shards)
    assert renew(engine, "alive", shards, ttl=60, now=gone) == []
    assert {lease.owner for lease in list_leases(engine)} == {"other"}
    assert {lease.expires_at for lease in list_leases(engine)} == {gone + timedelta(seconds=60)}


@pytest.mark.postgres
def test_a_worker_keeps_its_own_shards_first(pg_store: Store) -> None:
    engine = pg_store.engine
    shards = [f"jira:P{n}" for n in range(6)]
    mine = lease_shards(engine, "w1", shards[3:], ttl=60)
    assert lease_shards(engine, "w1", shards, ttl=60, limit=3) == mine
    assert lease_shards(engine, "w2", shards, ttl=60, limit=2) == ["jira:P0", "jira:P1"]


@pytest.mark.postgres
def test_renew_extends_and_release_frees(pg_store: Store) -> None:
    engine = pg_store.engine
    shards = ["crm", "jira:APOLLO"]
    lease_shards(engine, "w1", shards, ttl=10)
    before = {lease.shard: lease.expires_at for lease in list_leases(engine)}
    assert renew(engine, "w1", [*shards, "jira:NOT-MINE"], ttl=3600) == shards
    after = {lease.shard: lease.expires_at for lease in list_leases(engine)}
    for shard in shards:
        old, new = before[shard], after[shard]
        assert old is not None and new is not None
        assert new - old > timedelta(seconds=3000)
    assert lease_shards(engine, "w2", shards, ttl=60) == []
    assert release(engine, "w1", ["crm"]) == 1
    assert lease_shards(engine, "w2", shards, ttl=60) == ["crm"]
    assert release(engine, "w1") == 1
    assert lease_shards(engine, "w2", shards, ttl=60) == shards
