"""Recording a cycle's results and pushing its writes through the outbox.

Crash safety: every planned write is queued in the outbox in the same transaction that
records the derived state. A write is marked in flight before it is sent, and done (with
its ledger row) in one transaction after the remote accepted it. Every write is
idempotent, so a row found in flight after a crash is simply sent again: CRM records are
upserted by external id, labels are added/removed (not toggled), a field is set, and a
flag comment is posted only when the issue's latest marker for that customer does not
already show the level (a comment posted just before a crash is found, not repeated).

A Jira write is one ``PUT /issue/{key}`` carrying its labels, field and comments. The
comments are read back first only for a write that may already have reached Jira: one
found in flight, and its re-plans (``verify`` in the payload), until it is done. A write
never sent cannot have posted anything, so the common case costs one call per issue.

A comment the ledger cannot vouch for (the first sight of a level, posted with
``comment_on_first_sight``: after a new or lost state store every level is a first sight)
may already be on the site. Before the first such write of a push, one search for our
marker text (keys only, paged) finds every issue in scope that carries a marker; only
those issues get their comments read before the write, and the markers found there are
not posted again (the ledger records them). Without such a write there is no search.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.crm import CrmConnector
from connectors.exceptions import RejectedRecord
from connectors.jira import JiraConnector
from mappings.model import Customer, SatisfactionFlag
from mappings.plan import remote_flags_from_comments
from mappings.text import MARKER_PHRASE, parse_marker
from mappings.writes import JiraLedger
from sync.derive import LEDGER_FIELD, Derived, DeriveEnd, ledger_digest, r_key
from sync.store import Store, repo
from sync.workers import JIRA_PREFIX, shard_of_record

CRM_BATCH = 200
OUTBOX_BATCH = 1000

#: Told, as writes are sent, ``(side, handled so far, due at the start)`` per side
#: (the CRM connector's ``side``, "jira"): for the push's progress bars (sync.cli.bars).
PushProgress = Callable[[str, int, int], None]


@dataclass
class PushResult:
    """What the push phase did."""

    written: dict[str, int] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        """Count ``n`` writes of a kind."""
        self.written[what] = self.written.get(what, 0) + n


def record(store: Store, derived: Derived, run_id: int | None, now: datetime) -> dict[str, int]:
    """Save links, progress, flags and history, apply ledger-only updates and queue the
    plan's writes, all in one transaction. Returns how many writes were queued."""
    with store.transaction() as tx:
        _record_flags(tx, derived.result.customers, derived.result.flags, now)
        return _record_projects(tx, derived, run_id, now)


def record_batch(
    store: Store, derived: Derived, run_id: int | None, now: datetime
) -> dict[str, int]:
    """Record one batch of a :class:`~sync.derive.BatchedDerive` in its own transaction:
    links, progress, ledger-only updates and queued writes of its projects, and the
    clearing of their changed-project marks. Flags wait for :func:`record_end`.

    A crash between batches leaves the marks (and the old derive state) of what was not
    recorded, so the next cycle derives it again."""
    with store.transaction() as tx:
        return _record_projects(tx, derived, run_id, now)


def record_end(store: Store, end: DeriveEnd, now: datetime) -> None:
    """After every batch: the flags and satisfaction history, and for a derive of
    everything, the marks and stale queued writes of projects no batch covered."""
    with store.transaction() as tx:
        _record_flags(tx, end.crm.customers, end.crm.flags, now)
        repo.clear_dirty(tx, end.marks)
        if end.everything:
            # Projects no batch covered hold no issue any more: nor any link problem.
            for project in {p.project_key for p in repo.iter_link_problems(tx)} - set(end.projects):
                repo.set_link_problems(tx, project, [], at=now)
            covered = {JIRA_PREFIX + project for project in end.projects}
            gone = [e for e in repo.iter_unfinished_refs(tx) if e.shard not in covered]
            _drop_stale(tx, gone, set(), now)


