"""The day's API budget reserved per running cycle (api_reservations): cycles running at
once on separate connections never reserve past the day's limit together, a run's end
replaces its reservation by the calls it made, and an interrupted run's is released.
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sync.config import load_config
from sync.cycle.engine import CycleResult, finish_run
from sync.serve import Metrics
from sync.store import open_store, repo
from sync.store.db import Store

DAY = date(2026, 12, 4)
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def stores(store: Store, store_url: str) -> Iterator[list[Store]]:
    """Four more stores on the same database, each with its own connections (workers)."""
    more = [open_store(store_url) for _ in range(4)]
    try:
        yield more
    finally:
        for each in more:
            each.close()


def _start(store: Store, worker: str) -> int:
    with store.transaction() as tx:
        return repo.start_run(tx, worker, started_at=T0)


def test_concurrent_reservations_stay_within_the_day(store: Store, stores: list[Store]) -> None:
    with store.transaction() as tx:
        repo.add_calls(tx, "jira", DAY, 10)
    run_ids = [_start(store, f"serve@host:{100 + i}") for i in range(len(stores))]
    barrier = threading.Barrier(len(stores))
    found: dict[int, int] = {}
    errors: list[BaseException] = []

    def reserve(worker: Store, run_id: int) -> None:
        try:
            barrier.wait()
            with worker.transaction() as tx:
                found[run_id] = repo.reserve_calls(
                    tx, run_id, "jira", DAY, per_cycle=40, per_day=100
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=reserve, args=(w, r)) for w, r in zip(stores, run_ids, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    with store.read() as conn:
        reserved = repo.reserved_today(conn, "jira", DAY)
        assert repo.calls_today(conn, "jira", DAY) == 10
    # 90 calls were left: 40 + 40 + 10 + 0, in whichever order the workers took turns.
    assert reserved == 90
    assert sorted(found.values()) == [10, 50, 90, 100]


def test_a_reservation_waits_for_one_in_flight(store: Store, stores: list[Store]) -> None:
    first, second = _start(store, "serve@host:1"), _start(store, "serve@host:2")
    done = threading.Event()
    seen: list[int] = []

    def reserve() -> None:
        with stores[0].transaction() as tx:
            seen.append(repo.reserve_calls(tx, second, "jira", DAY, per_cycle=40, per_day=50))
        done.set()

    with store.transaction() as tx:
        assert repo.reserve_calls(tx, first, "jira", DAY, per_cycle=40, per_day=50) == 0
        other = threading.Thread(target=reserve)
        other.start()
        # The other worker cannot read the day's budget before this reservation commits.
        assert not done.wait(0.5)
    other.join(30)
    assert seen == [40]
    with store.read() as conn:
        assert repo.reserved_today(conn, "jira", DAY) == 50


def test_a_runs_end_replaces_its_reservation_by_its_calls(store: Store) -> None:
    run_id, other = _start(store, "serve@host:1"), _start(store, "serve@host:2")
    with store.transaction() as tx:
        assert repo.reserve_calls(tx, run_id, "jira", DAY, per_cycle=40, per_day=100) == 0
        assert repo.reserve_calls(tx, run_id, "salesforce", DAY, per_cycle=5, per_day=9) == 0
        assert repo.reserve_calls(tx, other, "jira", DAY, per_cycle=40, per_day=100) == 40
    finish_run(
        store,
        run_id,
        day=DAY,
        status="failed",
        exit_code=3,
        calls={"jira": {"total": 7}, "salesforce": {"total": 2}},
        pulled={},
        written={},
        message="Jira answered 503",
        finished_at=T0,
        stage="pull",
    )
    with store.read() as conn:
        assert repo.calls_on(conn, DAY) == {"jira": 7, "salesforce": 2}
        assert repo.reserved_today(conn, "jira", DAY) == 40  # the other run's, still running
        assert repo.reserved_today(conn, "salesforce", DAY) == 0
    with store.transaction() as tx:  # a third run counts the calls made and the other's
        third = repo.start_run(tx, "serve@host:3", started_at=T0)
        assert repo.reserve_calls(tx, third, "jira", DAY, per_cycle=80, per_day=100) == 47
    with store.read() as conn:
        assert repo.reserved_today(conn, "jira", DAY) == 40 + 53


def test_an_interrupted_runs_reservation_is_released(store: Store) -> None:
    dead, live = _start(store, "serve@host:1"), _start(store, "serve@host:2")
    with store.transaction() as tx:
        repo.reserve_calls(tx, dead, "jira", DAY, per_cycle=60, per_day=100)
        repo.reserve_calls(tx, live, "jira", DAY, per_cycle=30, per_day=100)
    with store.transaction() as tx:
        assert repo.mark_interrupted(tx, {dead: "interrupted: its process 1 is gone"}) == 1
    with store.read() as conn:
        assert repo.reserved_today(conn, "jira", DAY) == 30
        assert repo.calls_today(conn, "jira", DAY) == 0
        run = repo.get_run(conn, dead)
    assert run is not None and run.status == "interrupted"


def test_the_budget_gauge_leaves_out_what_running_cycles_reserved(
    store: Store, tmp_path: Path
) -> None:
    """/metrics' budget left counts the calls made and those a cycle still running (another
    job, another worker) reserved, as the next cycle's allowance will."""
    example = (Path(__file__).resolve().parents[3] / "sync" / "config.example.toml").read_text()
    key = tmp_path / "k.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    key.chmod(0o600)
    path = tmp_path / "c.toml"
    path.write_text(example.replace("/etc/jira-crm-sync/salesforce-jwt.key", str(key)))
    path.chmod(0o600)
    config = load_config(path, environ={"JIRA_API_TOKEN": "t", "SALESFORCE_CONSUMER_KEY": "k"})
    today = datetime.now(UTC).date()
    running = _start(store, "serve@elsewhere:1")
    with store.transaction() as tx:
        repo.add_calls(tx, "jira", today, 100)
        repo.reserve_calls(tx, running, "jira", today, per_cycle=400, per_day=10**6)
    metrics = Metrics()
    metrics.observe(CycleResult(run_id=None), 0.1, store, config)
    left = metrics.budget.labels("default", "jira")._value.get()
    assert left == config.limits.jira_calls_per_day - 100 - 400
