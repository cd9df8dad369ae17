"""What a worker may work on (sync.cycle.ownership): the run lock on a SQLite file, the fair
share of shard leases on PostgreSQL, every shard for reconcile; expiry, renewal, takeover
by another worker and give-back proved with an injected clock, never by waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync.config import Config, load_config
from sync.cycle.ownership import (
    WORKER_PREFIX,
    AllLeased,
    Assignment,
    everything,
    give_back,
    ownership,
)
from sync.store import LockHeld, Store
from sync.store.repo.leases import list_leases, live_leases

EXAMPLE = Path(__file__).resolve().parents[3] / "config.example.toml"
ENV = {"JIRA_API_TOKEN": "jira-secret", "SALESFORCE_CONSUMER_KEY": "ck-secret"}
TTL = 300  # [serve] lease_seconds of the example config
#: far apart enough that no renewal thread beats during a test unless it asks for one
NEVER = 3600.0


class Clock:
    """A ``now()`` the test moves by hand; ``ticked`` is set when it is read while armed."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.ticked = threading.Event()
        self.armed = False

    def __call__(self) -> datetime:
        if self.armed:
            self.ticked.set()
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Three shards: ``crm``, ``jira:APOLLO`` and ``jira:ORION``."""
    return load_config(EXAMPLE, environ=ENV)


@pytest.fixture
def clock() -> Clock:
    # The database's clock, give or take: leases written by the test look live to a reader
    # that uses the real one (status), as they would in production.
    return Clock(datetime.now(UTC).replace(microsecond=0))


def _holders(store: Store, clock: Clock) -> dict[str, str]:
    """Shard -> owner of every lease live at the clock's now (presence shards left out)."""
    return {
        r.shard: str(r.owner)
        for r in live_leases(store.engine, now=clock())
        if not r.shard.startswith(WORKER_PREFIX)
    }


# --- on every store -----------------------------------------------------------------------------


def test_one_worker_owns_everything_and_a_second_gets_lock_held(
    store: Store, config: Config, clock: Clock
) -> None:
    every_shard = (
        Assignment(crm=True, projects=("APOLLO", "ORION"))
        if store.dialect == "postgresql"
        else everything()
    )
    with ownership(store, config, "w1", clock=clock, renew_every=NEVER) as held:
        assert held.work == every_shard
        with pytest.raises(LockHeld), ownership(store, config, "w2", clock=clock):
            pytest.fail("two workers owned the same work")
    # given back when the body ended: the next worker has it at once, no waiting
    with ownership(store, config, "w2", clock=clock, renew_every=NEVER) as held:
        assert not held.work.empty
    assert _holders(store, clock) == {}


def test_what_is_owned_is_given_back_when_the_body_fails(
    store: Store, config: Config, clock: Clock
) -> None:
    with pytest.raises(RuntimeError), ownership(store, config, "w1", clock=clock):
        raise RuntimeError("the cycle broke")
    with ownership(store, config, "w2", clock=clock, renew_every=NEVER) as held:
        assert not held.work.empty


def test_reconcile_owns_the_whole_store_or_nothing(
    store: Store, config: Config, clock: Clock
) -> None:
    with ownership(store, config, "serve-1", clock=clock, renew_every=NEVER):
        with (
            pytest.raises(LockHeld) as caught,
            ownership(store, config, "reconcile", whole=True, clock=clock),
        ):
            pytest.fail("reconcile owned a store a worker was using")
        assert not isinstance(caught.value, AllLeased)
    # and a refused reconcile held on to nothing
    assert "reconcile" not in _holders(store, clock).values()
    with ownership(store, config, "reconcile", whole=True, clock=clock, renew_every=NEVER) as held:
        held.still_mine()
        if store.dialect == "postgresql":
            assert sorted(held.shards) == ["crm", "jira:APOLLO", "jira:ORION"]
            assert set(_holders(store, clock).values()) == {"reconcile"}
    assert _holders(store, clock) == {}


def test_a_sqlite_file_is_owned_by_its_run_lock_alone(tmp_path: Path, config: Config) -> None:
    from sync.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with ownership(store, config, "w1", whole=True) as held:
            assert held.work == everything() and held.shards == []
            assert held.renew() == []  # no lease to keep: the lock lasts as long as the body
            assert '"holder": "w1"' in (tmp_path / "state.db.lock").read_text()
            with (
                pytest.raises(LockHeld, match="another run holds the lock"),
                ownership(store, config, "w2"),
            ):
                pytest.fail("two workers held the run lock")
        assert (tmp_path / "state.db.lock").read_text() == ""
    finally:
        store.close()


