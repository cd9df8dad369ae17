"""Crash matrix (SPEC section 7; issues 5, 9 and 15): `jira-crm-sync run` is SIGKILLed at
every kill point of :data:`POINTS`, on a SQLite file and on PostgreSQL (skipped without
JIRA_CRM_SYNC_TEST_POSTGRES_URL); the rerun must converge with nothing lost or doubled.

The kills come from the sandbox side, with no hook in the product: the test wraps the
sandbox apps' ``handle`` (plain Python in this process, tests/sync/e2e.py ``KillSwitch``)
so that at the chosen call the child is killed, ``before`` the call is applied or
``after`` it was applied but before the answer leaves. A point names the call by its side,
its endpoint, whether it writes, and a needle in its request body (the flag marker: flag
comments ride in the issue's PUT, so a comment-carrying write is known by its body).

The points cover the whole cycle: mid-pull (the first search page served and not
received; before the second; the last served and not received; mid CRM pull), after store and before
push (the plan queued, before the first write), mid-batch (the report batch applied and
not recorded; the first, the third flag-carrying, the twelfth and the last Jira write
applied and not recorded), killed twice (then while re-checking comments), and in an
incremental cycle after :func:`change_world` (mid CRM pull, before the report batch, the
first Jira write applied, the write that posts a new flag's comment applied: the case that
duplicates comments when a rerun does not look first).

"Converged" is checked three ways: the remote state equals that of uninterrupted runs on
an identical fresh sandbox (no report record twice, no comment twice); the outbox holds
nothing pending or in flight; and one more run writes nothing (every ledger row is there,
so nothing is sent again).

Only the killed runs need a process of their own: the uninterrupted runs (the reference,
the first sync before an incremental kill, the rerun and the run after it) are the same
CLI run in this process (typer's runner), which spares each case the interpreter's start.
The CLI runs on real time; both runs of a comparison happen on the same UTC day, or the
case is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from mappings.text import MARKER_PREFIX
from sync.store.schema import bulk_tasks, outbox
from tests.sync.e2e import (
    ANCHOR,
    COMPOSITE,
    FIRST_SIGHT,
    JIRA_COMMENT,
    JIRA_COMMENTS,
    JIRA_PUT,
    JIRA_SEARCH,
    UPSERT,
    Calls,
    KillPoint,
    KillSwitch,
    RemoteState,
    SyncEnv,
    calls,
    cli_in_process,
    duplicate_comments,
    expected,
    make_sandbox,
    remote_state,
    reset_calls,
)

MARKER = MARKER_PREFIX.encode()


@dataclass(frozen=True)
class Case:
    """Kill the runs of a first sync (or of the incremental cycle after a first sync and
    :func:`change_world`) at ``kills``, one per run, then let one run finish."""

    cycle: Literal["first", "incremental"]
    kills: tuple[KillPoint, ...]
    #: Config lines changed for the case, as (old, new) for ``SyncEnv.edit_config``.
    config: tuple[tuple[str, str], ...] = ()
    #: Bulk API jobs the sandbox holds at the end, by state (the rerun resumed or resent).
    jobs: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ", then ".join(kill.name for kill in self.kills)


def _first(*kills: KillPoint) -> Case:
    return Case("first", kills)


def _incremental(*kills: KillPoint) -> Case:
    return Case("incremental", kills)


#: Report records upserted through Bulk API 2.0 jobs (every push above one record).
BULK = (("bulk_threshold = 2000", "bulk_threshold = 1"),)
JOB_UPLOAD = "PUT /services/data/v{version}/jobs/ingest/{job}/batches"
JOB_STATUS = "GET /services/data/v{version}/jobs/ingest/{job}"


def _bulk(jobs: tuple[str, ...], *kills: KillPoint) -> Case:
    return Case("first", kills, BULK, jobs)


#: Every kill point; each runs on both stores. ``nth`` < 0 counts from the end of the
#: reference run's calls of that kind.
POINTS = (
    # mid-pull
    _first(KillPoint("mid pull: first search page served", "jira", 1, JIRA_SEARCH, when="after")),
    _first(KillPoint("mid pull: before the second search page", "jira", 2, JIRA_SEARCH)),
    # A first pull's keys stand for the delete scan: one cut short must not mark the rest
    # deleted (its last page was served, never stored).
    _first(
        KillPoint("last search page served, not received", "jira", 2, JIRA_SEARCH, when="after")
    ),
    _first(KillPoint("Jira stored, mid CRM pull", "salesforce", 1, COMPOSITE)),
    # after store, before push: the push sends the CRM batch before any Jira write, so
    # the first write of a first sync is the report batch.
    _first(KillPoint("plan stored, before the first write", None, 1, writes_only=True)),
    # mid-batch, and after a remote write before its ledger entry
    _first(KillPoint("report batch applied, not recorded", "salesforce", 1, UPSERT, when="after")),
    _first(
        KillPoint(
            "first Jira write applied, not recorded", "jira", 1, writes_only=True, when="after"
        )
    ),
    _first(
        KillPoint(
            "mid-batch: third flag comment applied",
            "jira",
            3,
            writes_only=True,
            when="after",
            needle=MARKER,
        )
    ),
    _first(
        KillPoint(
            "mid Jira writes, the twelfth applied", "jira", 12, writes_only=True, when="after"
        )
    ),
    _first(
        KillPoint(
            "last Jira write applied, not recorded", "jira", -1, writes_only=True, when="after"
        )
    ),
    _first(
        KillPoint("tenth Jira write applied", "jira", 10, writes_only=True, when="after"),
        KillPoint("re-checking comments", "jira", 1, JIRA_COMMENTS),
    ),
    # Bulk API 2.0: the job created and recorded, its data not sent (the rerun aborts it
    # and sends again); the job done at Salesforce (records written), nothing recorded in
    # the outbox yet (the rerun polls it and maps its results back)
    _bulk(
        ("Aborted", "JobComplete"),
        KillPoint("bulk job recorded, its data not sent", "salesforce", 1, JOB_UPLOAD),
    ),
    _bulk(
        ("JobComplete",),
        KillPoint("bulk job processed, not recorded", "salesforce", 2, JOB_STATUS, when="after"),
    ),
    # an incremental cycle
    _incremental(KillPoint("changes pulled, mid CRM pull", "salesforce", 1, COMPOSITE)),
    _incremental(KillPoint("changes planned, before the report batch", "salesforce", 1, UPSERT)),
    _incremental(
        KillPoint("first Jira write of the changes applied", "jira", 1, JIRA_PUT, when="after")
    ),
    _incremental(
        KillPoint(
            "new flag's comment applied, not recorded",
            "jira",
            1,
            writes_only=True,
            when="after",
            needle=MARKER,
        )
    ),
)
CASES = [
    pytest.param(
        backend,
        case,
        marks=[pytest.mark.postgres] if backend == "postgresql" else [],
        id=f"{backend}-{case}",
    )
    for backend in ("sqlite", "postgresql")
    for case in POINTS
]


def crash_world() -> Sandbox:
    """Small, yet with three search pages, a report batch, label writes and flag comments
    (the configs comment on the first sight of a level)."""
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


def _run(env: SyncEnv) -> dict[str, Any]:
    """One uninterrupted `run --json`, in this process."""
    code, out, err = cli_in_process(env, "run", "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def _jira_writes(made: Calls) -> int:
    return made.count(f"jira {JIRA_PUT}") + made.count(f"jira {JIRA_COMMENT}")


@dataclass(frozen=True)
class Reference:
    """Remote states after an uninterrupted first sync and incremental cycle."""

    first: RemoteState
    second: RemoteState
    calls: Calls
    day: str


@pytest.fixture(scope="module")
def matrix_box(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[Sandbox]:
    """One served sandbox for the reference and the whole matrix, back at its seeded world
    for each."""
    box = crash_world()
    box.serve(tmp_path_factory.mktemp("matrix-tls"), tls=tls)
    try:
        yield box
    finally:
        box.stop()


def _fresh(box: Sandbox) -> None:
    for app in (box.jira_app, box.salesforce_app):
        with app.lock:
            app.backend.reset()
        app.faults.clear()
    reset_calls(box)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, matrix_box: Sandbox) -> Reference:
    """Uninterrupted runs on the freshly seeded world."""
    directory = tmp_path_factory.mktemp("matrix-reference")
    day = _today()
    _fresh(matrix_box)
    env = SyncEnv(matrix_box, directory, f"sqlite:///{directory / 'state.db'}", None)
    try:
        env.edit_config(*FIRST_SIGHT)
        _run(env)
        made = calls(matrix_box)
        first = remote_state(matrix_box)
        change_world(matrix_box)
        second = _run(env)
    finally:
        env.close()
    assert second["written"].get("jira_issues", 0) >= 1
    return Reference(first, remote_state(matrix_box), made, day)


def test_the_reference_runs_cover_the_kill_points(reference: Reference) -> None:
    """The world gives every kill point something to hit (guards :data:`POINTS`)."""
    made = reference.calls
    assert made.count(f"jira {JIRA_SEARCH}") >= 3
    assert made.count(f"salesforce {UPSERT}") == 1
    assert made.count(f"jira {JIRA_PUT}") >= 5
    # Flag comments ride in the issue's PUT; a comment is read back only after a crash.
    assert made.count(f"jira {JIRA_COMMENT}") == made.count(f"jira {JIRA_COMMENTS}") == 0
    assert _jira_writes(made) > 12  # "the twelfth applied"
    comments = [b for c in reference.first.comments.values() for b in c if MARKER_PREFIX in b]
    assert len(comments) >= 3  # "the third flag comment"
    assert reference.first.report_records >= 3
    assert reference.first.labels != reference.second.labels


@pytest.fixture
def crash(
    matrix_box: Sandbox, store_url: str, tmp_path: Path, reference: Reference
) -> Iterator[tuple[SyncEnv, KillSwitch]]:
    """The shared sandbox back at its seeded world, a config on this case's store, and a
    kill switch on the sandbox apps."""
    _fresh(matrix_box)
    env = SyncEnv(matrix_box, tmp_path, store_url, None)
    env.edit_config(*FIRST_SIGHT)
    switch = KillSwitch(matrix_box)
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


def _same(env: SyncEnv, want: RemoteState, reference: Reference) -> None:
    if _today() != reference.day:
        pytest.skip("the runs crossed UTC midnight; the reference is of the day before")
    assert remote_state(env.box).differences(want) == []  # report records counted
    assert duplicate_comments(env.box) == {}


def _resolved(kill: KillPoint, reference: Reference) -> KillPoint:
    """``kill`` with a negative ``nth`` counted from the end of the reference's writes."""
    if kill.nth > 0:
        return kill
    total = _jira_writes(reference.calls)
    assert total >= -kill.nth, "the reference run made fewer such calls"
    return replace(kill, nth=total + 1 + kill.nth)


