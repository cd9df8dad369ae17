"""Progress bars on long pulls: the pull path reports growing counts as pages arrive, the
CLI draws rich bars on stderr only when stderr is a terminal (a pseudo-terminal here), and
nothing about progress reaches stdout, a pipe, ``--quiet`` or ``--log-format json``.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cli.bars import label, pull_bars, wanted
from sync.cycle.engine import CycleOptions, Engine
from sync.remote import build_remotes
from tests.sync.e2e import (
    ANCHOR,
    Clock,
    SyncEnv,
    calls,
    cli_env,
    in_process_env,
    make_sandbox,
    reset_calls,
    sync_env,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_the_pull_reports_growing_counts_that_end_at_what_was_pulled(
    sqlite_url: str, tmp_path: Path, tls: Tls
) -> None:
    reports: list[tuple[str, int]] = []
    with in_process_env(sqlite_url, tmp_path, tls) as env:
        engine = Engine(env.config, env.store, build_remotes(env.config), clock=env.clock)
        result = engine.run(CycleOptions(progress=lambda what, n: reports.append((what, n))))
        issues = len(env.box.jira.issues)
    assert result.exit_code == 0, result.message
    by_kind: dict[str, list[int]] = {}
    for what, n in reports:
        by_kind.setdefault(what, []).append(n)
    assert len(by_kind["jira_issues"]) >= 2  # 150 issues: two search pages of 100
    for what, counts in by_kind.items():
        assert counts == sorted(set(counts)), f"{what} counts do not grow: {counts}"
        assert counts[0] > 0
    assert by_kind["jira_issues"][-1] == result.pulled["jira_issues"] == issues
    assert "jira_keys" not in by_kind  # a first pull's own keys are the live set: no scan
    for kind in ("Account", "Case"):
        assert by_kind[kind][-1] == result.pulled[kind] + result.pulled.get(f"{kind}_deleted", 0)


def test_bars_show_each_kind_with_its_records_and_pages() -> None:
    stream = io.StringIO()
    with pull_bars(stream, "Salesforce") as progress:
        assert progress is not None
        progress("jira_issues", 100)
        progress("jira_issues", 150)
        progress("Account", 20)
    shown = stream.getvalue()
    assert "Jira issues" in shown and "150 records, 2 pages" in shown
    assert "Salesforce Account" in shown and "20 records, 1 pages" in shown
    with pull_bars(None) as nothing:
        assert nothing is None
    assert label("jira_keys") == "Jira keys (delete scan)"


class _Recorder:
    """What the bars are told: pull counts, totals, and push progress per side."""

    def __init__(self) -> None:
        self.pulled: list[tuple[str, int]] = []
        self.totals: dict[str, int] = {}
        self.pushed: dict[str, list[tuple[int, int]]] = {}

    def __call__(self, what: str, count: int) -> None:
        self.pulled.append((what, count))

    def total(self, what: str, n: int) -> None:
        self.totals[what] = n

    def push(self, side: str, handled: int, total: int) -> None:
        self.pushed.setdefault(side, []).append((handled, total))


COUNT = "jira POST /rest/api/2/search/approximate-count"


def test_bars_get_the_jira_total_and_push_totals_only_when_shown(
    sqlite_url: str, tmp_path: Path, tls: Tls
) -> None:
    told = _Recorder()
    with in_process_env(sqlite_url, tmp_path, tls) as env:
        engine = Engine(env.config, env.store, build_remotes(env.config), clock=env.clock)
        result = engine.run(CycleOptions(progress=told, push_progress=told.push))
        issues = len(env.box.jira.issues)
        counted = calls(env.box).count(COUNT)
        env.box.jira.update_issue(min(env.box.jira.issues), summary="changed")
        env.clock.advance(minutes=10)
        reset_calls(env.box)
        plain = engine.run(CycleOptions(progress=lambda what, n: None))  # no total wanted
        uncounted = calls(env.box).count(COUNT)
    assert result.exit_code == 0 and plain.exit_code == 0, result.message + plain.message
    assert counted == 1 and uncounted == 0  # a run off a terminal makes no extra call
    assert told.totals == {"jira_issues": issues}
    planned = {"salesforce": "salesforce_records", "jira": "jira_issues"}
    for side, reports in told.pushed.items():
        total = result.planned[planned[side]]
        assert reports[0] == (0, total) and reports[-1] == (total, total), (side, reports)
        assert [handled for handled, _ in reports] == sorted(handled for handled, _ in reports)
    assert set(told.pushed) == {"salesforce", "jira"}


def test_a_server_search_gives_its_total_without_another_call(tmp_path: Path, tls: Tls) -> None:
    clock = Clock(ANCHOR + timedelta(hours=1))
    box = Sandbox(issues=150, accounts=20, seed=2, anchor=ANCHOR, jira_mode="server")
    box.jira.clock = box.salesforce.clock = clock
    told = _Recorder()
    with sync_env(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls) as env:
        engine = Engine(env.config, env.store, build_remotes(env.config), clock=clock)
        result = engine.run(CycleOptions(full=True, only="pull", progress=told))
        made = calls(env.box)
        reset_calls(env.box)
        plain = engine.run(CycleOptions(full=True, only="pull", progress=lambda what, n: None))
        unshown = calls(env.box)
    assert result.exit_code == 0 and plain.exit_code == 0, result.message + plain.message
    assert told.totals == {"jira_issues": 150}
    assert made.count(COUNT) == 0
    search = "jira GET /rest/api/2/search"
    assert made.count(search) == unshown.count(search) > 0  # the total came with a page


def test_push_bars_show_writes_out_of_their_total_and_end_the_pull_bars() -> None:
    stream = io.StringIO()
    with pull_bars(stream, "Salesforce") as bars:
        assert bars is not None
        bars("jira_issues", 100)
        bars.total("jira_issues", 150)
        bars("jira_issues", 150)
        bars.pushed("salesforce", 0, 6)
        bars.pushed("salesforce", 6, 6)
        bars.pushed("jira", 10, 32)
        time.sleep(0.3)  # rich estimates the time left from how fast the count moves
        bars.pushed("jira", 20, 32)
        time.sleep(0.3)
    shown = stream.getvalue()
    assert "Jira issues" in shown and "150 of 150 records, 2 pages" in shown
    assert "Salesforce writes" in shown and "6 of 6 writes" in shown
    assert "Jira writes" in shown and "20 of 32 writes" in shown
    assert "ETA 0:00:" in shown


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_are_wanted_only_on_a_terminal_without_quiet_or_json_logs() -> None:
    assert wanted(_Tty(), quiet=False, json_logs=False)
    assert not wanted(io.StringIO(), quiet=False, json_logs=False)
    assert not wanted(_Tty(), quiet=True, json_logs=False)
    assert not wanted(_Tty(), quiet=False, json_logs=True)


def _run_with_tty_stderr(env: SyncEnv, *args: str) -> tuple[int, str, str]:
    """The real CLI with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # keep the pty from filling up and blocking the child
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        with subprocess.Popen(
            env.cli_args(*args),
            env={**cli_env(), "TERM": "xterm-256color", "COLUMNS": "120"},
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        ) as process:
            os.close(slave)
            out, _ = process.communicate(timeout=120)
        reader.join(timeout=10)
    finally:
        os.close(master)
    return process.returncode, out, b"".join(chunks).decode(errors="replace")


