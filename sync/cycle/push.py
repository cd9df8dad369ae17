"""The push stage: sending the outbox's due writes to Jira and the CRM.

Everything here sends (:mod:`sync.cycle.record` queued the writes). Crash safety: a
write is marked in flight before it is sent, and done (with its ledger row) in one
transaction after the remote accepted it. Every write is idempotent, so a row found in
flight after a crash is simply sent again: CRM records are upserted by external id,
labels are added/removed (not toggled), a field is set, and a flag comment is posted only
when the issue's latest marker for that customer does not already show the level (a
comment posted just before a crash is found, not repeated).

Where the CRM keeps one report per customer on the customer record itself
(:class:`~connectors.crm.OneReportPerCustomer`), only the report of the customer's main
project (the lowest project key among its stored links) is sent; the others are
recorded as written without a call. The choice reads the store's links, so it holds
however the outbox is batched and whichever of the customer's reports changed.

Jira writes (:mod:`sync.cycle.push_jira`): label and flag-field changes shared by many
issues go as Jira Cloud bulk edits of up to 1000 issues; any other write is one
``PUT /issue/{key}`` carrying its labels, field and comments. The comments are read back
first only for a write that may already have reached Jira: one found in flight, and its
re-plans (``verify`` in the payload), until it is done. A write never sent cannot have
posted anything, so the common case costs one call per issue.

A comment the ledger cannot vouch for (the first sight of a level, posted with
``comment_on_first_sight``: after a new or lost state store every level is a first sight)
may already be on the site. Before the first such write of a push, one search for our
marker text (keys only, paged) finds every issue in scope that carries a marker; only
those issues get their comments read before the write, and the markers found there are
not posted again (the ledger records them). Without such a write there is no search.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.crm import CrmConnector, OneReportPerCustomer, UpsertResult
from connectors.jira import JiraConnector
from sync.cycle import crm_jobs, rows
from sync.cycle.push_jira import push_jira, settle_tasks
from sync.store import Store, repo

CRM_BATCH = 200
OUTBOX_BATCH = 1000

#: Told, as writes are sent, ``(side, handled so far, due at the start)`` per side
#: (the CRM's side name, "jira"): for the push's progress bars (sync.cli.bars).
PushProgress = Callable[[str, int, int], None]


@dataclass
class PushResult:
    """What the push phase did."""

    written: dict[str, int] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: What the run summary should say once (e.g. that Jira bulk edit could not be used).
    notes: list[str] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        """Count ``n`` writes of a kind."""
        self.written[what] = self.written.get(what, 0) + n

    def note(self, text: str) -> None:
        """Say ``text`` in the run summary (once, however often it is noted)."""
        if text not in self.notes:
            self.notes.append(text)


def push(
    store: Store,
    jira: JiraConnector,
    crm: CrmConnector,
    now: datetime,
    run_id: int | None,
    result: PushResult,
    shards: list[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    progress: PushProgress | None = None,
) -> None:
    """Send every due outbox row of ``shards`` (None: all): CRM upserts in collections of
    200, Jira bulk edits of up to 1000 issues or one call each. ``should_stop`` is asked
    between writes: a stopping process finishes the write in flight, records it, and
    leaves the rest queued. ``progress`` is told each side's writes handled out of those
    due."""
    # Bulk edits a stopped run left queued at Jira: settled first, their issues left alone
    # while a task still runs (sync.cycle.push_jira).
    blocked, held = settle_tasks(store, jira, now, run_id, result, shards)
    # Bulk jobs an earlier push left recorded at the CRM: settled first, likewise.
    crm_jobs.resume(store, crm, now, run_id, result, shards)
    with store.transaction() as tx:
        # A crash's: writes are idempotent, Jira comments are checked before resending.
        suspect = {e.id for e in repo.inflight(tx, "jira") if shards is None or e.shard in shards}
        repo.requeue_inflight(tx, now=now, shards=shards)
        repo.mark_inflight(tx, held, now=now)  # a task Jira still runs: still in flight
    crm_told = jira_told = None
    if progress is not None:
        with store.read() as conn:
            totals = {t: repo.due_count(conn, t, now, shard=shards) for t in ("crm", "jira")}
        crm_told = _teller(progress, crm.side, totals["crm"])
        jira_told = _teller(progress, "jira", totals["jira"])
    _push_crm(store, crm, now, run_id, result, shards, should_stop, crm_told)
    push_jira(store, jira, now, run_id, result, shards, should_stop, suspect, blocked, jira_told)


def _teller(progress: PushProgress, side: str, total: int) -> Callable[[int], None]:
    """Counts one side's handled writes and tells ``progress`` (at once: 0 of ``total``)."""
    handled = 0

    def tell(n: int) -> None:
        nonlocal handled
        handled += n
        progress(side, handled, max(total, handled))

    if total:
        tell(0)  # the bar appears with its total before the first write
    return tell


