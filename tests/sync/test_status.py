"""`jira-crm-sync status` through the real CLI after a real `run` against the HTTPS sandbox,
on SQLite and PostgreSQL: the runs, a parked write with its error and next retry, the
outbox per side, cursors, projects waiting for a re-derive, API calls against [limits],
the sessions holding the store's lock (PostgreSQL), and the run lock read without taking it.

`run` is a subprocess of the installed entry point; `status` runs the same typer app
in-process (it makes no network call, and skipping the interpreter start-up keeps the
file fast).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from connectors.sandbox.server import Tls
from sync import status as view
from sync.cli import app
from sync.store import repo, run_lock
from tests.sync.e2e import (
    ANCHOR,
    EXTERNAL_ID,
    REPORT,
    SyncEnv,
    expected,
    make_sandbox,
    sync_env,
)

RULE = "Locked for audit by finance"


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    box = make_sandbox(150, 20, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, store_url, tls) as opened:
        yield opened


def status_cli(config: Path, *args: str) -> tuple[int, str, str]:
    """``jira-crm-sync --config <config> status <args>``: (exit code, stdout, stderr)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(app, ["--config", str(config), "status", *args])
    finally:  # the CLI points the root logger at its own (captured) stderr
        root.handlers[:], root.level = handlers, level
    return result.exit_code, result.stdout, result.stderr


def status_json(env: SyncEnv) -> dict[str, Any]:
    """``status --json``, checked to be one document and nothing else."""
    code, out, err = status_cli(env.config_path, "--json")
    assert (code, err) == (0, ""), err
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_status_after_real_runs_on_each_store(env: SyncEnv) -> None:
    code, out, _err = status_cli(env.config_path)
    assert code == 0 and "no runs yet" in out

    want = expected(env.box, datetime.now(UTC).date())
    victim = min(want.reports)

    def locked(record: dict[str, Any]) -> bool:
        return record.get(EXTERNAL_ID) == victim

    env.box.salesforce.add_validation_rule(REPORT, locked, RULE)
    started = datetime.now(UTC)
    assert env.cli("run").returncode == 1

    doc = status_json(env)
    [run] = doc["runs"]
    assert (run["status"], run["exit_code"], run["failed"]) == ("parked", 1, 1)
    assert run["written"]["salesforce_records"] == len(want.reports) - 1
    assert run["pulled"]["jira_issues"] == len(env.box.jira.issues)
    [parked] = doc["parked"]
    assert (parked["side"], parked["record"], parked["attempts"]) == ("crm", victim, 1)
    assert RULE in parked["error"] and parked["retried"] is True
    assert datetime.fromisoformat(parked["next_attempt_at"]) > started
    assert doc["outbox"]["crm"]["parked"] == 1
    assert doc["outbox"]["crm"]["done"] == len(want.reports) - 1
    for side in ("jira", "salesforce"):
        budget = doc["budget"][side]
        assert budget["used"] == run["calls"][side] > 0
        assert budget["left"] == budget["per_day"] - budget["used"]
    objects = {(c["source"], c["object"].split(":")[0]) for c in doc["cursors"]}
    assert {("jira", "issues"), ("salesforce", "Account"), ("salesforce", "Case")} <= objects
    assert doc["pending_rederives"] == []
    assert doc["lock"]["held"] is False
    assert doc["holders"] == []  # the run gave the lock back (PostgreSQL: its session ended)

    code, text, err = status_cli(env.config_path)
    assert (code, err) == (0, "")
    assert "last run #1: parked (exit 1)" in text
    parked_line = next(line for line in text.splitlines() if victim in line)
    assert RULE in parked_line and "crm_upsert" in parked_line
    assert "\x1b[" not in text  # plain text off a terminal
    header = next(line for line in text.splitlines() if line.startswith("  run  started"))
    row = text.splitlines()[text.splitlines().index(header) + 1]
    # The CRM columns are headed by the CRM's side name (the key of its calls in JSON).
    assert "wrote salesforce/jira" in header and "calls jira/salesforce" in header
    assert doc["crm_side"] == "salesforce"
    assert row.index("parked") == header.index("status")  # aligned columns

    # Rich tables (what a terminal gets) show the same.
    out_buffer = io.StringIO()
    view.render_rich(
        view.collect(env.store, env.config),
        Console(file=out_buffer, force_terminal=True, width=220),
    )
    assert victim in out_buffer.getvalue() and RULE in out_buffer.getvalue()

    # A run holding the lock, and a pull whose derive has not run yet: status reads both
    # without taking anything.
    project = env.box.world.projects[0].key
    with env.store.transaction() as tx:
        repo.mark_dirty(tx, [project])
    with run_lock(env.store.engine, "test-holder"):
        held = status_json(env)
        _code, held_text, _err = status_cli(env.config_path)
    assert held["lock"]["held"] is True and "test-holder" in held["lock"]["holder"]
    assert "run lock: held by" in held_text and "test-holder" in held_text
    assert [r["project"] for r in held["pending_rederives"]] == [project]
    assert status_json(env)["lock"]["held"] is False

    # A cycle running elsewhere (another worker) holds calls it may still make: shown,
    # and out of what is left today, as the next cycle's allowance counts them.
    now = datetime.now(UTC)
    before = status_json(env)["budget"]["jira"]
    with env.store.transaction() as tx:
        other = repo.start_run(tx, "worker-2", dry_run=False, full=False, started_at=now)
        repo.reserve_calls(tx, other, "jira", now.date(), per_cycle=50, per_day=before["per_day"])
    jira = status_json(env)["budget"]["jira"]
    assert (jira["used"], jira["reserved"]) == (before["used"], 50)
    assert jira["left"] == before["left"] - 50
    _code, reserved_text, _err = status_cli(env.config_path)
    lines = reserved_text.splitlines()
    header = next(i for i, x in enumerate(lines) if "reserved" in x and "per day" in x)
    line = next(x for x in lines[header:] if x.strip().startswith("jira "))
    assert line.split()[1:4] == [str(before["used"]), "50", str(before["per_day"])]
    with run_lock(env.store.engine, "next-run"):  # status left nothing locked
        pass


def test_status_of_a_store_that_does_not_exist_yet_creates_nothing(
    tmp_path: Path, tls: Tls
) -> None:
    box = make_sandbox(10, 3, seed=2, anchor=ANCHOR)
    state = tmp_path / "nowhere" / "state.db"
    with sync_env(box, tmp_path, f"sqlite:///{state}", tls) as env:
        code, out, err = status_cli(env.config_path)
        doc = status_json(env)
    assert (code, err) == (0, "") and "no runs yet" in out
    assert doc["exists"] is False and doc["runs"] == []
    assert not state.exists() and not state.parent.exists()


def test_status_with_a_broken_config_says_so_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[jira]\nurl = 'ftp://nowhere'\n", encoding="utf-8")
    code, out, err = status_cli(config)
    assert code == 2 and out == ""
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("jira-crm-sync: ")
