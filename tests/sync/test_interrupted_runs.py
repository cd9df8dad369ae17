"""A run whose process is gone is shown, then recorded, as interrupted, not "running"
forever: `status` shows it so without writing anything (its pid on this host is gone, the
SQLite run lock is free, or on PostgreSQL its worker has no session on the store's lock),
and the next cycle, holding the lock, records it so. A real `run` is SIGKILLed from inside the
sandbox mid-push; `status` and the next `run` run in-process (typer's runner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.server import Tls
from sync.store import repo, shard_lock
from tests.sync.e2e import ANCHOR, KillPoint, KillSwitch, SyncEnv, make_sandbox, sync_env
from tests.sync.e2e import cli_in_process as cli


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    box = make_sandbox(40, 8, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, store_url, tls) as opened:
        yield opened


def _runs(env: SyncEnv) -> dict[int, dict[str, Any]]:
    code, out, err = cli(env, "status", "--json")
    assert (code, err) == (0, ""), err
    return {run["id"]: run for run in json.loads(out)["runs"]}


def _recorded(env: SyncEnv, run_id: int) -> str:
    with env.store.read() as conn:
        run = repo.get_run(conn, run_id)
    assert run is not None
    return run.status


def test_a_killed_run_is_shown_then_recorded_as_interrupted(env: SyncEnv) -> None:
    switch = KillSwitch(env.box)
    switch.install()
    try:
        switch.arm(KillPoint("first Jira write applied", "jira", 1, None, True, "after"))
        code, _out, _err = switch.run(env, "run")
    finally:
        switch.uninstall()
    assert (switch.fired, code) == (True, -9)
    with env.store.read() as conn:
        [killed] = repo.last_runs(conn, 1)
    assert killed.status == "running"  # the process died before it could say otherwise
    host, pid = killed.worker.split("@", 1)[1].rsplit(":", 1)  # "run@host:pid"
    assert switch.process is not None and int(pid) == switch.process.pid

    shown = _runs(env)[killed.id]
    assert shown["status"] == "interrupted"
    assert f"its process {pid} on {host} is gone" in shown["error"]
    code, text, _err = cli(env, "status")
    assert code == 0 and f"last run #{killed.id}: interrupted" in text
    assert _recorded(env, killed.id) == "running"  # status only reads

    # A run of another machine: SQLite's free lock, PostgreSQL's missing session tell.
    with env.store.transaction() as tx:
        other = repo.start_run(tx, "serve@elsewhere:4242")
    why = _runs(env)[other]["error"]
    if env.store.dialect == "postgresql":
        assert why == "interrupted: its worker no longer holds the store's lock"
        with shard_lock(env.store.engine, "serve@elsewhere:4242"):  # its job in flight
            assert _runs(env)[other]["status"] == "running"
        env.wait_unlocked()  # the killed run's session is gone too
    else:
        assert why.startswith("interrupted: it no longer holds the run lock")

    code, _out, err = cli(env, "run")
    assert code == 0, err
    assert _recorded(env, killed.id) == "interrupted"
    assert _recorded(env, other) == "interrupted"
    runs = _runs(env)
    assert runs[killed.id]["status"] == "interrupted" and "is gone" in runs[killed.id]["error"]
    assert [r["status"] for r in runs.values()].count("running") == 0
