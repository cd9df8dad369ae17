"""``reconcile``: both sides re-read in full and compared with what they should hold
(SPEC sections 1.4, 4 and 7).

One read of each side: one Jira search of the whole scope, and one CRM changes call that
reads accounts, cases (surveys) and the report object's records together. What was read is
merged over the store in memory (the dry run's :class:`~sync.pull.Overlay`) and planned
*with what the remotes hold*: the plan's writes are the drift, and its ownership and
policy rules decide what counts (a label a person added is not ours to judge; with
``[push.jira] policy = "respect"`` a value a person changed is a conflict, not drift).
Flag comments: one search for our marker text finds the issues whose comments carry a flag
marker (whatever the ledger says: a new or lost state store has no memory of them), and
only those issues' comments are read. A flag comment repeating its customer's previous
level is a duplicate, named by comment id; ``--apply`` deletes the duplicates the
integration user posted (a person's copy is reported, never deleted).

Without ``--apply`` nothing is written anywhere: no remote write, and the store (records,
cursors, ledgers, runs, call counts) is left as it was. With ``--apply``, holding the run
lock (SQLite) or every shard (PostgreSQL), the records read are stored, the derived state
recorded and the fixes queued and pushed through the outbox exactly as ``run`` does, so
retries, parking, ledgers and crash safety all apply. Cursors are left alone: the next
``run`` reads on from its own.

Report records of pairs that no longer exist are reported, never deleted: a pair can
disappear because a link value was cleared by mistake, and deleting what account managers
read in the CRM is a decision for a person (the report names each record).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.crm import CASE, CUSTOMER, REPORT, SURVEY, ChangePage, CrmRecord, Read, RecordForm
from connectors.exceptions import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    ConnectorError,
    RemoteError,
    RetriableError,
    UnreachableError,
)
from connectors.times import parse_timestamp as parse_datetime
from mappings.desired import VOLATILE_FIELDS
from mappings.drift import (
    Drift,
    Duplicate,
    crm_drift,
    duplicate_flag_comments,
    duplicate_reports,
    jira_drift,
    redundant_flag_comments,
    remote_jira,
)
from mappings.rules import Rules
from mappings.similarity import NameIndex
from mappings.text import MARKER_PHRASE, parse_marker
from mappings.validate import IssueCheck
from mappings.writes import RemoteJira
from sync.config import Config
from sync.derive import LEDGER_FIELD, Derived, derive
from sync.engine import field_names, finish_run, link_problem_dict
from sync.exitcodes import ExitCode
from sync.pull import Overlay, PullProgress, store_crm_page
from sync.push import PushResult, push, record
from sync.remote import (
    Remotes,
    crm_form,
    crm_needs,
    jira_fields,
    prepare_crm,
    prepare_jira,
)
from sync.runner import lease_ttl, worker_name
from sync.store import LockHeld, Store, lease_shards, release, renew, repo, run_lock
from sync.workers import all_shards

__all__ = ["ReconcileReport", "Section", "reconcile", "render_rich", "render_text", "sections"]

#: Parked writes listed at most (``status`` pages through the rest).
PARKED_LIMIT = 1000


@dataclass
class ReconcileReport:
    """What reconcile found (and, with ``--apply``, did), for the CLI and scripts."""

    applied: bool
    as_of: datetime
    status: str = "ok"
    exit_code: ExitCode = ExitCode.OK
    message: str = ""
    run_id: int | None = None
    read: dict[str, int] = field(default_factory=dict)
    drift: list[Drift] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    parked: list[dict[str, Any]] = field(default_factory=list)
    unlinked_projects: list[dict[str, Any]] = field(default_factory=list)
    unlinked_customers: list[dict[str, Any]] = field(default_factory=list)
    #: work items whose link value could not be used (the reason names the value), and
    #: the rule each fell back to; item None: an entry of the [link.static] table.
    link_problems: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    #: records read that the model cannot read, with why (left out, never stored).
    unreadable: list[dict[str, str]] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: parked writes in the store (``parked`` lists the first PARKED_LIMIT of them).
    parked_total: int = 0

    def counts(self) -> dict[str, int]:
        """How many of each finding."""
        return {
            "drift": len(self.drift),
            "drifted_records": len({(d.side, d.record) for d in self.drift}),
            "conflicts": len(self.conflicts),
            "duplicates": len(self.duplicates),
            "parked": max(self.parked_total, len(self.parked)),
            "unlinked_projects": len(self.unlinked_projects),
            "unlinked_customers": len(self.unlinked_customers),
            "link_problems": len(self.link_problems),
            "deleted": len(self.deleted),
            "unreadable": len(self.unreadable),
            "written": sum(self.written.values()),
            "failed": len(self.failed),
        }

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``reconcile --json``)."""
        return {
            "applied": self.applied,
            "as_of": self.as_of.isoformat(),
            "status": self.status,
            "exit_code": int(self.exit_code),
            "message": self.message,
            "run_id": self.run_id,
            "counts": self.counts(),
            "read": self.read,
            "drift": [d.as_dict() for d in self.drift],
            "conflicts": self.conflicts,
            "duplicates": [d.as_dict() for d in self.duplicates],
            "parked": self.parked,
            "unlinked_projects": self.unlinked_projects,
            "unlinked_customers": self.unlinked_customers,
            "link_problems": self.link_problems,
            "deleted": self.deleted,
            "unreadable": self.unreadable,
            "written": self.written,
            "failed": self.failed,
            "calls": self.calls,
        }


