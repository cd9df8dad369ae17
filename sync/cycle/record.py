"""The record stage: what a cycle derived, into the store, and its writes into the outbox.

Nothing here talks to a remote (:mod:`sync.cycle.push` sends). Crash safety: every
planned write is queued in the outbox in the same transaction that records the derived
state (links, progress, link problems, ledger-only updates, the clearing of the changed
projects' marks), so a crash leaves either both or neither. Queued writes the new plan no
longer wants are dropped in that transaction too (:func:`drop_superseded`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mappings.model import Customer, SatisfactionFlag
from sync.cycle import rows
from sync.cycle.derive import Derived, DeriveEnd
from sync.cycle.ownership import JIRA_PREFIX
from sync.store import Store, repo


def record(store: Store, derived: Derived, run_id: int | None, now: datetime) -> dict[str, int]:
    """Save links, progress, flags and history, apply ledger-only updates and queue the
    plan's writes, all in one transaction. Returns how many writes were queued."""
    with store.transaction() as tx:
        record_flags(tx, derived.result.customers, derived.result.flags, now)
        return record_projects(tx, derived, run_id, now)


def record_batch(
    store: Store, derived: Derived, run_id: int | None, now: datetime
) -> dict[str, int]:
    """Record one batch of a :class:`~sync.cycle.derive.BatchedDerive` in its own
    transaction: links, progress, ledger-only updates and queued writes of its projects,
    and the clearing of their changed-project marks. Flags wait for :func:`record_end`.

    A crash between batches leaves the marks (and the old derive state) of what was not
    recorded, so the next cycle derives it again."""
    with store.transaction() as tx:
        return record_projects(tx, derived, run_id, now)


def record_end(store: Store, end: DeriveEnd, now: datetime) -> None:
    """After every batch: the flags and satisfaction history, and for a derive of
    everything, the marks and stale queued writes of projects no batch covered."""
    with store.transaction() as tx:
        record_flags(tx, end.crm.customers, end.crm.flags, now)
        repo.clear_dirty(tx, end.marks)
        if end.everything:
            # Projects no batch covered hold no issue any more: nor any link problem.
            for project in {p.project_key for p in repo.iter_link_problems(tx)} - set(end.projects):
                repo.set_link_problems(tx, project, [], at=now)
            covered = {JIRA_PREFIX + project for project in end.projects}
            gone = [e for e in repo.iter_unfinished_refs(tx) if e.shard not in covered]
            drop_stale(tx, gone, set(), now)


def record_flags(
    tx: Any, customers: Iterable[Customer], flags: Iterable[SatisfactionFlag], now: datetime
) -> None:
    """The customers' current flags and the day's satisfaction history."""
    flags = tuple(flags)
    repo.put_flags(tx, rows.flag_rows(flags))
    repo.put_satisfaction(tx, rows.satisfaction_rows(customers, flags, now.date()))


def record_projects(tx: Any, derived: Derived, run_id: int | None, now: datetime) -> dict[str, int]:
    """Everything of ``derived`` but the flags, in the caller's transaction."""
    result, plan = derived.result, derived.plan
    links = rows.link_rows(result.links)
    problems = rows.link_problem_rows(result.links)
    for project in derived.projects:
        repo.set_links(tx, project, links.get(project, []), at=now)
        # The work items whose link value could not be used, why, and the rule that linked
        # them anyway (``status`` lists them); [link.static] problems are in every output.
        repo.set_link_problems(tx, project, problems.get(project, []), at=now)
    repo.put_progress(tx, rows.progress_rows(result.reports, now.date()))
    record_ledger_only(tx, derived, run_id)
    repo.clear_dirty(tx, derived.marks)
    drop_superseded(tx, derived, now)
    shards = None if derived.everything else [JIRA_PREFIX + p for p in derived.projects]
    suspects = repo.maybe_sent_keys(tx, "jira", shards)
    queued: list[repo.OutboxRow] = []
    for write in plan.crm:
        payload = {
            "object": write.object,
            "external_id_field": write.external_id_field,
            "record": write.record(),
            "digest": write.digest,
        }
        # Hashed without the volatile fields (a sync time): re-planning the same content
        # keeps a parked write's attempts and backoff instead of starting it afresh.
        queued.append(
            rows.outbox_row("crm", write.external_id, "crm_upsert", payload, run_id, write.digest)
        )
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
        queued.append(
            rows.outbox_row("jira", jira_write.issue_key, "jira_update", jira_payload, run_id)
        )
    repo.enqueue_many(tx, queued, now=now)
    return {"crm": len(plan.crm), "jira": len(plan.jira)}


def drop_superseded(tx: Any, derived: Derived, now: datetime) -> None:
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
    drop_stale(tx, repo.iter_unfinished_refs(tx, shards), wanted, now)


def drop_stale(
    tx: Any, unfinished: Iterable[repo.OutboxRef], wanted: set[tuple[str, str]], now: datetime
) -> None:
    """Cancel the ``unfinished`` writes not ``wanted`` (see :func:`drop_superseded`)."""
    stale = [entry for entry in unfinished if (entry.target, entry.record_key) not in wanted]
    repo.cancel_ids(tx, [entry.id for entry in stale if entry.state != "inflight"])
    resent = {entry.shard for entry in stale if entry.state == "inflight" and entry.shard}
    if resent:
        repo.mark_dirty(tx, sorted(s.removeprefix(JIRA_PREFIX) for s in resent), at=now)


def record_ledger_only(tx: Any, derived: Derived, run_id: int | None) -> None:
    """Ledger updates that need no write (the remote already holds the value)."""
    plan = derived.plan
    ledger = [rows.crm_ledger_row(key, digest, run_id) for key, digest in plan.crm_ledger]
    for entry in plan.jira_ledger:
        if entry.is_empty:
            repo.ledger_delete(tx, "jira", entry.issue_key)
        else:
            ledger.append(rows.jira_ledger_row(entry, run_id))
    repo.ledger_put_many(tx, ledger)


__all__ = [
    "drop_stale",
    "drop_superseded",
    "record",
    "record_batch",
    "record_end",
    "record_flags",
    "record_ledger_only",
    "record_projects",
]
