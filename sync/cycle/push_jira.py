"""The Jira half of the push: bulk edits where Jira Cloud allows them, else one
``PUT /issue/{key}`` per issue, a few in flight at once.

Writes that only add or remove our label and set the flag field (a single-line text
field) are grouped by identical change; a group of at least :data:`BULK_MIN` issues goes
as bulk edits of up to 1000 issues (:mod:`connectors.jira.bulk`, no notification e-mail),
each polled until Jira ran it. Every other write (one with comments: Jira cannot add
comments in bulk; one that both adds and removes labels; a select-typed flag field) is one
PUT carrying its labels, field and comments, up to :data:`WORKERS` in flight, each on its
own client; their outcomes are recorded in outbox order. When bulk edit cannot be used
(Data Center; no global Bulk Change permission; Jira refused a bulk edit as a whole) the
groups go as PUTs too, and the push says so once (:attr:`PushResult.notes`).

Crash safety. A write is marked in flight before it is sent and done (with its ledger
row) in one transaction after Jira accepted it, as for the CRM. A bulk edit's task id is
recorded the moment Jira answers the submit (``bulk_tasks``), with its rows and their
payload hashes; the rows are settled (done, or parked with Jira's reason) and the record
deleted in one transaction once the task completed. A push first settles the tasks a
stopped run left (:func:`settle_tasks`): it reads each one's progress, and until a task
is finished nothing else is sent to its issues, so a queued task cannot undo a newer write.
A row re-planned since its task was submitted is not settled by it but sent afresh; a task
Jira no longer knows, or one killed before its id was recorded, leaves its rows to be sent
again, which is harmless (labels added or removed and a field set are idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from connectors.exceptions import RejectedRecord, RemoteError
from connectors.jira import JiraConnector
from connectors.jira.bulk import MAX_ISSUES, TEXT_FIELD_TYPE, BulkEdit, BulkProgress
from connectors.jira.lanes import WIDTH, Lanes
from mappings.plan import remote_flags_from_comments
from mappings.text import MARKER_PHRASE, parse_marker
from mappings.writes import JiraLedger
from sync.cycle import rows
from sync.store import Store, repo

if TYPE_CHECKING:
    from sync.cycle.push import PushResult

#: The fewest issues sharing one change that go as a bulk edit: below it, a PUT each
#: costs no more calls than a submit and its progress reads.
BULK_MIN: Final = 3
#: Per-issue writes in flight at once (each worker has its own client).
WORKERS: Final = WIDTH
OUTBOX_BATCH: Final = 1000
INVALID: Final = (
    "Jira's bulk edit found the issue invalid or not visible to the user (deleted, moved "
    "out of scope, or hidden by its security level)"
)


@dataclass
class _Push:
    """What the Jira push shares between its steps."""

    store: Store
    jira: JiraConnector
    now: datetime
    run_id: int | None
    result: PushResult
    told: Callable[[int], None] | None
    #: Asked between writes and between a task's progress reads.
    should_stop: Callable[[], bool] = lambda: False

    def tell(self, n: int) -> None:
        if self.told is not None and n:
            self.told(n)


# -- settling tasks a stopped run left ------------------------------------------------------


def settle_tasks(
    store: Store,
    jira: JiraConnector,
    now: datetime,
    run_id: int | None,
    result: PushResult,
    shards: list[str] | None,
) -> tuple[set[str], list[int]]:
    """Settle the bulk edits an earlier run submitted and did not record the end of.
    Returns, for the tasks still unfinished, their issue keys (nothing is sent to them in
    this push) and their rows not re-planned since (to stay in flight: a plan that no
    longer wants them then treats them as writes that may have reached Jira)."""
    with store.read() as conn:
        tasks = repo.bulk_tasks_open(conn, "jira", shards)
    blocked: set[str] = set()
    held: list[int] = []
    step = _Push(store, jira, now, run_id, result, None)
    for task in tasks:
        progress = jira.bulk.wait(task.task_id)
        with store.read() as conn:
            entries = repo.outbox_rows(conn, [i for i, _ in task.outbox_ids])
            ids = repo.issue_ids(conn, task.record_keys)
        hashes = dict(task.outbox_ids)
        same = [e for e in entries if hashes.get(e.id) == e.payload_hash]
        if progress is not None and not progress.finished:
            blocked.update(task.record_keys)
            held += [e.id for e in same]
            continue
        with store.transaction() as tx:
            if progress is not None and progress.complete:
                _settle(tx, step, same, progress, ids)
            repo.bulk_task_delete(tx, task.task_id)
    return blocked, held


def _settle(
    tx: Any,
    step: _Push,
    entries: Sequence[repo.OutboxEntry],
    progress: BulkProgress,
    ids: dict[str, str],
) -> None:
    """Record a completed task's outcome for ``entries`` in the caller's transaction."""
    done: list[int] = []
    ledger: list[repo.LedgerRow] = []
    for entry in entries:
        issue = ids.get(str(entry.payload["issue_key"]), "")
        if issue in progress.processed:
            done.append(entry.id)
            row = _ledger_row(tx, entry, step.run_id)
            if row is not None:
                ledger.append(row)
            continue
        reasons = progress.failed.get(issue)
        error = "; ".join(reasons) if reasons else INVALID
        repo.mark_failed(tx, entry.id, error, step.now)
        step.result.failed.append({"side": "jira", "record": entry.record_key, "error": error})
    repo.mark_done(tx, done, ledger, now=step.now)
    step.result.count("jira_issues", len(done))
    step.result.count("jira_updates", len(done))


def _ledger_row(tx: Any, entry: repo.OutboxEntry, run_id: int | None) -> repo.LedgerRow | None:
    """The ledger row a done write records (None: the write empties the issue's entry,
    which is deleted here)."""
    ledger = JiraLedger.from_dict(entry.payload["ledger"])
    if ledger.is_empty:
        repo.ledger_delete(tx, "jira", ledger.issue_key)
        return None
    return rows.jira_ledger_row(ledger, run_id)


# -- the push -------------------------------------------------------------------------------


def push_jira(
    store: Store,
    jira: JiraConnector,
    now: datetime,
    run_id: int | None,
    result: PushResult,
    shards: list[str] | None,
    should_stop: Callable[[], bool],
    suspect: set[int],
    blocked: set[str],
    told: Callable[[int], None] | None = None,
) -> None:
    """Send the due Jira writes of ``shards`` (None: all), but none to ``blocked`` issues
    (a task still running). ``should_stop`` is asked between writes; a stopping push sends
    the bulk edits it has gathered (their rows are in flight already), records them, and
    leaves the rest queued."""
    step = _Push(store, jira, now, run_id, result, told, should_stop)
    markers = _MarkedIssues(jira)
    groups: dict[BulkEdit, list[repo.OutboxEntry]] = {}
    text_field = _bulk_text_ok(jira)
    with ExitStack() as stack:
        pool = _Pool(stack, jira)
        seen: set[int] = set()
        for due in _due_batches(store, now, shards):
            fresh = [e for e in due if e.id not in seen and e.record_key not in blocked]
            seen.update(e.id for e in due)
            if not fresh:
                break
            each: list[repo.OutboxEntry] = []
            gathered: list[int] = []
            with store.read() as conn:
                ids = repo.issue_ids(conn, [str(e.payload["issue_key"]) for e in fresh])
            for entry in fresh:
                edit = _bulk_edit_of(entry, text_field)
                if edit is not None and entry.payload["issue_key"] in ids:
                    groups.setdefault(edit, []).append(entry)
                    gathered.append(entry.id)
                else:
                    each.append(entry)
            if gathered:  # in flight from now: the next batch read must not offer them
                with store.transaction() as tx:
                    repo.mark_inflight(tx, gathered, now=now)
            if not pool.send_each(step, each, suspect, markers, should_stop):
                break
            for edit, entries in groups.items():
                while len(entries) >= MAX_ISSUES:
                    chunk, entries[:] = entries[:MAX_ISSUES], entries[MAX_ISSUES:]
                    _send_group(step, pool, edit, chunk, suspect, markers)
            if should_stop():
                break
        for edit, entries in groups.items():  # in flight already: sent even when stopping
            if entries:
                _send_group(step, pool, edit, entries, suspect, markers)


def _due_batches(
    store: Store, now: datetime, shards: list[str] | None
) -> Iterator[list[repo.OutboxEntry]]:
    """Due Jira rows in batches, each read after the previous one was handled."""
    while True:
        with store.read() as conn:
            due = repo.due(conn, "jira", now, OUTBOX_BATCH, shard=shards)
        if not due:
            return
        yield due
        if len(due) < OUTBOX_BATCH:
            return


def _bulk_text_ok(jira: JiraConnector) -> Callable[[str], bool]:
    """Whether a field can be set by bulk edit: a single-line text field."""

    def ok(field_id: str) -> bool:
        return jira.field_catalog().type_of(field_id) == TEXT_FIELD_TYPE

    return ok


def _bulk_edit_of(entry: repo.OutboxEntry, text_ok: Callable[[str], bool]) -> BulkEdit | None:
    """The bulk edit a write amounts to, or None when it must be a PUT of its own."""
    payload = entry.payload
    if payload.get("comments"):
        return None
    add = tuple(sorted(payload.get("add_labels") or ()))
    remove = tuple(sorted(payload.get("remove_labels") or ()))
    if add and remove:
        return None
    field = payload.get("set_field")
    text = None
    if field:
        if not text_ok(str(field["id"])):
            return None
        value = field["value"]
        text = (str(field["id"]), None if value is None else str(value))
    if not (add or remove or text):
        return None
    return BulkEdit(add, remove, text)


def _send_group(
    step: _Push,
    pool: _Pool,
    edit: BulkEdit,
    entries: list[repo.OutboxEntry],
    suspect: set[int],
    markers: _MarkedIssues,
) -> None:
    """One group of identical changes (up to 1000 rows, in flight already): a bulk edit
    when it is big enough and bulk edit can be used, else a PUT each."""
    jira = step.jira
    chunk = list(entries)
    entries.clear()
    reason = jira.bulk.unavailable() if len(chunk) >= BULK_MIN else "small"
    if reason is None:
        try:
            if _bulk(step, edit, chunk):
                return
        except RemoteError as exc:
            if exc.status not in (400, 403):
                raise
            reason = f"Jira refused a bulk edit ({exc.message})"
            jira.bulk.refuse(reason)
    if reason != "small":
        step.result.note(
            f"Jira bulk edit not used: {reason}; the issues are written with one PUT each"
        )
    pool.send_each(step, chunk, suspect, markers, lambda: False)


def _bulk(step: _Push, edit: BulkEdit, entries: list[repo.OutboxEntry]) -> bool:
    """Submit, record, wait for and settle one bulk edit; False when Jira's task failed as
    a whole (the rows are then written one by one)."""
    store, jira = step.store, step.jira
    keys = [str(e.payload["issue_key"]) for e in entries]
    with store.read() as conn:
        ids = repo.issue_ids(conn, keys)
    task_id = jira.bulk.submit(edit, [ids[key] for key in keys])
    with store.transaction() as tx:
        repo.bulk_task_put(
            tx,
            task_id,
            "jira",
            [(e.id, e.payload_hash) for e in entries],
            keys,
            [e.shard for e in entries],
            now=step.now,
            run_id=step.run_id,
        )
    step.result.count("jira_bulk_edits")
    progress = jira.bulk.wait(task_id, should_stop=step.should_stop)
    if progress is not None and not progress.finished:
        return True  # still queued: the next cycle settles it (the rows stay in flight)
    with store.transaction() as tx:
        if progress is not None and progress.complete:
            _settle(tx, step, entries, progress, ids)
        repo.bulk_task_delete(tx, task_id)
    if progress is None or not progress.complete:
        return False
    step.tell(len(entries))
    return True


# -- one PUT per issue ----------------------------------------------------------------------


class _Pool:
    """Per-issue writes, up to :data:`WORKERS` in flight (:class:`Lanes`: each on its own
    client, closed with the push)."""

    def __init__(self, stack: ExitStack, jira: JiraConnector) -> None:
        self._lanes = stack.enter_context(Lanes(jira, WORKERS))

    def send_each(
        self,
        step: _Push,
        entries: list[repo.OutboxEntry],
        suspect: set[int],
        markers: _MarkedIssues,
        should_stop: Callable[[], bool],
    ) -> bool:
        """Send each write as its own PUT; False when ``should_stop`` stopped it."""
        size = WORKERS if len(entries) > 1 else 1
        for start in range(0, len(entries), size):
            if should_stop():
                return False
            chunk = entries[start : start + size]
            # Before the writes are in flight: a failed marker search leaves them pending.
            verify = [
                e.id in suspect or bool(e.payload.get("verify")) or markers.may_carry(e.payload)
                for e in chunk
            ]
            with step.store.transaction() as tx:
                repo.mark_inflight(tx, [e.id for e in chunk], now=step.now)
            outcomes = self._lanes.map(_attempt, list(zip(chunk, verify, strict=True)))
            _record_each(step, chunk, outcomes)
        return True


@dataclass
class _Outcome:
    """What one PUT did: counts, the rejection, or the failure that ends the push."""

    updated: bool = False
    comments: int = 0
    rejected: RejectedRecord | None = None
    failure: BaseException | None = None


def _attempt(jira: JiraConnector, entry: tuple[repo.OutboxEntry, bool]) -> _Outcome:
    """One PUT (``entry``: the write and whether to check Jira first), as an outcome."""
    try:
        return _apply_jira(jira, entry[0].payload, entry[1])
    except RejectedRecord as exc:
        return _Outcome(rejected=exc)
    except Exception as exc:  # recorded after the others of its chunk
        return _Outcome(failure=exc)


def _record_each(
    step: _Push, entries: Sequence[repo.OutboxEntry], outcomes: Sequence[_Outcome]
) -> None:
    """Record a chunk's outcomes in outbox order, then raise the first failure (the rows
    it hit stay in flight, to be checked by the next cycle)."""
    failure: BaseException | None = None
    result = step.result
    with step.store.transaction() as tx:
        for entry, outcome in zip(entries, outcomes, strict=True):
            if outcome.failure is not None:
                failure = failure or outcome.failure
                continue
            if outcome.rejected is not None:
                exc = outcome.rejected
                error = "; ".join(str(e) for e in exc.errors) or exc.message
                repo.mark_failed(tx, entry.id, error, step.now)
                result.failed.append({"side": "jira", "record": entry.record_key, "error": error})
                continue
            row = _ledger_row(tx, entry, step.run_id)
            repo.mark_done(tx, [entry.id], [row] if row is not None else [], now=step.now)
            result.count("jira_issues")
            if outcome.updated:
                result.count("jira_updates")
            if outcome.comments:
                result.count("jira_comments", outcome.comments)
    step.tell(sum(1 for o in outcomes if o.failure is None))
    if failure is not None:
        raise failure


class _MarkedIssues:
    """The issues in scope whose comments carry our flag marker text, found by one search on
    first need (a write whose comments the ledger cannot vouch for) and kept for the push."""

    def __init__(self, jira: JiraConnector) -> None:
        self._jira = jira
        self._keys: set[str] | None = None

    def may_carry(self, payload: dict[str, Any]) -> bool:
        """Whether the write's issue may already hold its comments: it asks for the marker
        search and the search found a marker on it."""
        if not payload.get("search_markers") or not payload.get("comments"):
            return False
        if self._keys is None:
            self._keys = self._jira.keys_with_comment_text(MARKER_PHRASE)
        return str(payload["issue_key"]) in self._keys


def _apply_jira(jira: JiraConnector, payload: dict[str, Any], verify: bool) -> _Outcome:
    """One PUT with labels, field and comments; with ``verify``, comments the issue already
    carries (posted before a crash) are left out. The same read-back runs when Jira
    answers that PUT with a 5xx (it may have applied it): only what is missing is re-sent."""
    key = payload["issue_key"]
    fields = None
    if payload.get("set_field"):
        fields = {payload["set_field"]["id"]: payload["set_field"]["value"]}

    def unposted(bodies: list[str]) -> list[str]:
        latest = dict(remote_flags_from_comments(jira.comment_bodies(key)))
        missing: list[str] = []
        for body in bodies:
            markers = parse_marker(body)
            if markers and all(latest.get(customer) == level for customer, level in markers):
                continue  # posted before a crash or a 5xx: the issue already says so
            missing.append(body)
            for customer, level in markers:
                latest[customer] = level  # type: ignore[assignment]
        return missing

    comments: list[str] = list(payload.get("comments") or [])
    if comments and verify:
        comments = unposted(comments)
    add, remove = payload.get("add_labels", ()), payload.get("remove_labels", ())
    outcome = _Outcome()
    if jira.update_issue(
        key,
        add_labels=add,
        remove_labels=remove,
        fields=fields,
        comments=comments,
        unposted=unposted,
    ):
        outcome.updated = bool(add or remove or fields)
        outcome.comments = len(comments)
    return outcome


__all__ = ["BULK_MIN", "WORKERS", "push_jira", "settle_tasks"]
