"""Merge and plan from the store: only the projects and customers touched by what changed,
and everything once a day (overdue and forecasts move with the date) or when the rules
change. Then record what was derived and queue the writes.

A sync cycle derives in batches of projects (:class:`BatchedDerive`), a bounded number of
issues at a time, so its memory does not grow with the store; each batch is recorded in
its own transaction. :func:`derive` merges everything at once, for reconcile and reports,
which need the whole model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from connectors.crm import RecordForm
from mappings.merge import CrmSide, MergeResult, merge, plan, remote_from_items
from mappings.model import SatisfactionFlag
from mappings.rules import Rules
from mappings.writes import JiraLedger, Plan, RemoteJira
from sync.pull import JIRA_KIND, Changes, Overlay
from sync.store import Store, repo

LEDGER_FIELD = "*"  # one ledger row per record: the plan diffs whole records

#: Issues merged at once when deriving in batches: bounds a cycle's memory however many
#: issues the store holds (a project with more is one batch of its own).
BATCH_ISSUES = 5000


@dataclass
class Derived:
    """One cycle's model and plan, and which projects it covered."""

    result: MergeResult
    plan: Plan
    projects: tuple[str, ...]
    everything: bool
    #: changed-project marks this derive covered (``record`` clears them).
    marks: tuple[repo.DirtyMark, ...] = ()


@dataclass
class DeriveEnd:
    """What is left to record once every batch is: the flags (they depend on the CRM data
    only), and, for a derive of everything, the marks and queued writes of projects that
    no longer hold any issue."""

    crm: CrmSide
    #: every project some batch covered.
    projects: tuple[str, ...]
    everything: bool
    #: changed-project marks no batch covered (cleared with the flags).
    marks: tuple[repo.DirtyMark, ...] = ()