def _record_flags(
    tx: Any, customers: Iterable[Customer], flags: Iterable[SatisfactionFlag], now: datetime
) -> None:
    day = now.date()
    by_id = {c.id: c for c in customers}
    flags = tuple(flags)
    repo.put_flags(
        tx,
        [
            {
                "customer_id": f.customer_id,
                "level": f.level,
                "since": f.since,
                "reasons": list(f.reasons),
            }
            for f in flags
        ],
    )
    repo.put_satisfaction(
        tx,
        [
            {
                "customer_id": f.customer_id,
                "day": day,
                "score": sat.score if (sat := by_id[f.customer_id].satisfaction) else None,
                "scale": sat.scale if sat else None,
                "level": f.level,
                "reasons": list(f.reasons),
            }
            for f in flags
            if f.customer_id in by_id
        ],
    )


def _record_projects(
    tx: Any, derived: Derived, run_id: int | None, now: datetime
) -> dict[str, int]:
    """Everything of ``derived`` but the flags, in the caller's transaction."""
    result, plan = derived.result, derived.plan
    links_by_project: dict[str, list[repo.LinkRow]] = defaultdict(list)
    for link in result.links.links:
        links_by_project[link.project_key].append(
            {
                "customer_id": link.customer_id,
                "rule": link.rule,
                "scope": link.scope,
                "item_count": len(link.item_keys),
            }
        )
    day = now.date()
    for project in derived.projects:
        repo.set_links(tx, project, links_by_project.get(project, []), at=now)
    _record_link_problems(tx, derived, now)
    repo.put_progress(
        tx,
        [
            repo.ProgressRecord(
                customer_id=r.customer_id,
                project_key=r.project_key,
                day=day,
                total=r.total,
                done=r.done,
                in_progress=r.in_progress,
                todo=r.todo,
                overdue=r.overdue,
                blocked=r.blocked,
                percent_complete=r.percent_complete,
                health=r.health,
                forecast_date=r.forecast.date,
            )
            for r in result.reports
        ],
    )
    _ledger_only(tx, derived, run_id)
    repo.clear_dirty(tx, derived.marks)
    _drop_superseded(tx, derived, now)
    shards = None if derived.everything else [JIRA_PREFIX + p for p in derived.projects]
    suspects = repo.maybe_sent_keys(tx, "jira", shards)
    rows: list[repo.OutboxRow] = []
    for write in plan.crm:
        payload = {
            "object": write.object,
            "external_id_field": write.external_id_field,
            "record": write.record(),
            "digest": write.digest,
        }
        # Hashed without the volatile fields (a sync time): re-planning the same content
        # keeps a parked write's attempts and backoff instead of starting it afresh.
        rows.append(_row("crm", write.external_id, "crm_upsert", payload, run_id, write.digest))
    for jira_write in plan.jira:
        jira_payload: dict[str, Any] = {
            **jira_write.as_dict(),
            "comment_markers": [c.marker for c in jira_write.comments],
            "ledger": jira_write.ledger.as_dict(),
        }
        if jira_write.issue_key in suspects:
            jira_payload["verify"] = True
        if jira_write.check_markers:
            jira_payload["search_markers"] = True
        rows.append(_row("jira", jira_write.issue_key, "jira_update", jira_payload, run_id))
    repo.enqueue_many(tx, rows, now=now)
    return {"crm": len(plan.crm), "jira": len(plan.jira)}


def _record_link_problems(tx: Any, derived: Derived, now: datetime) -> None:
    """Replace the link problems of the derived projects (``status`` lists them): the work
    items whose link value could not be used, why, and the rule that linked them anyway.
    Problems of the [link.static] table itself name no item; they are in every run's output."""
    by_project: dict[str, list[repo.LinkProblemRow]] = defaultdict(list)
    for problem in derived.result.links.problems:
        if problem.item_key is not None:
            by_project[problem.project_key].append(
                {
                    "item_key": problem.item_key,
                    "reason": problem.reason,
                    "linked_by": problem.linked_by,
                }
            )
    for project in derived.projects:
        repo.set_link_problems(tx, project, by_project.get(project, []), at=now)