@pytest.fixture
def served(sqlite_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    box = make_sandbox(150, 20, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, sqlite_url, tls) as env:
        yield env


def test_the_cli_draws_bars_on_a_terminal_stderr_and_never_elsewhere(served: SyncEnv) -> None:
    code, out, terminal = _run_with_tty_stderr(served, "run", "--full", "--dry-run")
    assert code == 0, terminal
    assert "Jira issues" in terminal and "150 records" in terminal
    assert "Salesforce Account" in terminal
    assert out.startswith("pulled: ") and "\x1b" not in out  # stdout: only the result

    code, out, terminal = _run_with_tty_stderr(
        served, "--log-format", "json", "run", "--full", "--dry-run", "--json"
    )
    assert code == 0, terminal
    assert "records" not in terminal and "Jira issues" not in terminal
    assert out.startswith("{") and "\x1b" not in out

    # A real first sync: the Jira bar has its total, and the push its bars.
    code, out, terminal = _run_with_tty_stderr(served, "run")
    assert code == 0, terminal
    assert "150 of 150 records" in terminal
    assert "Salesforce writes" in terminal and "Jira writes" in terminal
    assert out.startswith("pulled: ") and "\x1b" not in out
    # stderr on a pipe gets nothing: test_deploy runs the crontab line's `run` and
    # asserts its stderr is empty.