@dataclass
class _Read:
    """Everything one reconcile read, before it is compared."""

    overlay: Overlay = field(default_factory=Overlay)
    reports: list[CrmRecord] = field(default_factory=list)
    #: report records by external id -> the CRM's record id.
    report_ids: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    #: store records gone from the remote: Jira keys, account ids.
    gone_items: set[str] = field(default_factory=set)
    gone_accounts: dict[str, str] = field(default_factory=dict)
    deleted_cases: set[str] = field(default_factory=set)
    deleted_surveys: set[str] = field(default_factory=set)
    #: records that could not be read (mappings.validate): left out of the comparison.
    unreadable: list[dict[str, str]] = field(default_factory=list)


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
    _set_budgets(config, store, remotes, now)
    try:
        if apply:
            with _exclusive(config, store) as still_mine:
                _reconcile(config, store, remotes, now, report, still_mine, progress)
        else:
            _reconcile(config, store, remotes, now, report, lambda: None, progress)
    except BudgetExhausted as exc:
        report.status, report.exit_code = "failed", ExitCode.REMOTE
        report.message = (
            f"the API budget ran out before both sides were read ({exc}); "
            "raise [limits] in the config or run reconcile again tomorrow"
        )
    except ConfigError as exc:
        report.status, report.exit_code = "failed", ExitCode.USAGE
        report.message = str(exc)
    except (AuthError, UnreachableError, RetriableError, RemoteError, ConnectorError) as exc:
        report.status, report.exit_code = "failed", ExitCode.REMOTE
        report.message = str(exc)
    report.calls = {
        "jira": remotes.jira_meter.snapshot(),
        remotes.crm.side: remotes.crm_meter.snapshot(),
    }
    if report.run_id is not None:
        _finish_run(store, report, now)
    return report


def _reconcile(
    config: Config,
    store: Store,
    remotes: Remotes,
    now: datetime,
    report: ReconcileReport,
    still_mine: Callable[[], None],
    progress: PullProgress | None,
) -> None:
    jira, crm = remotes.jira, remotes.crm
    field_ids = prepare_jira(jira, store, now, config, refresh=False, save=report.applied)
    rules = config.mapping_rules(field_ids)
    prepare_crm(crm, store, now, crm_needs(config), refresh=False, save=report.applied)

    pulled = jira_fields(field_ids)
    read = _read_both(config, store, remotes, rules, pulled, progress)
    field_id = field_ids.flag_field
    with store.read() as conn:
        jira_ledger = repo.ledger_values(conn, "jira", LEDGER_FIELD)
        crm_ledger = repo.ledger_values(conn, "crm", LEDGER_FIELD)
    jira_remote, comment_duplicates, redundant = _jira_remote(remotes, read, field_id)
    external_id = rules.crm_push.external_id_field
    crm_remote = {str(r.data[external_id]): r.data for r in read.reports if r.data.get(external_id)}
    read.report_ids = {
        str(r.data[external_id]): r.id for r in read.reports if r.data.get(external_id)
    }
    derived = derive(
        store,
        rules,
        None,
        now,
        jira_url=config.jira.url,
        instance_url=crm.instance_url,
        overlay=read.overlay,
        survey_window_days=config.satisfaction.survey.window_days,
        form=crm_form(config),
        crm_remote=crm_remote,
        jira_remote=jira_remote,
    )
    plan = derived.plan
    volatile = frozenset(c for name, c in rules.crm_push.fields if name in VOLATILE_FIELDS)
    report.read = dict(sorted(read.counts.items()))
    report.unreadable = read.unreadable
    report.drift = [*crm_drift(plan.crm, crm_remote, volatile), *jira_drift(plan.jira, jira_remote)]
    policy = config.push.jira.policy
    report.conflicts = [
        {**c.as_dict(), "policy": policy if c.side == "jira" else "enforce"} for c in plan.conflicts
    ]
    report.duplicates = [
        *_report_duplicates(rules, read.reports, crm_form(config)),
        *comment_duplicates,
    ]
    report.unlinked_projects, report.unlinked_customers = _unlinked(derived)
    report.link_problems = [link_problem_dict(p) for p in derived.result.links.problems]
    report.deleted = _deleted(read, derived, crm_remote, crm_ledger, jira_ledger)
    if report.applied:
        _apply(config, store, remotes, now, read, derived, report, still_mine)
        _delete_redundant(remotes, redundant, report)
    with store.read() as conn:
        report.parked = [
            _parked(entry, config.crm.side) for entry in repo.parked(conn, PARKED_LIMIT)
        ]
        report.parked_total = repo.counts(conn)["parked"]


