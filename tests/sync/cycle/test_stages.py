"""A failed cycle names the stage it failed in (sync.cycle.engine.StageFailed): the cycle's
result (``run --json``), the run row and ``status`` (text and --json) say "failed in
push"; the exit code is still the cause's. The classification is a unit test; the failure
in push runs the engine in-process against the HTTPS sandbox (the connector's sleep
patched), `status` through the CLI in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.exceptions import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    RemoteError,
)
from connectors.sandbox.faults import Fault
from connectors.sandbox.server import Tls
from sync.cycle.engine import (
    STAGES,
    CycleOptions,
    CycleResult,
    Engine,
    StageFailed,
    failure_of,
)
from sync.exitcodes import ExitCode
from sync.remote import build_remotes
from sync.store import repo
from tests.sync.e2e import SyncEnv, cli_in_process, expected, in_process_env, reset_calls


def test_a_stage_failure_keeps_its_cause_and_the_causes_exit_code() -> None:
    cause = RemoteError("jira answered 500")
    failed = StageFailed("push", cause)
    assert str(failed) == "failed in push: jira answered 500"
    assert failed.stage == "push" and failed.cause is cause
    assert failure_of(cause) == ("failed", ExitCode.REMOTE)
    assert failure_of(AuthError("no")) == ("failed", ExitCode.REMOTE)
    assert failure_of(ConfigError("no")) == ("failed", ExitCode.USAGE)
    assert failure_of(BudgetExhausted("spent")) == ("budget", ExitCode.OK)
    assert failure_of(KeyError("a bug")) is None  # not ours to classify: exit 5 in the CLI
    assert STAGES == ("sign-in", "pull", "derive", "record", "push", "upload")


@pytest.fixture
def env(tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    with in_process_env(f"sqlite:///{tmp_path / 'state.db'}", tmp_path, tls) as opened:
        yield opened


def _cycle(env: SyncEnv) -> CycleResult:
    reset_calls(env.box)
    remotes = build_remotes(env.config)
    remotes.jira._sleep = lambda seconds: None
    return Engine(env.config, env.store, remotes, clock=env.clock).run(CycleOptions())


def test_a_failure_in_push_is_reported_as_push(env: SyncEnv) -> None:
    assert _cycle(env).exit_code == 0
    env.clock.advance(minutes=10)
    # A linked customer's CSAT drops: its open issues get a flag comment in one PUT each.
    want = expected(env.box, env.clock().date())
    linked = {a for accounts in want.links.values() for a in accounts}
    env.box.salesforce.update_record("Account", min(linked - want.at_risk), CSAT__c=2.0)
    # Jira applies the PUT, then answers 502; reading the comments back fails too.
    env.box.jira_app.faults.add(
        Fault.from_json({"kind": "html", "method": "PUT", "endpoint": "/issue/"})
    )
    env.box.jira_app.faults.add(
        Fault.from_json({"kind": "html", "status": 200, "endpoint": "/comment"})
    )

    failed = _cycle(env)
    assert (failed.status, failed.exit_code, failed.failed_stage) == (
        "failed",
        ExitCode.REMOTE,
        "push",
    )
    shown = failed.as_dict()  # what `run --json` prints
    assert shown["failed_stage"] == "push" and shown["exit_code"] == 3
    assert "/comment" in shown["message"]
    with env.store.read() as conn:
        run = repo.get_run(conn, failed.run_id or 0)
    assert run is not None and run.failed_stage == "push"

    code, out, _err = cli_in_process(env, "status", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["runs"][0]["failed_stage"] == "push"
    assert document["summary"].startswith(f"last run #{failed.run_id}: failed in push (exit 3)")
    code, text, _err = cli_in_process(env, "status")
    assert code == 0 and "failed in push: " in text

    env.clock.advance(minutes=10)
    after = _cycle(env)  # the next cycle finishes the write: no stage named
    assert (after.exit_code, after.failed_stage) == (ExitCode.OK, None)
    assert after.as_dict()["failed_stage"] is None
