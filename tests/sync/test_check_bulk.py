"""`check --online` says once whether Jira bulk edit is used, or one PUT per issue and why
(sync/check.py's "jira bulk edit" line), against the HTTPS sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from tests.sync.e2e import ANCHOR, SyncEnv, make_sandbox
from tests.sync.test_check import check, lines


@pytest.fixture
def env(tls: Tls, tmp_path: Path) -> Iterator[SyncEnv]:
    box: Sandbox = make_sandbox(40, 10, seed=2, anchor=ANCHOR)
    box.serve(tmp_path / "tls", tls=tls)
    opened = SyncEnv(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls=None)
    try:
        yield opened
    finally:
        opened.close()
        box.stop()


def test_check_says_whether_bulk_edit_is_used(env: SyncEnv) -> None:
    code, out, err = check(env, "--online")
    assert code == 0, out + err
    (line,) = [x for x in out.splitlines() if "jira bulk edit" in x]
    assert line.startswith("OK") and "bulk edits of up to 1000 issues" in line

    env.box.jira.denied_permissions.add("BULK_CHANGE")
    code, out, err = check(env, "--online")
    assert code == 0, out + err  # a warning: the sync still works, by PUT
    (warn,) = [x for x in lines(out, "WARN") if "jira bulk edit" in x]
    assert "global Bulk Change permission (BULK_CHANGE)" in warn
    assert "one PUT per issue" in warn
