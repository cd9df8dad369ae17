"""The messages a user meets on bad input (issue 6), through the real CLI: a missing
config, an unknown key, a bad cron expression, an unreachable host, a wrong token, a
missing Salesforce field and a locked state store. Each exits with its code (SPEC section
4) and one line that names the problem and the fix; never a traceback."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cli import app
from sync.store import run_lock
from tests.sync.e2e import ANCHOR, CLI, SyncEnv, calls, cli_env, make_sandbox, reset_calls


@pytest.fixture(scope="module")
def box(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = make_sandbox(150, 20, seed=2, anchor=ANCHOR)
    sandbox.serve(tmp_path_factory.mktemp("messages-box"), tls=tls)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def env(box: Sandbox, tmp_path: Path) -> Iterator[SyncEnv]:
    opened = SyncEnv(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls=None)
    yield opened
    opened.close()


def invoke(*args: str) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def the_line(stderr: str, *parts: str) -> str:
    """The one stderr line holding every part (the problem and the fix); no traceback."""
    assert "Traceback" not in stderr
    found = [line for line in stderr.splitlines() if all(p in line for p in parts)]
    assert len(found) == 1, stderr
    return found[0]


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    code, out, err = invoke("--config", str(missing), "run")
    assert code == 2 and out == ""
    the_line(err, f"{missing} does not exist", "create it with `jira-crm-sync init`")
    assert err.splitlines()[-1].startswith("jira-crm-sync: fix the config problems")

    env = {k: v for k, v in cli_env().items() if k != "JIRA_CRM_SYNC_CONFIG"}
    found = subprocess.run(  # no --config, no ./jira-crm-sync.toml, no variable
        [str(CLI), "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert found.returncode == 2
    the_line(
        found.stderr,
        "no config file",
        "pass --config PATH, create ./jira-crm-sync.toml (jira-crm-sync init writes one), "
        "or set $JIRA_CRM_SYNC_CONFIG",
    )


def test_unknown_key(env: SyncEnv) -> None:
    text = env.config_path.read_text(encoding="utf-8").replace("projects = [", "projetcs = [")
    env.config_path.write_text(text, encoding="utf-8")
    reset_calls(env.box)
    code, out, err = invoke("--config", str(env.config_path), "run")
    assert code == 2 and out == ""
    the_line(
        err,
        "jira.projetcs: unknown key in jira (did you mean projects?)",
        "check its spelling against config.example.toml or remove it",
    )
    assert calls(env.box).reads == 0  # nothing is tried with a bad config


def test_bad_cron_expression(env: SyncEnv) -> None:
    env.edit_config('every = "1m"', 'every = "*/15 * * *"')
    problem = "[schedule] every = '*/15 * * *' is neither an interval"
    fix = 'nor a five-field cron expression (like "*/15 * * * *")'
    code, out, err = invoke("--config", str(env.config_path), "serve")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    the_line(err, problem, fix)
    code, out, err = invoke("--config", str(env.config_path), "check")
    assert code == 2
    the_line(out, "FAIL  schedule:", problem, fix)


def test_unreachable_host(env: SyncEnv) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert env.box.endpoints is not None
    env.edit_config(f'url = "{env.box.endpoints.jira_url}"', f'url = "https://127.0.0.1:{port}"')
    code, _, err = invoke("--config", str(env.config_path), "run")
    assert code == 3
    assert err.count("\n") == 1
    the_line(err, f"cannot reach Jira at https://127.0.0.1:{port}", "check [jira] url")


def test_wrong_token(env: SyncEnv) -> None:
    real = env.box.credentials.jira_api_token
    wrong = "not-the-token-5b2e"
    env.edit_config(f'api_token = "{real}"', f'api_token = "{wrong}"')
    done = env.cli("run")  # the console script, with its real log handlers
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1
    the_line(
        done.stderr,
        "Jira at https://127.0.0.1:",
        "refused the credentials (HTTP 401)",
        "check [jira] email and api_token",
    )
    assert wrong not in done.stdout + done.stderr and real not in done.stdout + done.stderr


def test_missing_salesforce_field(env: SyncEnv) -> None:
    env.edit_config('segment_field = "Segment__c"', 'segment_field = "Segmnet__c"')
    code, out, err = invoke("--config", str(env.config_path), "check", "--online")
    assert code == 2
    the_line(
        out,
        "FAIL  salesforce field Account.Segmnet__c: not found",
        "(did you mean Segment__c?)",
        "fix [crm.salesforce.account] segment_field in the config",
    )
    assert err.count("\n") == 1 and err.startswith("jira-crm-sync: 1 check(s) failed")


def test_locked_state_store(env: SyncEnv) -> None:
    reset_calls(env.box)
    with run_lock(env.store.engine, "test-holder"):
        done = env.cli("run")
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    the_line(
        done.stderr,
        "another run holds the lock on the state store",
        "test-holder",
        "wait for it to finish (or stop it)",
    )
    assert calls(env.box).writes == 0
