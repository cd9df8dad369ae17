"""What `run` and `reconcile --apply` may work on (sync.cycle.ownership): the store's run
lock and with it every shard, on a SQLite file and on PostgreSQL, where a serve shard job
in flight (the lock held shared) keeps them out; and the shard names jobs and queued
writes are keyed by."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import Config, load_config
from sync.cycle.ownership import (
    Assignment,
    all_shards,
    assignment_of,
    everything,
    ownership,
    shard_of_record,
)
from sync.store import LockHeld, Store, shard_lock

EXAMPLE = Path(__file__).resolve().parents[3] / "config.example.toml"
ENV = {"JIRA_API_TOKEN": "jira-secret", "SALESFORCE_CONSUMER_KEY": "ck-secret"}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Three shards: ``crm``, ``jira:APOLLO`` and ``jira:ORION``."""
    return load_config(EXAMPLE, environ=ENV)


def test_one_worker_owns_everything_and_a_second_gets_lock_held(
    store: Store, config: Config
) -> None:
    with ownership(store, config, "run@here:1") as held:
        assert held.work == everything()
        held.still_mine()
        with pytest.raises(LockHeld), ownership(store, config, "run@here:2"):
            pytest.fail("two workers owned the same work")
    # given back when the body ended: the next worker has it at once, no waiting
    with ownership(store, config, "run@here:2") as held:
        assert held.work == everything()


def test_what_is_owned_is_given_back_when_the_body_fails(store: Store, config: Config) -> None:
    with pytest.raises(RuntimeError), ownership(store, config, "run@here:1"):
        raise RuntimeError("the cycle broke")
    with ownership(store, config, "run@here:2") as held:
        assert held.work == everything()


def test_a_serve_job_in_flight_keeps_run_and_reconcile_out(store: Store, config: Config) -> None:
    with (
        shard_lock(store.engine, "serve@there:9"),
        pytest.raises(LockHeld),
        ownership(store, config, "reconcile@here:1"),
    ):
        pytest.fail("reconcile owned a store a serve job was using")
    with ownership(store, config, "reconcile@here:1") as held:
        held.still_mine()


def test_a_sqlite_file_is_owned_by_its_run_lock(tmp_path: Path, config: Config) -> None:
    from sync.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with ownership(store, config, "w1") as held:
            assert held.work == everything()
            assert '"holder": "w1"' in (tmp_path / "state.db.lock").read_text()
            with (
                pytest.raises(LockHeld, match="another run holds the lock"),
                ownership(store, config, "w2"),
            ):
                pytest.fail("two workers held the run lock")
        assert (tmp_path / "state.db.lock").read_text() == ""
    finally:
        store.close()


def test_shard_names(config: Config) -> None:
    assert all_shards(config) == ["crm", "jira:APOLLO", "jira:ORION"]
    assert assignment_of(["crm"]) == Assignment(crm=True, projects=())
    assert assignment_of(["jira:ORION"]) == Assignment(crm=False, projects=("ORION",))
    assert assignment_of(["jira:*"]) == Assignment(crm=False, projects=None)
    assert Assignment(crm=False, projects=("ORION",)).shards() == ["jira:ORION"]
    assert shard_of_record("APOLLO:001A", "crm") == "jira:APOLLO"
    assert shard_of_record("ORION-12", "jira") == "jira:ORION"