def _drop_superseded(tx: Any, derived: Derived, now: datetime) -> None:
    """Queued writes of the derived projects that the new plan does not want are stale:
    they waited out faults or a budget stop while people changed the data, and sending
    them now would undo those changes (a label put back on a finished issue). Pending and
    parked ones are dropped. One in flight may already have reached the remote: it is sent
    again as it is (its ledger must match what the remote may hold) and its project is
    marked to be derived again, so the next cycle writes what is wanted now."""
    plan = derived.plan
    wanted = {("crm", w.external_id) for w in plan.crm}
    wanted |= {("jira", w.issue_key) for w in plan.jira}
    shards = None if derived.everything else [JIRA_PREFIX + p for p in derived.projects]
    _drop_stale(tx, repo.iter_unfinished_refs(tx, shards), wanted, now)


def _drop_stale(
    tx: Any, unfinished: Iterable[repo.OutboxRef], wanted: set[tuple[str, str]], now: datetime
) -> None:
    """Cancel the ``unfinished`` writes not ``wanted`` (see :func:`_drop_superseded`)."""
    stale = [entry for entry in unfinished if (entry.target, entry.record_key) not in wanted]
    repo.cancel_ids(tx, [entry.id for entry in stale if entry.state != "inflight"])
    resent = {entry.shard for entry in stale if entry.state == "inflight" and entry.shard}
    if resent:
        repo.mark_dirty(tx, sorted(s.removeprefix(JIRA_PREFIX) for s in resent), at=now)


def _row(
    target: str,
    key: str,
    op: str,
    payload: dict[str, Any],
    run_id: int | None,
    content_hash: str | None = None,
) -> Any:
    return {
        "target": target,
        "record_key": key,
        "op": op,
        "payload": payload,
        "payload_hash": content_hash or ledger_digest(payload),
        "run_id": run_id,
        "shard": shard_of_record(key, target),
    }


def _ledger_only(tx: Any, derived: Derived, run_id: int | None) -> None:
    """Ledger updates that need no write (the remote already holds the value)."""
    plan = derived.plan
    rows: list[repo.LedgerRow] = [
        {
            "target": "crm",
            "record_key": key,
            "field": LEDGER_FIELD,
            "value_hash": digest,
            "value": None,
            "run_id": run_id,
        }
        for key, digest in plan.crm_ledger
    ]
    for ledger in plan.jira_ledger:
        if ledger.is_empty:
            repo.ledger_delete(tx, "jira", ledger.issue_key)
        else:
            rows.append(_jira_ledger_row(ledger, run_id))
    repo.ledger_put_many(tx, rows)