# --- reading -----------------------------------------------------------------------------------


def _read_both(
    config: Config,
    store: Store,
    remotes: Remotes,
    rules: Rules,
    fields: list[str],
    progress: PullProgress | None,
) -> _Read:
    """Every issue in scope (one search) and every CRM record the model and the report
    object need (one changes call), and what the store holds that they no longer do."""
    read = _Read()
    overlay = read.overlay
    tell = progress or (lambda what, count: None)
    issue_check = IssueCheck(rules.fields, field_names(config, rules.fields))
    unreadable: set[str] = set()  # present remotely, so not "deleted"

    def readable(side: str, kind: str, record_id: str, problem: str | None) -> bool:
        if problem is None:
            return True
        read.unreadable.append({"side": side, "kind": kind, "record": record_id, "reason": problem})
        unreadable.add(record_id)
        return False

    for issues in remotes.jira.pull_issues(fields, None, None):
        overlay.items.update(
            (str(issue["key"]), dict(issue))
            for issue in issues
            if readable("jira", "issue", str(issue["key"]), issue_check.problem(issue))
        )
        tell("jira_issues", len(overlay.items))
    read.counts["jira_issues"] = len(overlay.items)

    crm = remotes.crm
    needs = crm_needs(config)
    streams, kinds = crm.streams(needs), needs.pulled
    pulled = {streams[kind] for kind in kinds}
    live: dict[str, set[str]] = {CASE: set(), SURVEY: set()}

    def take(page: ChangePage) -> None:
        stream = page.stream
        for record_id, why in page.unreadable:
            readable(crm.side, stream, record_id, why)
        records = page.live
        read.counts[stream] += len(records)
        tell(stream, read.counts[stream])
        live.setdefault(page.kind, set()).update(r.id for r in records)
        live[page.kind].update(i for i, _why in page.unreadable)
        overlay.put_crm(page.kind, records)
        if page.kind == CUSTOMER:
            overlay.deleted_accounts.update(page.deleted_ids)

    def take_reports(page: ChangePage) -> None:
        read.reports.extend(page.live)
        read.counts["report_records"] += len(page.live)
        tell(page.stream, read.counts["report_records"])

    reads = [Read(kind) for kind in kinds]
    if streams[REPORT] in pulled:  # e.g. report fields on the customer: read it once more
        for page in crm.changes(needs, reads):
            take(page)
        for page in crm.changes(needs, [Read(REPORT)]):
            take_reports(page)
    else:  # the usual case: the report object in the same Composite call
        for page in crm.changes(needs, [*reads, Read(REPORT)]):
            (take_reports if page.kind == REPORT else take)(page)
    surveys = live[SURVEY] if SURVEY in kinds else None
    _gone_from_store(store, read, live[CASE], surveys, crm_form(config))
    read.gone_items -= unreadable
    for record_id in unreadable:
        read.gone_accounts.pop(record_id, None)
    return read