@pytest.mark.parametrize(("store_url", "case"), CASES, indirect=["store_url"])
def test_killed_at_each_point_the_rerun_converges_with_nothing_lost_or_doubled(
    crash: tuple[SyncEnv, KillSwitch], reference: Reference, case: Case
) -> None:
    env, switch = crash
    for old, new in case.config:
        env.edit_config(old, new)
    want = reference.first
    if case.cycle == "incremental":
        _run(env)
        _same(env, reference.first, reference)
        change_world(env.box)
        want = reference.second

    for kill in case.kills:
        switch.arm(_resolved(kill, reference))
        code, _out, err = switch.run(env, "run")
        assert switch.fired, f"the run ended (exit {code}) before {kill}: {err}"
        assert code == -9
        switch.arm(None)
        env.wait_unlocked()  # PostgreSQL: the dead run's session, ended by the server
    rerun = _run(env)
    assert rerun["status"] == "ok", rerun

    _same(env, want, reference)
    assert _unfinished(env) == {}
    if case.jobs:
        jobs = env.box.salesforce.ingest_jobs.values()
        assert tuple(sorted(job.state for job in jobs)) == case.jobs
    again = _run(env)
    assert again["written"] == {}, again
    assert remote_state(env.box).differences(want) == []


# -- bulk edits (issue 17) --------------------------------------------------------------
# Without comments on first sight, a first sync's label writes are Jira Cloud bulk edits
# (sync.cycle.push_jira): killed once the submit was applied but before its task id was
# recorded, the rerun sends them again; killed while polling a recorded task, the rerun
# reads that task's progress and settles its rows. Either way nothing is written twice.
BULK_SUBMIT = "POST /rest/api/3/bulk/issues/fields"
BULK_POLL = "GET /rest/api/3/bulk/queue/{taskId}"
BULK_POINTS = (
    KillPoint("bulk edit submitted, task id not recorded", "jira", 1, BULK_SUBMIT, when="after"),
    KillPoint("bulk task recorded, its progress read", "jira", 1, BULK_POLL, when="after"),
)
BULK_CASES = [
    pytest.param(
        backend,
        point,
        marks=[pytest.mark.postgres] if backend == "postgresql" else [],
        id=f"{backend}-{point}",
    )
    for backend in ("sqlite", "postgresql")
    for point in BULK_POINTS
]


