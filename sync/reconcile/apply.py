"""``reconcile --apply``: the fixes written through the cycle's own record and push.

Holding the run lock (SQLite) or every shard (PostgreSQL), the records read are stored as
they are read (:class:`~sync.reconcile.read.Pages`), each compared batch is recorded as a
cycle records it (links, progress, ledger-only updates, queued writes), the flags after
the last batch, and the fixes pushed through the outbox exactly as ``run`` does, so
retries, parking, ledgers and crash safety all apply. Cursors are left alone: the next
``run`` reads on from its own.

Report records of pairs that no longer exist are reported, never deleted: a pair can
disappear because a link value was cleared by mistake, and deleting what account managers
read in the CRM is a decision for a person (the report names each record). Redundant flag
comments the integration user posted are deleted (a person's copy is reported, never
deleted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from connectors.jira import DELETE_OWN_COMMENTS
from sync.config import Config
from sync.cycle.derive import Derived, DeriveEnd
from sync.cycle.ownership import ownership, worker_name
from sync.cycle.push import PushResult, push
from sync.cycle.record import record_batch, record_end
from sync.exitcodes import ExitCode

# The cycle's record and push functions: imported here only.
from sync.reconcile.report import ReconcileReport
from sync.remote import Remotes
from sync.store import Store, repo


@contextmanager
def _exclusive(config: Config, store: Store) -> Iterator[Callable[[], None]]:
    """Have the store to ourselves like `run` (:func:`sync.cycle.ownership.ownership`: the
    run lock; LockHeld while another run or a serve job holds it). Yields a check that the
    lock is still ours, to call before writing."""
    with ownership(store, config, worker_name("reconcile")) as held:
        yield held.still_mine


class Apply:
    """The writes of ``reconcile --apply``, in the order a cycle makes them."""

    def __init__(
        self,
        store: Store,
        remotes: Remotes,
        now: datetime,
        report: ReconcileReport,
        still_mine: Callable[[], None],
    ) -> None:
        self.store, self.remotes, self.now = store, remotes, now
        self.report, self.still_mine = report, still_mine

    def start(self) -> None:
        """The run record, before anything is written to the store."""
        self.still_mine()
        with self.store.transaction() as tx:
            self.report.run_id = repo.start_run(
                tx, worker_name("reconcile"), dry_run=False, full=True, started_at=self.now
            )

    def batch(self, derived: Derived) -> None:
        """Record one compared batch as the cycle records it, its parked writes due now."""
        self.still_mine()
        record_batch(self.store, derived, self.report.run_id, self.now)
        _retry_now(self.store, derived, self.now)

    def finish(self, end: DeriveEnd, redundant: Mapping[str, tuple[str, ...]]) -> None:
        """The flags, the marks the stored read left, then the push and the redundant flag
        comments."""
        store, now, report = self.store, self.now, self.report
        self.still_mine()
        record_end(store, end, now)
        with store.transaction() as tx:
            # The marks the stored read left for a crash before its projects were recorded;
            # the batches covered them (no one else pulls while we hold the store).
            # Projects left without items keep theirs: the next run clears their links.
            covered = set(end.projects)
            marks = repo.dirty_marks(tx)
            repo.clear_dirty(tx, [mark for mark in marks if mark.project_key in covered])
        pushed = PushResult()
        try:
            push(store, self.remotes.jira, self.remotes.crm, now, report.run_id, pushed)
        finally:
            report.written, report.failed = pushed.written, pushed.failed
        if pushed.failed:
            report.status, report.exit_code = "parked", ExitCode.PARKED
            report.message = (
                f"{len(pushed.failed)} fix(es) were rejected and parked for retry; "
                "`jira-crm-sync status` lists them and the next run retries them"
            )
        _delete_redundant(self.remotes, redundant, report)


def _retry_now(store: Store, derived: Derived, now: datetime) -> None:
    """Parked writes of the records being fixed get a fresh set of attempts, due now: a
    person asked for the fixes, so a write waiting out its backoff is sent with them."""
    plan = derived.plan
    planned = {("crm", w.external_id) for w in plan.crm} | {
        ("jira", w.issue_key) for w in plan.jira
    }
    if not planned:
        return
    with store.transaction() as tx:
        parked = repo.parked_refs(tx)
        stuck = [entry.id for entry in parked if (entry.target, entry.record_key) in planned]
        # Due at this reconcile's own time (push compares with it), not the wall clock's.
        if stuck:
            repo.retry_parked(tx, stuck, now=now)


def _delete_redundant(
    remotes: Remotes, redundant: Mapping[str, tuple[str, ...]], report: ReconcileReport
) -> None:
    """Delete the redundant flag comments we posted: each repeats a level its customer's
    previous marker on the issue already announced. Where the Jira user lacks Delete Own
    Comments (one permission read per project), its comments are left and the report
    says so (exit 1): they stay listed under duplicates."""
    jira = remotes.jira
    projects = sorted({key.rsplit("-", 1)[0] for key in redundant})
    denied = {
        project
        for project in projects
        if not jira.my_permissions([DELETE_OWN_COMMENTS], project).get(DELETE_OWN_COMMENTS)
    }
    deleted = 0
    left = 0
    for key, ids in sorted(redundant.items()):
        if key.rsplit("-", 1)[0] in denied:
            left += len(ids)
            continue
        for comment_id in ids:
            if jira.delete_comment(key, comment_id):
                deleted += 1
    if deleted:
        report.written["jira_comments_deleted"] = deleted
    if left:
        said = (
            f"{left} flag comment(s) posted twice were left: the Jira user lacks Delete Own "
            f"Comments in {', '.join(sorted(denied))}; a Jira admin can grant it in the "
            "project's permission scheme, or delete them by hand (listed under duplicates)"
        )
        report.message = f"{report.message}; {said}" if report.message else said
        if report.exit_code == ExitCode.OK:
            report.status, report.exit_code = "parked", ExitCode.PARKED