# --- PostgreSQL: leases -------------------------------------------------------------------------


@pytest.fixture
def pg_store(pg_schema_url: str) -> Iterator[Store]:
    from sync.store.db import open_store

    opened = open_store(pg_schema_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.postgres
def test_serve_workers_split_the_shards_into_fair_shares(
    pg_store: Store, config: Config, clock: Clock
) -> None:
    def cycle(owner: str) -> Assignment | None:
        try:
            with ownership(
                pg_store, config, owner, keep=True, clock=clock, renew_every=NEVER
            ) as held:
                return held.work
        except AllLeased:
            return None

    assert cycle("w1") == Assignment(crm=True, projects=("APOLLO", "ORION"))
    assert cycle("w2") is None  # w1 holds all three; w2 is now known to be alive
    assert cycle("w1") == Assignment(crm=True, projects=("APOLLO",))  # handed one back
    assert cycle("w2") == Assignment(crm=False, projects=("ORION",))
    holders = _holders(pg_store, clock)
    assert holders == {"crm": "w1", "jira:APOLLO": "w1", "jira:ORION": "w2"}
    give_back(pg_store, "w1")  # serve stopping
    assert cycle("w2") == Assignment(crm=True, projects=("APOLLO", "ORION"))


@pytest.mark.postgres
def test_a_dead_workers_shards_are_taken_over_once_its_leases_expire(
    pg_store: Store, config: Config, clock: Clock
) -> None:
    with ownership(pg_store, config, "dead", keep=True, clock=clock, renew_every=NEVER):
        pass  # a serve worker that then died: it keeps its leases and renews them no more
    clock.advance(TTL - 1)
    with pytest.raises(AllLeased), ownership(pg_store, config, "heir", clock=clock):
        pytest.fail("took shards whose lease has not run out")
    clock.advance(2)  # one second past the lease
    with ownership(pg_store, config, "heir", clock=clock, renew_every=NEVER) as held:
        assert held.work == Assignment(crm=True, projects=("APOLLO", "ORION"))
        assert set(_holders(pg_store, clock).values()) == {"heir"}
    # the heir gave its shards back; only the dead worker's run-out presence row is left
    owned = {r.shard: r.owner for r in list_leases(pg_store.engine) if r.owner}
    assert owned == {"worker:dead": "dead"}
    assert live_leases(pg_store.engine, now=clock()) == []


@pytest.mark.postgres
def test_renewal_keeps_the_shards_of_a_cycle_longer_than_its_lease(
    pg_store: Store, config: Config, clock: Clock
) -> None:
    with ownership(pg_store, config, "long", clock=clock, renew_every=NEVER) as held:
        for _ in range(3):  # a cycle three leases long, renewed every 0.9 of one
            clock.advance(0.9 * TTL)
            assert held.renew() == []
            with pytest.raises(AllLeased), ownership(pg_store, config, "other", clock=clock):
                pytest.fail("took the shards of a worker that renews them")
        held.still_mine()
        clock.advance(TTL + 1)  # the renewals stop (the worker hangs): the others take over
        with ownership(pg_store, config, "other", keep=True, clock=clock, renew_every=NEVER):
            pass
        assert held.renew() == ["crm", "jira:APOLLO", "jira:ORION"]
        with pytest.raises(LockHeld, match="long lost its shard leases"):
            held.still_mine()
    assert set(_holders(pg_store, clock).values()) == {"other"}


@pytest.mark.postgres
def test_the_leases_are_renewed_in_the_background_while_the_body_runs(
    pg_store: Store, config: Config, clock: Clock
) -> None:
    with ownership(pg_store, config, "w1", keep=True, clock=clock, renew_every=0.01):
        clock.advance(120)
        clock.armed = True  # the next reading of the clock is a renewal's
        assert clock.ticked.wait(30), "the leases were not renewed"
    # the renewal thread is joined when the body ends, so its write is in
    renewed = {r.shard: r.heartbeat_at for r in list_leases(pg_store.engine)}
    assert renewed == dict.fromkeys(["crm", "jira:APOLLO", "jira:ORION", "worker:w1"], clock.now)
    expiry = {r.expires_at for r in list_leases(pg_store.engine)}
    assert expiry == {clock.now + timedelta(seconds=TTL)}