def _gone_from_store(
    store: Store,
    read: _Read,
    live_cases: set[str],
    live_surveys: set[str] | None,
    form: RecordForm,
) -> None:
    """What the store holds as live that the full read did not find: deleted remotely
    (or, for issues, moved out of scope). A full read sees every live record, so this
    also finds records purged from the CRM's recycle bin."""
    overlay = read.overlay
    with store.read() as conn:
        keys = repo.iter_item_keys(conn)
        read.gone_items = {key for key, _project in keys if key not in overlay.items}
        stored = repo.live_customer_ids(conn)
        gone = sorted(account_id for account_id in stored if account_id not in overlay.accounts)
        read.gone_accounts = {
            account_id: str(form.stored_customer(record.data).get("name") or "")
            for account_id, record in repo.get_customers(conn, gone).items()
        }
        read.deleted_cases = repo.live_case_ids(conn) - live_cases
        if live_surveys is not None:  # not read unless satisfaction comes from surveys
            read.deleted_surveys = repo.live_survey_ids(conn) - live_surveys
    overlay.deleted_items.update(read.gone_items)
    overlay.deleted_accounts.update(read.gone_accounts)
    overlay.deleted_other.update(read.deleted_cases | read.deleted_surveys)


def _jira_remote(
    remotes: Remotes, read: _Read, field_id: str | None
) -> tuple[dict[str, RemoteJira], list[Duplicate], dict[str, tuple[str, ...]]]:
    """What every issue read holds of ours, the duplicate flag comments, and per issue the
    ids of the redundant flag comments the integration user posted (``--apply`` deletes
    those). One search for the marker text says which issues carry flag markers; only
    their comments are read (one call each). The others are known to carry none."""
    jira = remotes.jira
    marked = jira.keys_with_comment_text(MARKER_PHRASE) & set(read.overlay.items)
    me = jira.connect().user
    remote: dict[str, RemoteJira] = {}
    duplicates: list[Duplicate] = []
    redundant: dict[str, tuple[str, ...]] = {}
    for key, issue in read.overlay.items.items():
        bodies: list[str] = []
        if key in marked:
            comments = [c for c in jira.comment_infos(key) if parse_marker(c.body)]
            read.counts["jira_comment_checks"] += 1
            pairs = [(c.id, c.body) for c in comments]
            duplicates.extend(duplicate_flag_comments(key, pairs))
            ours = {c.id for c in comments if c.author in ("", me)}  # "": Jira did not say
            mine = tuple(i for i in redundant_flag_comments(pairs) if i in ours)
            if mine:
                redundant[key] = mine
            bodies = [c.body for c in comments]
        remote[key] = remote_jira(issue, field_id, bodies)
    return remote, duplicates, redundant


def _delete_redundant(
    remotes: Remotes, redundant: Mapping[str, tuple[str, ...]], report: ReconcileReport
) -> None:
    """Delete the redundant flag comments we posted (``--apply``): each repeats a level its
    customer's previous marker on the issue already announced."""
    deleted = 0
    for key, ids in sorted(redundant.items()):
        for comment_id in ids:
            if remotes.jira.delete_comment(key, comment_id):
                deleted += 1
    if deleted:
        report.written["jira_comments_deleted"] = deleted


def _report_duplicates(rules: Rules, records: list[CrmRecord], form: RecordForm) -> list[Duplicate]:
    fields = dict(rules.crm_push.fields)
    return list(
        duplicate_reports(
            [(r.id, r.data) for r in records],
            rules.crm_push.external_id_field,
            fields.get("account"),
            fields.get("project_key"),
            form.customer_id,
        )
    )


# --- findings ----------------------------------------------------------------------------------


