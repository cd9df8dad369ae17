"""deploy/: the systemd units pass `systemd-analyze verify` (pointed at the real installed
entry point), their command lines parse, the default state file lands in the unit's
StateDirectory, and the crontab line is a valid schedule whose command syncs a sandbox.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from croniter import croniter

from connectors.sandbox.server import Tls
from sync.store import default_state_path
from tests.sync.e2e import ANCHOR, CLI, cli_env, make_sandbox, sync_env

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED = "/opt/jira-crm-sync/bin/jira-crm-sync"
CONFIG = "/etc/jira-crm-sync/jira-crm-sync.toml"
UNITS = ("jira-crm-sync.service", "jira-crm-sync-run.service", "jira-crm-sync-run.timer")
WORKER = "jira-crm-sync-worker@.service"
CONNECTIONS = "/etc/jira-crm-sync/connections"
SERVICES = {"jira-crm-sync.service": "serve", "jira-crm-sync-run.service": "run"}


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # keys are case-sensitive
    parser.read(DEPLOY / name, encoding="utf-8")
    return parser


def _exec_start(name: str) -> list[str]:
    return shlex.split(_unit(name)["Service"]["ExecStart"])


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # The worker template is verified as an instance of it, as systemctl would start it.
    files = {**{name: name for name in UNITS}, "jira-crm-sync-worker@1.service": WORKER}
    for target, name in files.items():
        text = (DEPLOY / name).read_text(encoding="utf-8")
        (tmp_path / target).write_text(text.replace(INSTALLED, str(CLI)), encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values, but says so: nothing may be said.
    assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), done.stderr


@pytest.mark.parametrize(("name", "command"), sorted(SERVICES.items()))
def test_each_service_runs_a_real_command_with_json_logs(name: str, command: str) -> None:
    argv = _exec_start(name)
    assert argv[0] == INSTALLED
    assert argv[1:] == ["--config", CONFIG, "--log-format", "json", command]
    # Every option parses: the same line with --help exits 0 before doing anything.
    done = subprocess.run(
        [str(CLI), *argv[1:], "--help"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    service = _unit(name)["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["EnvironmentFile"] == "-/etc/jira-crm-sync/env"
    assert service["User"] == "jira-crm-sync" and service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"


def test_the_worker_template_serves_the_connections_directory_each_on_its_own_port() -> None:
    argv = _exec_start(WORKER)
    assert argv[0] == INSTALLED
    assert argv[1:] == [
        "--connections",
        CONNECTIONS,
        "--log-format",
        "json",
        "serve",
        "--listen",
        "127.0.0.1:947%i",
    ]
    instance = [a.replace("%i", "3") for a in argv[1:]]
    done = subprocess.run(
        [str(CLI), *instance, "--help"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    service = _unit(WORKER)["Service"]
    assert service["KillSignal"] == "SIGTERM" and service["RestartPreventExitStatus"] == "2"
    assert service["User"] == "jira-crm-sync" and service["ProtectSystem"] == "strict"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_default_state_file_is_in_the_units_state_directory(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _unit(name)["Service"]
    variable, value = service["Environment"].split("=", 1)
    monkeypatch.setenv(variable, value)
    state_directory = Path("/var/lib") / service["StateDirectory"]
    assert default_state_path().parent == state_directory


def test_the_timer_starts_the_run_service() -> None:
    timer = _unit("jira-crm-sync-run.timer")["Timer"]
    assert timer["Unit"] == "jira-crm-sync-run.service"
    assert _unit("jira-crm-sync-run.service")["Service"]["Type"] == "oneshot"


def test_the_crontab_line_is_a_schedule_whose_command_syncs(tmp_path: Path, tls: Tls) -> None:
    lines = [
        line
        for line in (DEPLOY / "crontab").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    schedule, command = " ".join(fields[:5]), fields[5]
    assert croniter.is_valid(schedule)
    start = datetime(2026, 3, 2, 10, 1, tzinfo=UTC)
    assert croniter(schedule, start).get_next(datetime) == datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    assert command.startswith(f"{INSTALLED} --config {CONFIG} ")

    box = make_sandbox(40, 6, seed=3, anchor=ANCHOR)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with sync_env(box, tmp_path, url, tls) as env:
        real = command.replace(INSTALLED, str(CLI)).replace(CONFIG, str(env.config_path))
        done = subprocess.run(
            ["/bin/sh", "-c", real],  # as cron runs it
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # Nothing on stderr: cron mails only trouble, and no progress bar off a terminal.
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        assert box.salesforce.records("Jira_Project_Status__c")  # it synced
