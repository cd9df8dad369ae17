"""The real `jira-crm-sync run` over the HTTPS sandbox, on SQLite and PostgreSQL (SPEC
sections 4 and 7): a dry run prints the plan and writes nothing anywhere, a rejected record
makes the run exit 1, and a run while another holds the store exits 4.

The CLI runs on real time; the sandbox's world is fixed by its seed and anchor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.server import Tls
from sync.store import run_lock, shard_lock
from tests.sync.e2e import (
    ANCHOR,
    EXTERNAL_ID,
    JIRA_PUT,
    LABEL,
    REPORT,
    KillPoint,
    KillSwitch,
    SyncEnv,
    calls,
    expected,
    make_sandbox,
    remote_state,
    report_counts,
    reset_calls,
    store_snapshot,
    sync_env,
)


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    box = make_sandbox(150, 20, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, store_url, tls) as opened:
        yield opened


def _stamps(env: SyncEnv) -> dict[str, Any]:
    return {str(r[EXTERNAL_ID]): r["SystemModstamp"] for r in env.box.salesforce.records(REPORT)}


def test_dry_run_prints_the_plan_and_writes_nothing_anywhere(env: SyncEnv) -> None:
    assert env.cli("run").returncode == 0
    want = expected(env.box, datetime.now(UTC).date())
    resolved = min(want.labelled)  # its label comes off, its report changes
    env.box.jira.update_issue(resolved, status="Done")
    pair = min(want.pairs_of(resolved, env.box.jira.issue(resolved).project_key))
    remote_before, store_before, stamps = (
        remote_state(env.box),
        store_snapshot(env.store),
        _stamps(env),
    )
    reset_calls(env.box)

    text = env.cli("run", "--dry-run")
    as_json = env.cli("run", "--dry-run", "--json")

    assert (text.returncode, as_json.returncode) == (0, 0), text.stderr + as_json.stderr
    made = calls(env.box)
    assert made.writes == 0, made.by_endpoint
    assert store_snapshot(env.store) == store_before
    assert remote_state(env.box) == remote_before
    assert "dry run: nothing was written" in text.stdout
    assert f"crm upsert {REPORT} {pair}" in text.stdout
    assert f"jira {resolved} -{LABEL}" in text.stdout
    plan = json.loads(as_json.stdout)["plan"]
    crm_ids = {write["external_id"] for write in plan["crm"]}
    jira_keys = {write["issue_key"] for write in plan["jira"]}
    assert pair in crm_ids and resolved in jira_keys

    # The run that follows writes what the plan said, and nothing else.
    reset_calls(env.box)
    done = env.cli("run")
    assert done.returncode == 0, done.stderr
    now = _stamps(env)
    assert {k for k in now if now[k] != stamps[k]} == crm_ids
    assert calls(env.box).count(f"jira {JIRA_PUT}") == len(jira_keys)


def test_a_rejected_record_makes_run_exit_1_and_say_so(env: SyncEnv) -> None:
    want = expected(env.box, datetime.now(UTC).date())
    victim = min(want.reports)

    def locked(record: dict[str, Any]) -> bool:
        return record.get(EXTERNAL_ID) == victim

    env.box.salesforce.add_validation_rule(REPORT, locked, "Locked for audit")
    done = env.cli("run")
    assert done.returncode == 1
    assert f"parked: salesforce {victim}: " in done.stdout and "Locked for audit" in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "parked for retry" in lines[0]
    assert set(report_counts(env.box)) == set(want.reports) - {victim}


def test_a_run_while_another_holds_the_store_exits_4(env: SyncEnv) -> None:
    store = env.store
    # Another run, and (PostgreSQL) a serve shard job in flight, which holds the lock shared.
    holders = [run_lock] if store.dialect != "postgresql" else [run_lock, shard_lock]
    for holder in holders:
        with holder(store.engine, "serve@elsewhere:4242"):
            done, dry = env.cli("run"), env.cli("run", "--dry-run")
        assert done.returncode == 4, done.stderr

    assert done.returncode == 4, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""
    assert calls(env.box).writes == 0
    assert dry.returncode == 0  # a dry run writes nothing, so it needs no lock
    assert env.cli("run").returncode == 0  # once the holder is gone


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_killed_runs_lock_goes_with_its_session(env: SyncEnv) -> None:
    """PostgreSQL: a SIGKILLed run cannot give its lock back, but the server ends its
    session, and the lock with it: the next run takes the store and ends the work."""
    switch = KillSwitch(env.box)
    switch.install()
    try:
        switch.arm(KillPoint("first Jira write applied", "jira", 1, None, True, "after"))
        code, _out, _err = switch.run(env, "run")
        assert (switch.fired, code) == (True, -9)
        switch.arm(None)
        env.wait_unlocked()
        done = env.cli("run")
        assert done.returncode == 0, done.stderr
    finally:
        switch.uninstall()
    want = expected(env.box, datetime.now(UTC).date())
    assert report_counts(env.box) == want.reports
    assert {k for k, i in env.box.jira.issues.items() if LABEL in i.labels} == want.labelled