def _unlinked(derived: Derived) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Unlinked projects and customers, each with the links its name suggests."""
    result = derived.result
    links = result.links
    names = {project.key: project.name for project in result.projects}
    customers = {customer.id: customer.name for customer in result.customers}
    by_customer = NameIndex((cid, [name]) for cid, name in customers.items())
    by_project = NameIndex((key, [key, name]) for key, name in names.items())
    projects_out = [
        {
            "key": key,
            "name": names.get(key, key),
            "suggestions": [s.as_dict() for s in by_customer.rank([key, names.get(key, "")])],
        }
        for key in links.unlinked_projects
    ]
    customers_out = [
        {
            "id": cid,
            "name": customers.get(cid, cid),
            "suggestions": [s.as_dict() for s in by_project.rank([customers.get(cid, "")])],
        }
        for cid in links.unlinked_customers
    ]
    return projects_out, customers_out


def _deleted(
    read: _Read,
    derived: Derived,
    crm_remote: Mapping[str, Any],
    crm_ledger: Mapping[str, Any],
    jira_ledger: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Records the store or the ledger knows that are gone remotely, and report records
    the CRM holds for pairs that no longer exist (reported, not deleted)."""
    out: list[dict[str, Any]] = []
    gone_keys = read.gone_items | {k for k in jira_ledger if k not in read.overlay.items}
    for key in sorted(gone_keys):
        out.append(
            {
                "kind": "jira_issue",
                "key": key,
                "in_store": key in read.gone_items,
                "in_ledger": key in jira_ledger,
            }
        )
    for account_id, name in sorted(read.gone_accounts.items()):
        out.append({"kind": "account", "key": account_id, "name": name, "in_store": True})
    wanted = {r.external_id for r in derived.result.reports}
    orphans = (set(crm_remote) | set(crm_ledger)) - wanted
    for key in sorted(orphans):
        out.append(
            {
                "kind": "report_record",
                "key": key,
                "in_crm": key in crm_remote,
                "in_ledger": key in crm_ledger,
                "id": read.report_ids.get(key) or None,
            }
        )
    return out


def _parked(entry: Any, crm_side: str) -> dict[str, Any]:
    return {
        "side": crm_side if entry.target == "crm" else entry.target,
        "record": entry.record_key,
        "error": entry.last_error,
        "attempts": entry.attempts,
        "retried": entry.attempts < repo.MAX_ATTEMPTS,
        "next_attempt_at": entry.next_attempt_at.isoformat(),
    }


# --- applying ----------------------------------------------------------------------------------


@contextmanager
def _exclusive(config: Config, store: Store) -> Iterator[Callable[[], None]]:
    """Have the store to ourselves like `run`: the run lock on SQLite, every shard's lease
    on PostgreSQL (LockHeld when another worker holds one). Yields a check that the
    leases are still ours (renewing them), to call before writing."""
    owner = worker_name("reconcile")
    if store.dialect != "postgresql":
        with run_lock(store.engine, owner):
            yield lambda: None
        return
    shards = all_shards(config)
    ttl = lease_ttl(config)
    held = lease_shards(store.engine, owner, shards, ttl)
    try:
        if set(held) != set(shards):
            raise LockHeld(
                "other workers hold shards of this state store (see `jira-crm-sync status`); "
                "stop the serve workers or wait for their cycle, then run reconcile --apply again"
            )

        def still_mine() -> None:
            if set(renew(store.engine, owner, shards, ttl)) != set(shards):
                raise LockHeld(
                    "reconcile lost its shard leases while reading (it took longer than "
                    "[serve] lease_seconds); raise lease_seconds and run it again"
                )

        yield still_mine
    finally:
        release(store.engine, owner)


def _apply(
    config: Config,
    store: Store,
    remotes: Remotes,
    now: datetime,
    read: _Read,
    derived: Derived,
    report: ReconcileReport,
    still_mine: Callable[[], None],
) -> None:
    """Store what was read, record what was derived and push the fixes, like `run`."""
    still_mine()
    with store.transaction() as tx:
        report.run_id = repo.start_run(
            tx, worker_name("reconcile"), dry_run=False, full=True, started_at=now
        )
    _store_read(config, store, read, now)
    record(store, derived, report.run_id, now)
    with store.transaction() as tx:
        # The marks _store_read left for a crash before `record`; the derive covered them
        # (no one else pulls while we hold the store). Projects left without items keep
        # theirs: the next run clears their links.
        covered = set(derived.projects)
        marks = repo.dirty_marks(tx)
        repo.clear_dirty(tx, [mark for mark in marks if mark.project_key in covered])
    _retry_now(store, derived, now)
    pushed = PushResult()
    try:
        push(store, remotes.jira, remotes.crm, now, report.run_id, pushed)
    finally:
        report.written, report.failed = pushed.written, pushed.failed
    if pushed.failed:
        report.status, report.exit_code = "parked", ExitCode.PARKED
        report.message = (
            f"{len(pushed.failed)} fix(es) were rejected and parked for retry; "
            "`jira-crm-sync status` lists them and the next run retries them"
        )


