"""Run history, API usage per day, progress snapshots and satisfaction history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sync.store import repo
from sync.store.db import Store
from sync.store.repo import ProgressRecord

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_runs_are_recorded(store: Store) -> None:
    with store.transaction() as tx:
        first = repo.start_run(tx, "host-1:123", started_at=T0)
        second = repo.start_run(
            tx, "host-1:124", dry_run=True, full=True, started_at=T0 + timedelta(1)
        )
    with store.transaction() as tx:
        repo.finish_run(
            tx,
            first,
            status="parked",
            exit_code=1,
            calls={"jira": {"search": 3}, "salesforce": {"query": 2, "collections": 1}},
            pulled={"issues": 10},
            written={"crm": 4},
            error="1 record parked",
            finished_at=T0 + timedelta(minutes=2),
        )
    with store.read() as conn:
        runs = repo.last_runs(conn, 5)
        one = repo.get_run(conn, first)
        assert repo.get_run(conn, 424242) is None
    assert [r.id for r in runs] == [second, first]
    assert runs[0].status == "running" and runs[0].dry_run and runs[0].full
    assert runs[0].finished_at is None
    assert one is not None and one.status == "parked" and one.exit_code == 1
    assert one.calls == {"jira": {"search": 3}, "salesforce": {"query": 2, "collections": 1}}
    assert one.finished_at == T0 + timedelta(minutes=2)
    assert (one.pulled, one.written, one.error) == ({"issues": 10}, {"crm": 4}, "1 record parked")


def test_api_calls_per_side_per_day(store: Store) -> None:
    day = date(2025, 3, 1)
    with store.transaction() as tx:
        assert repo.add_calls(tx, "jira", day, 5) == 5
        assert repo.add_calls(tx, "jira", day, 7) == 12
        repo.add_calls(tx, "salesforce", day, 2)
        repo.add_calls(tx, "jira", day + timedelta(1), 1)
    with store.read() as conn:
        assert repo.calls_today(conn, "jira", day) == 12
        assert repo.calls_today(conn, "salesforce", day + timedelta(1)) == 0
        assert repo.calls_on(conn, day) == {"jira": 12, "salesforce": 2}


def _snapshot(day: date, done: int, project: str = "APOLLO") -> ProgressRecord:
    return ProgressRecord(
        customer_id="001A",
        project_key=project,
        day=day,
        total=10,
        done=done,
        in_progress=1,
        todo=9 - done,
        overdue=0,
        blocked=0,
        percent_complete=done * 10.0,
        health="green",
        forecast_date=date(2025, 6, 1),
    )


def test_progress_snapshots_one_per_day_latest_wins(store: Store) -> None:
    d1, d2 = date(2025, 3, 1), date(2025, 3, 2)
    with store.transaction() as tx:
        repo.put_progress(tx, [_snapshot(d1, 1), _snapshot(d1, 2, "BOREAS")])
        repo.put_progress(tx, [_snapshot(d1, 3)])  # later the same day
        repo.put_progress(tx, [replace(_snapshot(d2, 4), forecast_date=None, health="amber")])
    with store.read() as conn:
        history = repo.progress_history(conn, "001A", "APOLLO")
        since = repo.progress_history(conn, since=d2)
        latest = repo.latest_progress(conn)
    assert [(p.day, p.done) for p in history] == [(d1, 3), (d2, 4)]
    assert history[0] == _snapshot(d1, 3)
    assert [(p.project_key, p.day) for p in since] == [("APOLLO", d2)]
    assert [(p.project_key, p.day, p.health) for p in latest] == [
        ("APOLLO", d2, "amber"),
        ("BOREAS", d1, "green"),
    ]


def test_satisfaction_history_and_flags(store: Store) -> None:
    d1, d2 = date(2025, 3, 1), date(2025, 3, 2)
    with store.transaction() as tx:
        repo.put_satisfaction(
            tx,
            [
                {"customer_id": "001A", "day": d1, "score": 8.0, "scale": 10, "level": "ok"},
                {"customer_id": "001B", "day": d1, "score": None, "scale": None, "level": "ok"},
            ],
        )
        repo.put_satisfaction(
            tx,
            [
                {
                    "customer_id": "001A",
                    "day": d2,
                    "score": 5.0,
                    "scale": 10,
                    "level": "watch",
                    "reasons": ["NPS detractor (5/10)"],
                }
            ],
        )
        repo.put_flags(
            tx,
            [
                {"customer_id": "001A", "level": "watch", "since": T0, "reasons": ["x"]},
                {"customer_id": "001B", "level": "ok", "since": T0, "reasons": []},
            ],
        )
    with store.transaction() as tx:
        later = T0 + timedelta(days=1)
        repo.put_flags(
            tx, [{"customer_id": "001A", "level": "at_risk", "since": later, "reasons": ["y"]}]
        )
        assert repo.delete_flags(tx, ["001B"]) == 1
    with store.read() as conn:
        history = repo.satisfaction_history_of(conn, "001A")
        assert [(s.day, s.score, s.level, s.reasons) for s in history] == [
            (d1, 8.0, "ok", []),
            (d2, 5.0, "watch", ["NPS detractor (5/10)"]),
        ]
        assert len(repo.satisfaction_history_of(conn, since=d2)) == 1
        flags = repo.get_flags(conn)
        assert set(flags) == {"001A"}
        assert flags["001A"] == repo.FlagRecord("001A", "at_risk", later, ["y"])
        assert repo.get_flags(conn, ["001B"]) == {}