def _due_batches(
    store: Store, target: str, now: datetime, shards: list[str] | None
) -> Iterator[list[Any]]:
    """Due outbox rows of ``target`` in batches, until none is left (each batch read after
    the previous one was handled, so rows it marked done or parked are not read again)."""
    while True:
        with store.read() as conn:
            due = repo.due(conn, target, now, OUTBOX_BATCH, shard=shards)
        if not due:
            return
        yield due
        if len(due) < OUTBOX_BATCH:
            return


def _push_crm(
    store: Store,
    crm: CrmConnector,
    now: datetime,
    run_id: int | None,
    result: PushResult,
    shards: list[str] | None,
    should_stop: Callable[[], bool],
    told: Callable[[int], None] | None = None,
) -> None:
    # Many due: Bulk API jobs (sync.cycle.crm_jobs); else collections, a few in flight.
    if crm_jobs.push_in_jobs(store, crm, now, run_id, result, shards, should_stop, told):
        return
    bulk = crm_jobs.bulk_of(crm)
    lanes = bulk.parallel_writes if bulk is not None else 1
    for due in _due_batches(store, "crm", now, shards):
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for entry in due:
            groups[(entry.payload["object"], entry.payload["external_id_field"])].append(entry)
        for (name, ext_field), entries in groups.items():
            if isinstance(crm, OneReportPerCustomer) and crm.one_report_per_customer(name):
                entries = _main_projects_only(store, entries, run_id, now, told)
            for start in range(0, len(entries), CRM_BATCH * lanes):
                if should_stop():
                    return
                batch = entries[start : start + CRM_BATCH * lanes]
                with store.transaction() as tx:
                    repo.mark_inflight(tx, [e.id for e in batch], now=now)
                # ``lanes`` collections at once; each recorded as it was answered, in order,
                # and the first failure raised once every answered one is recorded.
                failure: BaseException | None = None
                for part, outcomes in crm_jobs.collections(crm, name, ext_field, batch, lanes):
                    if isinstance(outcomes, BaseException):
                        failure = failure or outcomes
                        continue
                    _record_crm(store, crm, part, outcomes, now, run_id, result)
                    if told is not None:
                        told(len(part))
                if failure is not None:
                    raise failure


def _record_crm(
    store: Store,
    crm: CrmConnector,
    batch: list[Any],
    outcomes: list[UpsertResult],
    now: datetime,
    run_id: int | None,
    result: PushResult,
) -> None:
    """One collection's answers: done with their ledger rows, refused ones parked."""
    with store.transaction() as tx:
        done: list[int] = []
        ledger: list[repo.LedgerRow] = []
        for entry, outcome in zip(batch, outcomes, strict=True):
            if outcome.success:
                done.append(entry.id)
                ledger.append(
                    rows.crm_ledger_row(entry.record_key, entry.payload["digest"], run_id)
                )
            else:
                error = "; ".join(str(e) for e in outcome.errors) or "rejected"
                repo.mark_failed(tx, entry.id, error, now)
                result.failed.append({"side": crm.side, "record": entry.record_key, "error": error})
        repo.mark_done(tx, done, ledger, now=now)
    result.count(f"{crm.side}_records", len(done))


def _main_projects_only(
    store: Store,
    entries: list[Any],
    run_id: int | None,
    now: datetime,
    told: Callable[[int], None] | None,
) -> list[Any]:
    """The entries holding their customer's main-project report (the lowest project key
    among the customer's stored links and the entries' own); the others are recorded as
    written (their customer holds the main project's report, not theirs) without a call.
    Report keys are ``<PROJECT KEY>:<customer id>`` (SPEC section 6)."""
    pairs = {e.id: tuple(str(e.record_key).split(":", 1)) for e in entries}
    customers = {pair[1] for pair in pairs.values() if len(pair) == 2}
    main: dict[str, str] = {}
    with store.read() as conn:
        for link in repo.get_links(conn, customer_ids=customers):
            main[link.customer_id] = min(
                main.get(link.customer_id, link.project_key), link.project_key
            )
    for pair in pairs.values():
        if len(pair) == 2:
            project, customer = pair
            main[customer] = min(main.get(customer, project), project)
    send: list[Any] = []
    skipped: list[Any] = []
    for entry in entries:
        pair = pairs[entry.id]
        (send if len(pair) != 2 or main[pair[1]] == pair[0] else skipped).append(entry)
    if skipped:
        with store.transaction() as tx:
            ledger = [
                rows.crm_ledger_row(e.record_key, e.payload["digest"], run_id) for e in skipped
            ]
            repo.mark_done(tx, [e.id for e in skipped], ledger, now=now)
        if told is not None:
            told(len(skipped))
    return send


__all__ = ["PushProgress", "PushResult", "push"]