def _retry_now(store: Store, derived: Derived, now: datetime) -> None:
    """Parked writes of the records being fixed get a fresh set of attempts, due now: a
    person asked for the fixes, so a write waiting out its backoff is sent with them."""
    plan = derived.plan
    planned = {("crm", w.external_id) for w in plan.crm} | {
        ("jira", w.issue_key) for w in plan.jira
    }
    with store.transaction() as tx:
        parked = repo.parked_refs(tx)
        stuck = [entry.id for entry in parked if (entry.target, entry.record_key) in planned]
        # Due at this reconcile's own time (push compares with it), not the wall clock's.
        if stuck:
            repo.retry_parked(tx, stuck, now=now)


def _store_read(config: Config, store: Store, read: _Read, now: datetime) -> None:
    """Refresh the store with the full read (an older copy never replaces a newer one),
    marking the projects it touches changed: a crash before they are derived leaves the
    next run to derive them, as a crash in a pull does."""
    overlay = read.overlay
    rows: list[repo.ItemRow] = [
        {
            "key": key,
            "project_key": _project(issue),
            "issue_id": str(issue.get("id") or ""),
            "updated": _updated(issue),
            "data": issue,
        }
        for key, issue in overlay.items.items()
    ]
    with store.transaction() as tx:
        repo.upsert_items(tx, rows)
        repo.mark_items_deleted(tx, read.gone_items, at=now)
        touched = {row["project_key"] for row in rows}
        touched.update(key.rsplit("-", 1)[0] for key in read.gone_items)
        gone_customers = set(read.gone_accounts) | overlay.deleted_accounts
        touched.update(link.project_key for link in repo.get_links(tx, customer_ids=gone_customers))
        repo.mark_dirty(tx, touched, at=now)
        accounts = overlay.crm_records(CUSTOMER)
        store_crm_page(tx, CUSTOMER, accounts, sorted(overlay.deleted_accounts), now)
        store_crm_page(tx, CASE, overlay.crm_records(CASE), sorted(read.deleted_cases), now)
        if overlay.surveys or read.deleted_surveys:
            surveys = overlay.crm_records(SURVEY)
            store_crm_page(tx, SURVEY, surveys, sorted(read.deleted_surveys), now)


def _project(issue: Mapping[str, Any]) -> str:
    project = (issue.get("fields") or {}).get("project") or {}
    return str(project.get("key") or str(issue["key"]).rsplit("-", 1)[0])


def _updated(issue: Mapping[str, Any]) -> datetime | None:
    text = (issue.get("fields") or {}).get("updated")
    return parse_datetime(str(text)) if text else None


# --- budgets and bookkeeping -------------------------------------------------------------------


def _set_budgets(config: Config, store: Store, remotes: Remotes, now: datetime) -> None:
    """The same budget as a cycle: the per-cycle limit, within what is left of the day."""
    limits = config.limits
    with store.read() as conn:
        jira_used = repo.calls_today(conn, "jira", now.date())
        crm_used = repo.calls_today(conn, remotes.crm.side, now.date())
    remotes.jira_meter.reset(
        max(0, min(limits.jira_calls_per_cycle, limits.jira_calls_per_day - jira_used))
    )
    remotes.crm_meter.reset(
        max(0, min(limits.crm_calls_per_cycle, limits.crm_calls_per_day - crm_used))
    )


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


# --- text --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One part of the text report: a title, column headers and rows of cells."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _suggestions(entry: Mapping[str, Any]) -> str:
    found = entry.get("suggestions") or []
    if not found:
        return "no similar name"
    return "; ".join(f"{s['id']} {s['name']} ({s['score']:.2f})" for s in found)


def _duplicate_note(duplicate: Duplicate) -> str:
    if duplicate.kind == "flag_comment" and duplicate.ids:
        return f"{duplicate.detail}; repeated by comment(s) {', '.join(duplicate.ids)}"
    return duplicate.detail or ", ".join(duplicate.ids)


def _deleted_note(entry: Mapping[str, Any]) -> str:
    kind = entry["kind"]
    if kind == "jira_issue":
        where = [
            w for w, on in (("store", entry["in_store"]), ("ledger", entry["in_ledger"])) if on
        ]
        return f"gone from Jira (or out of scope); in our {' and '.join(where)}"
    if kind == "account":
        return f"{entry.get('name') or ''}: gone from the CRM".lstrip(": ")
    if entry.get("in_crm"):
        return "its pair is no longer linked; delete the record in the CRM if unwanted"
    return "we wrote it; the pair and the record are both gone"