@pytest.fixture(scope="module")
def bulk_reference(tmp_path_factory: pytest.TempPathFactory, matrix_box: Sandbox) -> Reference:
    """An uninterrupted first sync that comments only on changes (so labels go in bulk)."""
    directory = tmp_path_factory.mktemp("matrix-bulk-reference")
    day = _today()
    _fresh(matrix_box)
    env = SyncEnv(matrix_box, directory, f"sqlite:///{directory / 'state.db'}", None)
    try:
        _run(env)
        made = calls(matrix_box)
        first = remote_state(matrix_box)
    finally:
        env.close()
    assert made.count(f"jira {BULK_SUBMIT}") >= 1  # the world gives the points a bulk edit
    assert made.count(f"jira {BULK_POLL}") >= 1
    return Reference(first, first, made, day)


@pytest.mark.parametrize(("store_url", "point"), BULK_CASES, indirect=["store_url"])
def test_killed_mid_bulk_edit_the_rerun_converges_with_nothing_written_twice(
    matrix_box: Sandbox,
    store_url: str,
    tmp_path: Path,
    bulk_reference: Reference,
    point: KillPoint,
) -> None:
    _fresh(matrix_box)
    env = SyncEnv(matrix_box, tmp_path, store_url, None)
    switch = KillSwitch(matrix_box)
    switch.install()
    try:
        switch.arm(point)
        code, _out, err = switch.run(env, "run")
        assert switch.fired and code == -9, f"the run ended (exit {code}) before {point}: {err}"
        switch.arm(None)
        env.wait_unlocked()  # PostgreSQL: the dead run's session, ended by the server
        recorded = env.store.read
        with recorded() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(bulk_tasks)).scalar()
        assert left == (1 if point.endpoint == BULK_POLL else 0)
        reset_calls(matrix_box)
        rerun = _run(env)
        assert rerun["status"] == "ok", rerun
        if point.endpoint == BULK_POLL:  # settled from the task: not submitted again
            assert calls(matrix_box).count(f"jira {BULK_SUBMIT}") == (
                bulk_reference.calls.count(f"jira {BULK_SUBMIT}") - 1
            )
        _same(env, bulk_reference.first, bulk_reference)
        assert _unfinished(env) == {}
        with recorded() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(bulk_tasks)).scalar() == 0
    finally:
        switch.uninstall()
        env.close()
