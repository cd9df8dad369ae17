"""Crash matrix (issue 9): `jira-crm-sync run` SIGKILLed at each stage of a cycle, on
SQLite and on PostgreSQL; the rerun must converge with nothing lost or doubled.

The four stages the issue names, and where each is killed here (the kill comes from
inside the sandbox, as in tests/sync/test_e2e_crash.py, whose wider list of points this
complements):

- mid-pull: the first Jira search page was served, the process dies holding it unstored;
- after store, before push: the pull is stored and the plan queued in the outbox, the
  process dies at the first write call of the cycle, before the remote applies it;
- mid-batch: the push is half done, the process dies right after the remote applied a
  Jira write carrying a flag comment (some writes of the batch recorded, one applied but
  unrecorded, the rest queued);
- after remote write, before ledger: in an incremental cycle, the write that posts a new
  flag's comment is applied and the process dies before it hears so (the case that
  duplicates comments when a rerun does not look first).

"Converged" is checked three ways: the remote state equals that of uninterrupted runs on
an identical fresh sandbox (no report record twice, no comment twice); the outbox holds
nothing pending or in flight; and one more run writes nothing (every ledger row is there,
so nothing is sent again). A comment-carrying write is recognised by the flag marker in
its request body, whichever call the push uses for comments.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.http import SandboxRequest
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from mappings.text import MARKER_PREFIX
from sync.store.schema import outbox
from tests.sync.e2e import (
    ANCHOR,
    FIRST_SIGHT,
    JIRA_SEARCH,
    KillSwitch,
    RemoteState,
    SyncEnv,
    duplicate_comments,
    expected,
    make_sandbox,
    remote_state,
    reset_calls,
    sync_env,
)

Stage = Literal["mid-pull", "after store, before push", "mid-batch", "after write, before ledger"]
MARKER = MARKER_PREFIX.encode()


@dataclass(frozen=True)
class Kill:
    """Where to SIGKILL: the ``nth`` call on ``side`` (None: either side) matching
    ``endpoint`` (a stats key), a write when ``writes_only``, whose body contains
    ``needle``; ``before`` the sandbox applies it or ``after``; in the ``first`` sync or
    in the ``incremental`` cycle after :func:`change_world`."""

    stage: Stage
    side: Literal["jira", "salesforce"] | None
    nth: int
    when: Literal["before", "after"]
    cycle: Literal["first", "incremental"] = "first"
    endpoint: str | None = None
    writes_only: bool = False
    needle: bytes | None = None

    def __str__(self) -> str:
        return self.stage


class StageSwitch(KillSwitch):
    """The kill switch of tests/sync/e2e.py, matching a :class:`Kill` (either side, and
    on the request body)."""

    def _matches(self, side: Any, app: SandboxApp, request: SandboxRequest) -> bool:
        kill = self.point
        if not isinstance(kill, Kill) or self.fired:
            return False
        if kill.side is not None and side != kill.side:
            return False
        route, _params, _known = app.backend.router.match(request.method, request.path)
        if route is None:
            return False
        if kill.endpoint is not None and route.stats_key != kill.endpoint:
            return False
        if kill.writes_only and not route.writes(request):
            return False
        if kill.needle is not None and kill.needle not in request.body:
            return False
        with self._lock:
            self._seen += 1
            if self._seen == kill.nth:
                self.fired = True
                return True
        return False


KILLS = (
    Kill("mid-pull", "jira", 1, "after", endpoint=JIRA_SEARCH),
    Kill("after store, before push", None, 1, "before", writes_only=True),
    Kill("mid-batch", "jira", 3, "after", writes_only=True, needle=MARKER),
    Kill(
        "after write, before ledger",
        "jira",
        1,
        "after",
        cycle="incremental",
        writes_only=True,
        needle=MARKER,
    ),
)
CASES = [
    pytest.param(
        backend,
        kill,
        marks=[pytest.mark.postgres] if backend == "postgresql" else [],
        id=f"{backend}-{kill.stage}",
    )
    for backend in ("sqlite", "postgresql")
    for kill in KILLS
]


def crash_world() -> Sandbox:
    """Small, yet with two search pages, a report batch, labels and flag comments (the
    configs comment on the first sight of a level)."""
    return make_sandbox(110, 20, seed=2, anchor=ANCHOR)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def change_world(box: Sandbox) -> None:
    """Between two cycles: an issue carrying our label is resolved, and a linked customer's
    CSAT drops below the at-risk line (its open items get the label and a flag comment)."""
    want = expected(box, datetime.now(UTC).date())
    box.jira.update_issue(min(want.labelled), status="Done")
    linked = {account for accounts in want.links.values() for account in accounts}
    box.salesforce.update_record("Account", min(linked - want.at_risk), CSAT__c=2.0)


@dataclass(frozen=True)
class Reference:
    """Remote states after an uninterrupted first sync and incremental cycle."""

    first: RemoteState
    second: RemoteState
    day: str


def _run(env: SyncEnv) -> dict[str, Any]:
    done = env.cli("run", "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Reference:
    directory = tmp_path_factory.mktemp("matrix-reference")
    day = _today()
    box = crash_world()
    with sync_env(box, directory, f"sqlite:///{directory / 'state.db'}", tls) as env:
        env.edit_config(*FIRST_SIGHT)
        _run(env)
        first = remote_state(box)
        change_world(box)
        second = _run(env)
    # Each kill point has something to hit in the runs it is armed for.
    assert sum(1 for c in first.comments.values() for body in c if MARKER_PREFIX in body) >= 3
    assert second["written"].get("jira_issues", 0) >= 1
    return Reference(first, remote_state(box), day)


@pytest.fixture(scope="module")
def matrix_box(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[Sandbox]:
    """One served sandbox for the whole matrix, back at its seeded world for each case."""
    box = crash_world()
    box.serve(tmp_path_factory.mktemp("matrix-tls"), tls=tls)
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def crash(
    matrix_box: Sandbox, store_url: str, tmp_path: Path
) -> Iterator[tuple[SyncEnv, StageSwitch]]:
    for app in (matrix_box.jira_app, matrix_box.salesforce_app):
        with app.lock:
            app.backend.reset()
        app.faults.clear()
    reset_calls(matrix_box)
    env = SyncEnv(matrix_box, tmp_path, store_url, None)
    env.edit_config(*FIRST_SIGHT)
    switch = StageSwitch(matrix_box)
    switch.install()
    try:
        yield env, switch
    finally:
        switch.uninstall()
        env.close()


def _unfinished(env: SyncEnv) -> dict[str, int]:
    """Outbox rows by state, other than done."""
    with env.store.read() as conn:
        rows = conn.execute(
            sa.select(outbox.c.state, sa.func.count())
            .where(outbox.c.state != "done")
            .group_by(outbox.c.state)
        ).all()
    return {str(state): int(n) for state, n in rows}


@pytest.mark.parametrize(("store_url", "kill"), CASES, indirect=["store_url"])
def test_killed_at_each_stage_the_rerun_converges_with_nothing_lost_or_doubled(
    crash: tuple[SyncEnv, StageSwitch], reference: Reference, kill: Kill
) -> None:
    env, switch = crash
    want = reference.first
    if kill.cycle == "incremental":
        _run(env)
        change_world(env.box)
        want = reference.second

    switch.arm(kill)  # type: ignore[arg-type]  # a Kill is what StageSwitch matches
    code, _out, err = switch.run(env, "run")
    assert switch.fired, f"the run ended (exit {code}) before the {kill.stage} kill: {err}"
    assert code == -9
    switch.arm(None)
    env.expire_leases()  # PostgreSQL: the dead run's shard leases
    rerun = _run(env)
    assert rerun["status"] == "ok", rerun

    if _today() != reference.day:
        pytest.skip("the runs crossed UTC midnight; the reference is of the day before")
    got = remote_state(env.box)
    assert got.differences(want) == []  # report records counted: none doubled
    assert duplicate_comments(env.box) == {}
    assert _unfinished(env) == {}
    again = _run(env)
    assert again["written"] == {}, again
    assert remote_state(env.box).differences(want) == []
