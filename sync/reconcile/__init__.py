"""``reconcile``: both sides re-read in full and compared with what they should hold
(SPEC sections 1.4, 4 and 7).

It streams, so its memory stays flat as the scope grows:

- :mod:`~sync.reconcile.read` reads both sides page by page into a scratch store (a
  temporary SQLite file) and, with ``--apply``, into the state store as a pull would;
- :mod:`~sync.reconcile.compare` derives the scratch store through the cycle's batches
  and plans each against what the remotes hold and the ledger: drift, conflicts,
  duplicates, unlinked projects and customers with suggested links, deleted records;
- :mod:`~sync.reconcile.apply` (``--apply``) records each batch and pushes the fixes
  through the cycle's own record and push;
- :mod:`~sync.reconcile.render` shows the report (:mod:`~sync.reconcile.report`) as text
  or rich tables.

Without ``--apply`` nothing is written anywhere: no remote write, and the store (records,
cursors, ledgers, runs, call counts) is left as it was.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from connectors.crm import OneReportPerCustomer
from connectors.exceptions import BudgetExhausted, ConnectorError
from sync.config import Config
from sync.cycle.context import CycleContext, open_context
from sync.cycle.engine import finish_run
from sync.cycle.pull import PullProgress
from sync.exitcodes import exit_for
from sync.reconcile.apply import Apply, _exclusive
from sync.reconcile.compare import Derivation, JiraComments, compare
from sync.reconcile.read import Pages, fill_scratch, read_both, store_gone
from sync.reconcile.render import Section, render_rich, render_text, sections
from sync.reconcile.report import ReconcileReport
from sync.remote import Remotes, jira_fields
from sync.store import Store, open_store, repo

__all__ = ["ReconcileReport", "Section", "reconcile", "render_rich", "render_text", "sections"]

#: Parked writes listed at most (``status`` pages through the rest).
PARKED_LIMIT = 1000


def reconcile(
    config: Config,
    store: Store,
    remotes: Remotes,
    *,
    apply: bool,
    now: datetime,
    progress: PullProgress | None = None,
) -> ReconcileReport:
    """Compare both sides with what they should hold; with ``apply``, write the fixes.

    Raises :class:`LockHeld` when ``apply`` cannot have the store to itself; remote and
    config trouble come back as the report's exit code and message. ``progress`` is told
    how many records of each kind were read so far (progress bars).
    """
    report = ReconcileReport(applied=apply, as_of=now)
    ctx = open_context(config, store, remotes, now)  # the cycle's preamble: its budgets
    try:
        if apply:
            with _exclusive(config, store) as still_mine:
                _reconcile(ctx, report, still_mine, progress)
        else:
            _reconcile(ctx, report, lambda: None, progress)
    except ConnectorError as exc:  # its exit code: sync.exitcodes.exit_for, reconcile's rule
        report.status, report.exit_code = "failed", exit_for(exc, whole_read=True)
        report.message = str(exc)
        if isinstance(exc, BudgetExhausted):
            report.message = (
                f"the API budget ran out before both sides were read ({exc}); "
                "raise [limits] in the config or run reconcile again tomorrow"
            )
    report.calls = ctx.calls()
    if report.run_id is not None:
        _finish_run(store, report, now)
    return report


@contextmanager
def _scratch() -> Iterator[Store]:
    """A temporary SQLite store for what is read (deleted afterwards)."""
    with tempfile.TemporaryDirectory(prefix="jira-crm-sync-reconcile-") as tmp:
        scratch = open_store(f"sqlite:///{Path(tmp) / 'read.sqlite3'}")
        try:
            yield scratch
        finally:
            scratch.close()


def _reconcile(
    ctx: CycleContext,
    report: ReconcileReport,
    still_mine: Callable[[], None],
    progress: PullProgress | None,
) -> None:
    config, store, remotes, now = ctx.config, ctx.store, ctx.remotes, ctx.now
    jira, crm = remotes.jira, remotes.crm
    rules = ctx.prepare(refresh=False, save=report.applied)  # as a cycle signs in
    field_ids = rules.fields  # the resolved Jira field ids (ctx.field_ids)
    apply = Apply(store, remotes, now, report, still_mine) if report.applied else None
    with _scratch() as scratch:
        if apply is not None:
            apply.start()
        pages = Pages(store, scratch, now, apply=apply is not None, still_mine=still_mine)
        read = read_both(
            config,
            store,
            remotes,
            rules,
            jira_fields(field_ids),
            pages,
            unreadable=lambda entry: report.add("unreadable", entry),
            progress=progress,
        )
        fill_scratch(store, scratch, read, now)
        if apply is not None:
            still_mine()
            store_gone(store, read, now)
        derivation = Derivation.of(
            config,
            crm.instance_url,
            one_report_per_customer=isinstance(crm, OneReportPerCustomer)
            and crm.one_report_per_customer(config.push.crm.object),
        )
        with JiraComments.search(jira, read, field_ids.flag_field) as comments:
            compared = compare(
                store,
                scratch,
                rules,
                read,
                report,
                now,
                derivation=derivation,
                comments=comments,
                on_batch=apply.batch if apply is not None else None,
            )
    report.read = dict(sorted(read.counts.items()))
    if apply is not None and compared.end is not None:
        apply.finish(compared.end, compared.redundant)
    with store.read() as conn:
        report.parked = [
            _parked(entry, config.crm.side) for entry in repo.parked(conn, PARKED_LIMIT)
        ]
        report.parked_total = repo.counts(conn)["parked"]


def _parked(entry: repo.OutboxEntry, crm_side: str) -> dict[str, object]:
    return {
        "side": crm_side if entry.target == "crm" else entry.target,
        "record": entry.record_key,
        "error": entry.last_error,
        "attempts": entry.attempts,
        "retried": entry.attempts < repo.MAX_ATTEMPTS,
        "next_attempt_at": entry.next_attempt_at.isoformat(),
    }


def _finish_run(store: Store, report: ReconcileReport, now: datetime) -> None:
    assert report.run_id is not None
    finish_run(
        store,
        report.run_id,
        day=now.date(),
        status=report.status,
        exit_code=int(report.exit_code),
        calls=report.calls,
        pulled=report.read,
        written={**report.written, "failed": len(report.failed)},
        message=report.message,
        finished_at=now,
    )
