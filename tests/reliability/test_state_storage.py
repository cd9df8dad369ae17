"""A state store that cannot be written, through the real `run`: a SQLite file on a
read-only file system (before and after a first run) and on a file system that fills up
in the middle of a cycle. Property: exit 2 with one line naming the file and the fix, no
traceback, and the existing state intact (``PRAGMA integrity_check`` ok, cursors as the
last good run left them); once space is back, the next run converges.

The tests mount a small tmpfs, so they need root (or CAP_SYS_ADMIN); elsewhere they skip
with that reason. Root ignores file permissions, so a chmod 0555 directory would prove
nothing here: a read-only mount refuses root too.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.server import Tls
from sync.store import open_store
from tests.reliability.helpers import cli, cursor_values, one_error_line
from tests.sync.e2e import (
    ANCHOR,
    SyncEnv,
    expected,
    labelled,
    make_sandbox,
    report_counts,
    store_snapshot,
)


class Tmpfs:
    """A tmpfs of a fixed size mounted on a directory (unmounted by the fixture)."""

    def __init__(self, where: Path, size: str) -> None:
        self.where = where
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")

    def remount(self, option: str) -> None:
        """``ro`` or ``rw``."""
        subprocess.run(["mount", "-o", f"remount,{option}", str(self.where)], check=True)

    def fill(self) -> Path:
        """Write a file until the file system is full; returns it."""
        filler = self.where / f"filler-{uuid.uuid4().hex}"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)
        return filler

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.where)], check=False)


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Tmpfs]:
    fs = Tmpfs(tmp_path / "mnt", "24m")
    try:
        yield fs
    finally:
        fs.unmount()


def _integrity(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def _change_both_sides(env: SyncEnv) -> None:
    want = expected(env.box, datetime.now(UTC).date())
    env.box.jira.update_issue(min(want.labelled), status="Done")
    happy = next(a for a in env.box.salesforce.records("Account") if a["Id"] not in want.at_risk)
    env.box.salesforce.update_record("Account", happy["Id"], CSAT__c=1.5)


def _converged(env: SyncEnv) -> None:
    want = expected(env.box, datetime.now(UTC).date())
    assert report_counts(env.box) == want.reports
    assert labelled(env.box) == want.labelled


@pytest.fixture
def env(tmp_path: Path, tls: Tls, mount: Tmpfs) -> Iterator[SyncEnv]:
    box = make_sandbox(60, 12, seed=2, anchor=ANCHOR)
    opened = SyncEnv(box, tmp_path / "env", f"sqlite:///{mount.where / 'state.db'}", tls)
    try:
        yield opened
    finally:
        opened.close()


def _close_store(env: SyncEnv) -> None:
    """Close the test's own connections, so only the run under test holds the file."""
    if env._store is not None:
        env._store.close()
        env._store = None


def _state(env: SyncEnv) -> Path:
    """The state file (from the URL: opening the store would need space)."""
    return Path(env.store_url.removeprefix("sqlite:///"))


def test_a_state_file_on_a_read_only_file_system_is_named_with_the_fix(
    env: SyncEnv, mount: Tmpfs
) -> None:
    mount.remount("ro")
    line = one_error_line(cli(str(env.config_path), "run"), 2)
    assert str(mount.where) in line, line
    assert "[state]" in line and "url" in line, line


def test_a_file_system_turned_read_only_keeps_the_state_intact(env: SyncEnv, mount: Tmpfs) -> None:
    assert cli(str(env.config_path), "run").exit_code == 0
    before, snapshot = cursor_values(env.store), store_snapshot(env.store)
    _close_store(env)
    _change_both_sides(env)
    mount.remount("ro")

    line = one_error_line(cli(str(env.config_path), "run"), 2)

    assert str(mount.where) in line and "not writable" in line, line
    mount.remount("rw")
    assert _integrity(_state(env)) == "ok"
    assert cursor_values(env.store) == before
    assert store_snapshot(env.store) == snapshot
    _close_store(env)
    assert cli(str(env.config_path), "run").exit_code == 0
    _converged(env)


def test_a_disk_that_fills_up_mid_cycle_stops_the_run_cleanly_and_loses_nothing(
    env: SyncEnv, mount: Tmpfs
) -> None:
    assert cli(str(env.config_path), "run").exit_code == 0
    before = cursor_values(env.store)
    _close_store(env)
    _change_both_sides(env)
    # The disk fills once the run has opened the store and started pulling.
    fillers: list[Path] = []
    app = env.box.jira_app
    original = app.handle

    def fill_at_first_search(request: SandboxRequest) -> SandboxResponse:
        if not fillers and "/search" in request.path:
            fillers.append(mount.fill())
        return original(request)

    app.handle = fill_at_first_search  # type: ignore[method-assign]
    try:
        result = cli(str(env.config_path), "run")
    finally:
        app.handle = original  # type: ignore[method-assign]

    assert fillers, "the disk never filled: the run made no search"
    filler = fillers[0]
    line = one_error_line(result, 2)
    assert str(_state(env)) in line and "disk is full" in line, line
    assert "free space" in line, line
    assert _integrity(_state(env)) == "ok"
    os.unlink(filler)  # (opening the store to read it needs a little space too)
    # Cursors stay where the last good run left them (none moved past unstored records).
    assert cursor_values(env.store) == before
    _close_store(env)
    again = cli(str(env.config_path), "run")
    assert again.exit_code == 0, again.stdout + again.stderr
    _converged(env)
    assert _integrity(_state(env)) == "ok"


def test_a_state_directory_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    """Any user: the [state] url points under a regular file."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(Exception) as caught:
        open_store(f"sqlite:///{blocker / 'state.db'}")
    assert str(blocker) in str(caught.value)
    assert type(caught.value).__name__ == "StoreError"