def _jira_ledger_row(ledger: JiraLedger, run_id: int | None) -> repo.LedgerRow:
    value = ledger.as_dict()
    return {
        "target": "jira",
        "record_key": ledger.issue_key,
        "field": LEDGER_FIELD,
        "value_hash": ledger_digest(value),
        "value": value,
        "run_id": run_id,
    }


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
    200, Jira one call each. ``should_stop`` is asked between writes: a stopping process
    finishes the write in flight, records it, and leaves the rest queued. ``progress`` is
    told each side's writes handled out of those due."""
    with store.transaction() as tx:
        # A crash's: writes are idempotent, Jira comments are checked before resending.
        suspect = {e.id for e in repo.inflight(tx, "jira") if shards is None or e.shard in shards}
        repo.requeue_inflight(tx, now=now, shards=shards)
    crm_told = jira_told = None
    if progress is not None:
        with store.read() as conn:
            totals = {t: repo.due_count(conn, t, now, shard=shards) for t in ("crm", "jira")}
        crm_told = _teller(progress, crm.side, totals["crm"])
        jira_told = _teller(progress, "jira", totals["jira"])
    _push_crm(store, crm, now, run_id, result, shards, should_stop, crm_told)
    _push_jira(store, jira, now, run_id, result, shards, should_stop, suspect, jira_told)


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
    for due in _due_batches(store, "crm", now, shards):
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for entry in due:
            groups[(entry.payload["object"], entry.payload["external_id_field"])].append(entry)
        for (name, ext_field), entries in groups.items():
            for start in range(0, len(entries), CRM_BATCH):
                if should_stop():
                    return
                batch = entries[start : start + CRM_BATCH]
                with store.transaction() as tx:
                    repo.mark_inflight(tx, [e.id for e in batch], now=now)
                outcomes = crm.upsert(name, ext_field, [e.payload["record"] for e in batch])
                with store.transaction() as tx:
                    done: list[int] = []
                    ledger: list[repo.LedgerRow] = []
                    for entry, outcome in zip(batch, outcomes, strict=True):
                        if outcome.success:
                            done.append(entry.id)
                            ledger.append(
                                {
                                    "target": "crm",
                                    "record_key": entry.record_key,
                                    "field": LEDGER_FIELD,
                                    "value_hash": entry.payload["digest"],
                                    "value": None,
                                    "run_id": run_id,
                                }
                            )
                        else:
                            error = "; ".join(str(e) for e in outcome.errors) or "rejected"
                            repo.mark_failed(tx, entry.id, error, now)
                            result.failed.append(
                                {"side": crm.side, "record": entry.record_key, "error": error}
                            )
                    repo.mark_done(tx, done, ledger, now=now)
                result.count(f"{crm.side}_records", len(done))
                if told is not None:
                    told(len(batch))


def _push_jira(
    store: Store,
    jira: JiraConnector,
    now: datetime,
    run_id: int | None,
    result: PushResult,
    shards: list[str] | None,
    should_stop: Callable[[], bool],
    suspect: set[int],
    told: Callable[[int], None] | None = None,
) -> None:
    markers = _MarkedIssues(jira)
    for due in _due_batches(store, "jira", now, shards):
        for entry in due:
            if should_stop():
                return
            # Before the write is in flight: a failed search leaves it pending.
            verify = entry.id in suspect or bool(entry.payload.get("verify"))
            verify = verify or markers.may_carry(entry.payload)
            with store.transaction() as tx:
                repo.mark_inflight(tx, [entry.id], now=now)
            try:
                _apply_jira(jira, entry.payload, result, verify)
            except RejectedRecord as exc:
                error = "; ".join(str(e) for e in exc.errors) or exc.message
                with store.transaction() as tx:
                    repo.mark_failed(tx, entry.id, error, now)
                result.failed.append({"side": "jira", "record": entry.record_key, "error": error})
                if told is not None:
                    told(1)
                continue
            ledger = JiraLedger.from_dict(entry.payload["ledger"])
            with store.transaction() as tx:
                if ledger.is_empty:
                    repo.ledger_delete(tx, "jira", ledger.issue_key)
                    repo.mark_done(tx, [entry.id], [], now=now)
                else:
                    repo.mark_done(tx, [entry.id], [_jira_ledger_row(ledger, run_id)], now=now)
            result.count("jira_issues")
            if told is not None:
                told(1)


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


def _apply_jira(
    jira: JiraConnector, payload: dict[str, Any], result: PushResult, verify: bool
) -> None:
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
    if jira.update_issue(
        key,
        add_labels=add,
        remove_labels=remove,
        fields=fields,
        comments=comments,
        unposted=unposted,
    ):
        if add or remove or fields:
            result.count("jira_updates")
        if comments:
            result.count("jira_comments", len(comments))


__all__ = ["PushResult", "push", "r_key", "record", "record_batch", "record_end"]