def sections(report: ReconcileReport) -> list[Section]:
    """The report's findings, section by section (what the text and rich views show)."""
    out = [
        Section(
            "drift (the fixes written below)" if report.applied else "drift",
            ("side", "record", "field", "holds", "should hold"),
            [
                (d.side, d.record, d.field, _value(d.holds), _value(d.should_hold))
                for d in report.drift
            ],
        ),
        Section(
            "conflicts (a person changed what we set)",
            ("side", "record", "what", "policy", "action"),
            [(c["side"], c["key"], c["what"], c["policy"], c["action"]) for c in report.conflicts],
        ),
        Section(
            "duplicates",
            ("kind", "key", "count", "detail"),
            [(d.kind, d.key, str(d.count), _duplicate_note(d)) for d in report.duplicates],
        ),
        Section(
            "parked writes",
            ("side", "record", "attempts", "error"),
            [(p["side"], p["record"], str(p["attempts"]), str(p["error"])) for p in report.parked],
        ),
        Section(
            "records that could not be read (left out of the comparison)",
            ("side", "kind", "record", "why"),
            [(u["side"], u["kind"], u["record"], u["reason"]) for u in report.unreadable],
        ),
        Section(
            "unlinked projects",
            ("project", "name", "suggested customers"),
            [(p["key"], p["name"], _suggestions(p)) for p in report.unlinked_projects],
        ),
        Section(
            "unlinked customers",
            ("account", "name", "suggested projects"),
            [(c["id"], c["name"], _suggestions(c)) for c in report.unlinked_customers],
        ),
        Section(
            "link problems (values that could not be used)",
            ("project", "item", "reason", "fell back to"),
            [
                (
                    p["project"],
                    p["item"] or "[link.static]",
                    p["reason"],
                    p["linked_by"] or ("-" if p["item"] is None else "unlinked"),
                )
                for p in report.link_problems
            ],
        ),
        Section(
            "deleted",
            ("kind", "key", "note"),
            [(d["kind"], d["key"], _deleted_note(d)) for d in report.deleted],
        ),
    ]
    if report.applied:
        out.append(
            Section(
                "written",
                ("what", "count"),
                [(what, str(n)) for what, n in sorted(report.written.items())],
            )
        )
    return out


def _headline(report: ReconcileReport) -> str:
    counts = report.counts()
    read = ", ".join(f"{n} {what}" for what, n in report.read.items()) or "nothing"
    head = (
        f"read {read}; {counts['drift']} drift in {counts['drifted_records']} record(s), "
        f"{counts['duplicates']} duplicate(s), {counts['parked']} parked"
    )
    return head


def _footer(report: ReconcileReport) -> str:
    if report.applied or not report.drift:
        return ""
    return "nothing was written; `jira-crm-sync reconcile --apply` writes the fixes"


def render_text(report: ReconcileReport, limit: int = 50) -> str:
    """The report as plain lines, by section (``limit`` rows a section; --json has all);
    nothing when reconcile did not finish (its one-line error says why)."""
    if report.status == "failed":
        return ""
    lines = [_headline(report)]
    for section in sections(report):
        if not section.rows:
            lines.append(f"{section.title}: none")
            continue
        lines.append(f"{section.title}: {len(section.rows)}")
        for row in section.rows[:limit]:
            lines.append("  " + " | ".join(row))
        if len(section.rows) > limit:
            lines.append(f"  ... and {len(section.rows) - limit} more (--json lists every one)")
    if _footer(report):
        lines.append(_footer(report))
    return "\n".join(lines) + "\n"


def render_rich(report: ReconcileReport, console: Any, limit: int = 50) -> None:
    """Rich tables, for a person at a terminal (nothing when reconcile did not finish)."""
    if report.status == "failed":
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console.print(Text(_headline(report)))
    for section in sections(report):
        console.print()
        if not section.rows:
            console.print(f"[bold]{escape(section.title)}[/bold]: none")
            continue
        table = Table(
            title=Text(f"{section.title} ({len(section.rows)})"),
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        last = len(section.headers) - 1
        for i, header in enumerate(section.headers):
            table.add_column(header, no_wrap=i != last, overflow="fold")
        for row in section.rows[:limit]:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
        if len(section.rows) > limit:
            console.print(Text(f"... and {len(section.rows) - limit} more (--json lists all)"))
    if _footer(report):
        console.print(Text(_footer(report)))
