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
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.server import Tls
from sync.engine import CycleOptions, Engine
from sync.progress import label, pull_bars, wanted
from sync.remote import build_remotes
from tests.sync.e2e import ANCHOR, SyncEnv, cli_env, in_process_env, make_sandbox, sync_env


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
    assert by_kind["jira_keys"][-1] == issues  # the first cycle's delete scan
    for kind in ("Account", "Case"):
        assert by_kind[kind][-1] == result.pulled[kind] + result.pulled.get(f"{kind}_deleted", 0)


def test_bars_show_each_kind_with_its_records_and_pages() -> None:
    stream = io.StringIO()
    with pull_bars(stream) as progress:
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
    # stderr on a pipe gets nothing: test_deploy runs the crontab line's `run` and
    # asserts its stderr is empty.