@dataclass
class _CrmInputs:
    """The CRM records and flag history a merge reads: read once per cycle."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    deleted_accounts: list[str] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    surveys: list[dict[str, Any]] = field(default_factory=list)
    previous_flags: dict[str, SatisfactionFlag] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


class BatchedDerive:
    """Merge and plan ``projects`` (None: every project holding issues) in batches of about
    ``batch_issues`` issues (default :data:`BATCH_ISSUES`), whole projects each, streamed
    from the store.

    Iterate to get one :class:`Derived` per batch (its ``marks`` are those of its projects
    only); :attr:`end` is then what remains to record. Customers and flags are built once,
    by the first batch's merge, and shared by the others. A parent or epic in a project of
    another batch is read from the store, so links are those of a merge of everything.
    """

    def __init__(
        self,
        store: Store,
        rules: Rules,
        projects: list[str] | None,
        now: datetime,
        *,
        jira_url: str,
        instance_url: str,
        survey_window_days: int,
        form: RecordForm,
        batch_issues: int | None = None,
    ) -> None:
        self.store, self.rules, self.now = store, rules, now
        self.projects = projects
        self.jira_url, self.instance_url = jira_url, instance_url
        self.survey_window_days = survey_window_days
        self.form = form
        self.batch_issues = max(1, BATCH_ISSUES if batch_issues is None else batch_issues)
        self._end: DeriveEnd | None = None

    @property
    def end(self) -> DeriveEnd:
        """What to record after the batches (available once they are all iterated)."""
        if self._end is None:
            raise RuntimeError("the batches have not all been derived yet")
        return self._end

    def __iter__(self) -> Iterator[Derived]:
        store, rules, now = self.store, self.rules, self.now
        with store.read() as conn:
            # Read first: the records of every mark read here are visible to later reads.
            marks = repo.dirty_marks(conn)
            counts = repo.item_counts_by_project(conn)
            crm = _crm_inputs(conn, rules, now, self.survey_window_days, self.form)
        keys = sorted(counts) if self.projects is None else sorted(set(self.projects))
        side: CrmSide | None = None
        covered: list[str] = []
        for batch in _batches(keys, counts, self.batch_issues):
            with store.read() as conn:
                issues = [record.data for record in repo.iter_items(conn, batch)]
            result = self._merge(issues, crm, side)
            del issues
            if side is None:
                side, crm = CrmSide.of(result), _CrmInputs()  # the raw CRM records are done
            covered.extend(batch)
            mine = set(batch)
            done = tuple(mark for mark in marks if mark.project_key in mine)
            yield Derived(result, _plan(store, result, rules), tuple(batch), False, done)
            del result  # before the next batch is read: one batch in memory at a time
        if side is None:  # no project to derive: the flags still move with the CRM data
            side = CrmSide.of(self._merge([], crm, None))
        everything = self.projects is None
        taken = set(covered)
        rest = tuple(mark for mark in marks if everything and mark.project_key not in taken)
        self._end = DeriveEnd(side, tuple(covered), everything, rest)

    def _merge(
        self, issues: list[dict[str, Any]], crm: _CrmInputs, side: CrmSide | None
    ) -> MergeResult:
        return merge(
            issues,
            crm.accounts,
            crm.cases,
            crm.surveys,
            rules=self.rules,
            as_of=self.now,
            deleted_account_ids=crm.deleted_accounts,
            previous_flags=crm.previous_flags,
            previous_scores=crm.scores,
            jira_url=self.jira_url,
            instance_url=self.instance_url,
            crm=side,
            ancestors=self._ancestors,
            customer_ids=self.form.customer_id,
        )

    def _ancestors(self, keys: Collection[str]) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return [record.data for record in repo.get_items(conn, keys)]


def _batches(keys: list[str], counts: Mapping[str, int], size: int) -> Iterator[list[str]]:
    """Consecutive projects, grouped until a group holds ``size`` issues or more."""
    batch: list[str] = []
    held = 0
    for key in keys:
        batch.append(key)
        held += counts.get(key, 0)
        if held >= size:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _crm_inputs(
    conn: Any, rules: Rules, now: datetime, survey_window_days: int, form: RecordForm
) -> _CrmInputs:
    crm = _CrmInputs()
    for account in repo.iter_customers(conn, include_deleted=True):
        if account.deleted:
            crm.deleted_accounts.append(account.id)
        else:
            crm.accounts.append(form.stored_customer(account.data))
    crm.cases = _cases(conn)
    crm.surveys = _surveys(conn, rules, now - timedelta(days=survey_window_days))
    crm.previous_flags = _flags_of(repo.get_flags(conn))
    crm.scores = repo.latest_scores(conn, now.date())
    return crm


def _flags_of(stored: Mapping[str, Any]) -> dict[str, SatisfactionFlag]:
    return {
        customer: SatisfactionFlag(customer, flag.level, tuple(flag.reasons), flag.since)
        for customer, flag in stored.items()
    }


def _plan(
    store: Store,
    result: MergeResult,
    rules: Rules,
    crm_remote: Mapping[str, Mapping[str, Any]] | None = None,
    jira_remote: Mapping[str, RemoteJira] | None = None,
) -> Plan:
    """The plan of a merge result, judged by the ledger (and the remote state given)."""
    with store.read() as conn:
        crm_rows = repo.ledger_get_many(conn, "crm", [r_key(r) for r in result.reports])
        jira_rows = repo.ledger_get_many(conn, "jira", [item.key for item in result.items])
        aside = repo.quarantined_ids(conn, "jira", JIRA_KIND).get(JIRA_KIND, [])
    crm_ledger = {key: fields[LEDGER_FIELD][0] for key, fields in crm_rows.items()}
    jira_ledger = {
        key: JiraLedger.from_dict(fields[LEDGER_FIELD][1]) for key, fields in jira_rows.items()
    }
    if jira_remote is None:
        jira_remote = _trusting_the_ledger(remote_from_items(result.items), jira_ledger, aside)
    return plan(
        result,
        rules,
        crm_ledger=crm_ledger,
        jira_ledger=jira_ledger,
        crm_remote=crm_remote,
        jira_remote=jira_remote,
    )


def _trusting_the_ledger(
    remote: dict[str, RemoteJira], ledger: Mapping[str, JiraLedger], aside: Collection[str]
) -> dict[str, RemoteJira]:
    """Remote labels known from stored issues, except where the stored version is stale: an
    issue whose newer version was set aside (its re-read after our own write could not be
    stored) still shows the labels from before that write, so its label is taken to be the
    one the ledger says we wrote (else a label we put on would never come off)."""
    for key in aside:
        known, ours = remote.get(key), ledger.get(key)
        if known is not None and ours is not None and ours.label is not None:
            remote[key] = RemoteJira(key, known.labels | {ours.label}, field_known=False)
    return remote


def rules_digest(rules: Rules) -> str:
    """A digest of the rules: when it changes, every project is recomputed."""
    return hashlib.sha256(repr(rules).encode("utf-8")).hexdigest()[:16]


def projects_to_derive(
    store: Store,
    changes: Changes,
    today: date,
    digest: str,
    *,
    full: bool,
    held: list[str] | None,
) -> tuple[list[str] | None, dict[str, repo.DeriveState]]:
    """Project keys to recompute (None: the whole scope) and the derive state to save after.

    ``held`` are the projects this worker owns (None: the whole scope). A project is
    recomputed when something it shows changed, and every project once a day (overdue
    counts and forecasts move with the date) and whenever the rules change.
    """
    scopes = held if held is not None else [repo.EVERY_PROJECT]
    new = repo.DeriveState(today, digest)
    with store.read() as conn:
        states = repo.derive_states(conn, scopes)
        # Changes a crashed cycle did not derive.
        marked = {mark.project_key for mark in repo.dirty_marks(conn)}
    stale = [scope for scope in scopes if full or states.get(scope) != new]
    saves = {scope: new for scope in stale}
    touched = changes.projects | changes.named_projects | marked
    if held is None:
        return (None if stale else sorted(touched)), saves
    return sorted(set(stale) | (touched & set(held))), saves


def derive(
    store: Store,
    rules: Rules,
    projects: list[str] | None,
    now: datetime,
    *,
    jira_url: str,
    instance_url: str,
    overlay: Overlay | None,
    survey_window_days: int,
    form: RecordForm,
    crm_remote: Mapping[str, Mapping[str, Any]] | None = None,
    jira_remote: Mapping[str, RemoteJira] | None = None,
) -> Derived:
    """Merge the stored (and overlaid) records of ``projects`` and plan their writes.

    ``crm_remote`` and ``jira_remote`` (reconcile) say what each side holds now; without
    them the plan judges by the ledger and the labels of the issues in the store.
    """
    with store.read() as conn:
        # Read first: every mark read here has its records visible to the reads below.
        marks = repo.dirty_marks(conn)
        issues = [
            record.data
            for record in repo.iter_items(conn, projects)
            if overlay is None or record.key not in overlay.deleted_items
        ]
        accounts: list[dict[str, Any]] = []
        deleted_accounts: list[str] = []
        for account in repo.iter_customers(conn, include_deleted=True):
            if account.deleted:
                deleted_accounts.append(account.id)
            else:
                accounts.append(form.stored_customer(account.data))
        cases = _cases(conn)
        surveys = _surveys(conn, rules, now - timedelta(days=survey_window_days))
        previous_flags = _flags_of(repo.get_flags(conn))
        scores = repo.latest_scores(conn, now.date())
    if overlay is not None:
        issues = _overlaid(issues, overlay.items, projects)
        accounts = [a for a in accounts if a["id"] not in overlay.deleted_accounts]
        accounts = list({**{a["id"]: a for a in accounts}, **overlay.accounts}.values())
        deleted_accounts = sorted(set(deleted_accounts) | overlay.deleted_accounts)
        cases = list({**{c["id"]: c for c in cases}, **overlay.cases}.values())
        surveys = list({**{s["id"]: s for s in surveys}, **overlay.surveys}.values())
        gone = overlay.deleted_other
        cases = [c for c in cases if c["id"] not in gone]
        surveys = [s for s in surveys if s["id"] not in gone]
    result = merge(
        issues,
        accounts,
        cases,
        surveys,
        rules=rules,
        as_of=now,
        deleted_account_ids=deleted_accounts,
        previous_flags=previous_flags,
        previous_scores=scores,
        jira_url=jira_url,
        instance_url=instance_url,
        customer_ids=form.customer_id,
    )
    the_plan = _plan(store, result, rules, crm_remote, jira_remote)
    covered = tuple(projects) if projects is not None else tuple(p.key for p in result.projects)
    done = tuple(mark for mark in marks if projects is None or mark.project_key in covered)
    return Derived(result, the_plan, covered, projects is None, done)


def r_key(report: Any) -> str:
    """The external id of a report record: ``<PROJECT KEY>:<customer id>`` (SPEC section 6)."""
    return f"{report.project_key}:{report.customer_id}"


def _overlaid(
    issues: list[dict[str, Any]], pulled: dict[str, dict[str, Any]], projects: list[str] | None
) -> list[dict[str, Any]]:
    merged = {str(issue["key"]): issue for issue in issues}
    for key, issue in pulled.items():
        project = ((issue.get("fields") or {}).get("project") or {}).get("key")
        if projects is None or project in projects:
            merged[key] = issue
    return list(merged.values())


def _cases(conn: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": case.id,
            "customer_id": case.customer_id,
            "closed": case.is_closed,
            "escalated": case.is_escalated,
        }
        for case in repo.iter_cases(conn)
    ]


def _surveys(conn: Any, rules: Rules, since: datetime) -> list[dict[str, Any]]:
    if rules.satisfaction.source != "survey":
        return []
    return [
        {
            "id": row.id,
            "customer_id": row.customer_id,
            "score": row.score,
            "answered_at": row.responded_at.isoformat() if row.responded_at else None,
        }
        for row in repo.iter_surveys(conn, since=since)
    ]


def ledger_digest(value: Any) -> str:
    """A stable digest of a JSON value."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
