"""The global options as people type them (SPEC section 4): ``--config``, ``--log-format``,
``-v`` and ``-q`` before or after the command name for every command, the one after it
winning; ``--version``; ``-q`` leaving stdout to ``--json`` documents and stderr to errors;
``-v`` showing the cycle's own steps (``-vv`` each call) and not alembic's plugin lines.

In-process through typer's CliRunner on ``sync.cli.app``, against one served sandbox;
one check runs the installed console script."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cli import app
from tests.sync.e2e import ANCHOR, CLI, SyncEnv, cli_env, make_sandbox

#: Every command, as typed.
COMMANDS = [
    ["run"],
    ["serve"],
    ["status"],
    ["check"],
    ["reconcile"],
    ["report"],
    ["init"],
    ["demo"],
    ["sandbox"],
    ["db", "upgrade"],
]
#: The commands that read the config file.
READ_CONFIG = [
    ["run"],
    ["serve"],
    ["status"],
    ["check"],
    ["reconcile"],
    ["report"],
    ["db", "upgrade"],
]


@pytest.fixture(scope="module")
def box(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = make_sandbox(30, 6, seed=2, anchor=ANCHOR)
    sandbox.serve(tmp_path_factory.mktemp("options-box"), tls=tls)
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
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_takes_the_four_options_after_its_name(command: list[str]) -> None:
    code, out, err = invoke(
        *command, "--config", "x.toml", "--log-format", "json", "-v", "-q", "--help"
    )
    assert code == 0, err
    for flag in ("--config", "--log-format", "--verbose", "-v", "--quiet", "-q"):
        assert flag in out


@pytest.mark.parametrize("command", READ_CONFIG, ids=" ".join)
def test_the_config_after_the_command_is_the_one_read(command: list[str], tmp_path: Path) -> None:
    before, after = tmp_path / "before.toml", tmp_path / "after.toml"
    code, out, err = invoke("--config", str(before), *command, "--config", str(after), "-v")
    assert code == 2
    assert f"{after} does not exist" in out + err
    assert str(before) not in out + err


def test_init_writes_the_config_named_after_the_command(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    code, out, err = invoke(
        "init", "--config", str(path), "-q", "--no-input",
        "--jira-url", "https://acme.atlassian.net", "--jira-auth", "cloud",
        "--jira-email", "sync@acme.example", "--projects", "NOVA",
        "--salesforce-auth", "jwt", "--salesforce-username", "sync@acme.example",
    )  # fmt: skip
    assert (code, out, err) == (0, "", "")
    assert "https://acme.atlassian.net" in path.read_text(encoding="utf-8")


def test_sandbox_takes_them_too() -> None:
    code, out, err = invoke("sandbox", "--host", "10.1.2.3", "--config", "x.toml", "-q")
    assert code == 2 and out == ""
    assert err == (
        "jira-crm-sync: --host 10.1.2.3 is not a loopback address; the sandbox only serves "
        "on loopback (use 127.0.0.1).\n"
    )


def test_run_config_after_the_command_with_v_shows_the_cycle_steps(env: SyncEnv) -> None:
    code, out, err = invoke("run", "--config", str(env.config_path), "-v")
    assert code == 0, err
    assert out.startswith("pulled: ")
    logged = err.splitlines()
    for step in ("cycle (run 1) started", "pulled: ", "deriving ", "planned: ", "written: "):
        assert any(f"INFO sync.cycle.engine: {step}" in line for line in logged), (step, err)
    assert any(
        "INFO sync.cycle.engine: cycle ended: ok (exit 0); calls: jira " in line for line in logged
    )
    # The first run migrates the store: alembic's plugin and context lines stay out of -v.
    assert not any("alembic" in line for line in logged), err
    assert not any(" DEBUG " in line for line in logged), err


def test_v_before_the_command_leaves_out_alembic_too(env: SyncEnv) -> None:
    code, _, err = invoke("--config", str(env.config_path), "-v", "db", "upgrade")
    assert code == 0, err
    assert "alembic" not in err  # "Context impl SQLiteImpl", "setup plugin ..."


def test_vv_shows_each_call(env: SyncEnv) -> None:
    code, _, err = invoke("run", "--config", str(env.config_path), "-vv", "--dry-run")
    assert code == 0, err
    assert "DEBUG connectors.calls: jira GET /rest/api/2/search/jql -> HTTP 200 in " in err
    assert "DEBUG connectors.calls: salesforce POST /services/oauth2/token -> HTTP 200 " in err


def test_v_before_and_after_the_command_add_up(env: SyncEnv) -> None:
    code, _, err = invoke("-v", "run", "--dry-run", "--config", str(env.config_path), "-v")
    assert code == 0, err
    assert "DEBUG connectors.calls: " in err


def test_log_format_after_the_command(env: SyncEnv) -> None:
    code, _, err = invoke(
        "run", "--dry-run", "--config", str(env.config_path), "--log-format", "json", "-v"
    )
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines()]
    assert any(d["logger"] == "sync.cycle.engine" and d["level"] == "info" for d in lines)


def test_q_leaves_stdout_to_json_documents_and_stderr_to_errors(
    env: SyncEnv, tmp_path: Path
) -> None:
    config = str(env.config_path)
    assert invoke("--config", config, "-q", "run") == (0, "", "")  # before the command too
    assert invoke("run", "--config", config, "-q") == (0, "", "")
    assert invoke("run", "--config", config, "-q", "--dry-run") == (0, "", "")
    assert invoke("status", "--config", config, "-q") == (0, "", "")
    assert invoke("check", "--config", config, "-q") == (0, "", "")
    assert invoke("reconcile", "--config", config, "-q") == (0, "", "")
    assert invoke("db", "upgrade", "--config", config, "-q") == (0, "", "")
    report = tmp_path / "report.md"
    assert invoke(
        "report", "--config", config, "-q", "--format", "markdown", "-o", str(report)
    ) == (
        0,
        "",
        "",
    )
    assert report.read_text(encoding="utf-8").startswith("#")
    per_customer = tmp_path / "customers"
    assert invoke("report", "--config", config, "-q", "--per-customer", str(per_customer)) == (
        0,
        "",
        "",
    )
    assert any(per_customer.iterdir())
    for command in (["run"], ["status"], ["check"], ["reconcile"]):
        code, out, err = invoke(*command, "--json", "-q", "--config", config)
        assert (code, err) == (0, ""), (command, err)
        assert isinstance(json.loads(out), dict), command  # one document, nothing else
    code, out, err = invoke("report", "--config", config, "-q")
    assert code == 0 and err == "" and out.strip(), "the report asked for is the output"


def test_q_failure_is_the_one_error_line(env: SyncEnv) -> None:
    env.edit_config('every = "1m"', 'every = "*/15 * * *"')
    code, out, err = invoke("check", "--config", str(env.config_path), "-q")
    assert code == 2 and out == ""
    failed, summary = err.splitlines()
    assert failed.startswith("FAIL  schedule: [schedule] every = '*/15 * * *'")
    assert summary.startswith("jira-crm-sync: 1 check(s) failed, first schedule")


def test_config_after_the_command_wins_over_the_one_before(env: SyncEnv, tmp_path: Path) -> None:
    code, out, err = invoke(
        "--config", str(tmp_path / "nowhere.toml"), "status", "--json", "--config",
        str(env.config_path),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["store"] == env.store_url


def test_version() -> None:
    assert invoke("--version") == (0, f"jira-crm-sync {version('jira-crm-sync')}\n", "")


def test_a_usage_error_is_one_line_naming_the_help() -> None:
    code, out, err = invoke("run", "--confg", "x.toml")
    assert code == 2 and out == ""
    assert err == (
        "jira-crm-sync: No such option: --confg (Possible options: --config, --json, --only); "
        "see `jira-crm-sync run --help`\n"
    )


def test_no_command_shows_the_help() -> None:
    for path in ([], ["db"]):
        code, out, err = invoke(*path)
        assert code == 2 and "Usage: jira-crm-sync" in out and err == "", (path, err)


def test_the_console_script_takes_options_after_the_command(env: SyncEnv) -> None:
    done = subprocess.run(
        [str(CLI), "run", "--config", str(env.config_path), "-q"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    done = subprocess.run(
        [str(CLI), "status", "--json", "-q", "--config", str(env.config_path)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["summary"].startswith("last run #1: ok")
