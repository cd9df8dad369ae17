"""The derive stage: merge and plan from the store, in batches of projects.

Only the projects and customers touched by what changed are derived, and everything once a
day (overdue and forecasts move with the date) or when the rules change.

There is one derive path, :class:`BatchedDerive`: a bounded number of issues at a time, so
memory does not grow with the store. A real run records each batch in its own transaction
(:mod:`sync.cycle.record`); a dry run derives the same batches over an :class:`Overlay` of
what it pulled and records nothing, joining the batches' plans (:class:`PlanParts`) into
the one plan it prints. Reconcile plans its batches against what the remotes hold, and
the report derives them without a plan (``planned=False``), keeping what it shows.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from connectors.crm import RecordForm
from mappings.merge import CrmSide, MergeResult, merge, plan, remote_from_items
from mappings.model import SatisfactionFlag
from mappings.normalise_jira import issue_sort_key
from mappings.rules import Rules
from mappings.writes import Conflict, CrmWrite, JiraLedger, JiraWrite, Plan, RemoteJira
from sync.cycle import rows
from sync.cycle.pull import Changes, Overlay
from sync.cycle.rows import JIRA_KIND, issue_project
from sync.store import Store, repo

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
    #: the merge of no issue that built ``crm`` when there was no batch at all.
    alone: MergeResult | None = None


@dataclass
class CrmInputs:
    """The CRM records and flag history a merge reads: read once per cycle."""

    accounts: list[dict[str, Any]] = field(default_factory=list)
    deleted_accounts: list[str] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    surveys: list[dict[str, Any]] = field(default_factory=list)
    previous_flags: dict[str, SatisfactionFlag] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    #: Deleted customers a merge took -> the customer they were merged into.
    merged_into: dict[str, str] = field(default_factory=dict)

    def overlaid(self, overlay: Overlay) -> CrmInputs:
        """These records with a dry run's (or reconcile's) pulled ones over them."""
        accounts = [a for a in self.accounts if a["id"] not in overlay.deleted_accounts]
        accounts = list({**{a["id"]: a for a in accounts}, **overlay.accounts}.values())
        gone = overlay.deleted_other
        cases = list({**{c["id"]: c for c in self.cases}, **overlay.cases}.values())
        surveys = list({**{s["id"]: s for s in self.surveys}, **overlay.surveys}.values())
        return CrmInputs(
            accounts=accounts,
            deleted_accounts=sorted(set(self.deleted_accounts) | overlay.deleted_accounts),
            cases=[c for c in cases if c["id"] not in gone],
            surveys=[s for s in surveys if s["id"] not in gone],
            previous_flags=self.previous_flags,
            scores=self.scores,
            merged_into={**self.merged_into, **overlay.merged_into},
        )


class BatchedDerive:
    """Merge and plan ``projects`` (None: every project holding issues) in batches of about
    ``batch_issues`` issues (default :data:`BATCH_ISSUES`), whole projects each, streamed
    from the store (and, given an ``overlay``, with its records over the stored ones).

    Iterate to get one :class:`Derived` per batch (its ``marks`` are those of its projects
    only); :attr:`end` is then what remains to record. Customers and flags are built once,
    by the first batch's merge, and shared by the others. A parent or epic in a project of
    another batch is read from the store, so links are those of a merge of everything.

    ``crm_remote`` and ``jira_remote`` (reconcile) say what each side holds now; without
    them a plan judges by the ledger and the labels of the issues in the store.
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
        overlay: Overlay | None = None,
        crm_remote: Mapping[str, Mapping[str, Any]] | None = None,
        jira_remote: Mapping[str, RemoteJira] | None = None,
        planned: bool = True,
    ) -> None:
        self.store, self.rules, self.now = store, rules, now
        self.projects = projects
        self.jira_url, self.instance_url = jira_url, instance_url
        self.survey_window_days = survey_window_days
        self.form = form
        self.batch_issues = max(1, BATCH_ISSUES if batch_issues is None else batch_issues)
        self.overlay = overlay
        self.crm_remote, self.jira_remote = crm_remote, jira_remote
        #: False (the report): the batches' model only, no plan (an empty one).
        self.planned = planned
        self._end: DeriveEnd | None = None

    @property
    def end(self) -> DeriveEnd:
        """What to record after the batches (available once they are all iterated)."""
        if self._end is None:
            raise RuntimeError("the batches have not all been derived yet")
        return self._end

    def __iter__(self) -> Iterator[Derived]:
        store, rules, now, overlay = self.store, self.rules, self.now, self.overlay
        with store.read() as conn:
            # Read first: the records of every mark read here are visible to later reads.
            marks = repo.dirty_marks(conn)
            counts = repo.item_counts_by_project(conn)
            crm = crm_inputs(conn, rules, now, self.survey_window_days, self.form)
        pulled: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        if overlay is not None:
            crm = crm.overlaid(overlay)
            for key, issue in overlay.items.items():
                pulled[issue_project(issue)][key] = issue
            counts = {p: counts.get(p, 0) + len(pulled.get(p, ())) for p in {*counts, *pulled}}
        if crm.merged_into:  # the survivors name the ids merged into them
            crm.accounts = rows.name_merged(crm.accounts, crm.merged_into)
        keys = sorted(counts) if self.projects is None else sorted(set(self.projects))
        side: CrmSide | None = None
        covered: list[str] = []
        for batch in _batches(keys, counts, self.batch_issues):
            issues = self._issues(batch, pulled)
            result = self._merge(issues, crm, side)
            del issues
            if side is None:
                side, crm = CrmSide.of(result), CrmInputs()  # the raw CRM records are done
            covered.extend(batch)
            mine = set(batch)
            done = tuple(mark for mark in marks if mark.project_key in mine)
            the_plan = (
                plan_of(store, result, rules, self.crm_remote, self.jira_remote)
                if self.planned
                else Plan()
            )
            yield Derived(result, the_plan, tuple(batch), False, done)
            del result  # before the next batch is read: one batch in memory at a time
        alone = None
        if side is None:  # no project to derive: the flags still move with the CRM data
            alone = self._merge([], crm, None)
            side = CrmSide.of(alone)
        everything = self.projects is None
        taken = set(covered)
        rest = tuple(mark for mark in marks if everything and mark.project_key not in taken)
        self._end = DeriveEnd(side, tuple(covered), everything, rest, alone)

    def _issues(
        self, batch: list[str], pulled: Mapping[str, Mapping[str, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The raw issues of a batch's projects: stored, with the overlay's over them."""
        overlay = self.overlay
        with self.store.read() as conn:
            stored = repo.item_data(conn, batch)
        if overlay is None:
            return stored
        merged = {
            key: data
            for data in stored
            if (key := str(data.get("key"))) not in overlay.deleted_items
        }
        for project in batch:
            merged.update(pulled.get(project, {}))
        return list(merged.values())

    def _merge(
        self, issues: list[dict[str, Any]], crm: CrmInputs, side: CrmSide | None
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
        overlay = self.overlay
        if overlay is None:
            with self.store.read() as conn:
                return [record.data for record in repo.get_items(conn, keys)]
        wanted = [k for k in keys if k not in overlay.deleted_items]
        found = [overlay.items[k] for k in wanted if k in overlay.items]
        with self.store.read() as conn:
            stored = repo.get_items(conn, [k for k in wanted if k not in overlay.items])
            return found + [record.data for record in stored]


class PlanParts:
    """The plans of a derive's batches, joined into the one plan a merge of everything
    makes (each side in the order one plan lists it): what a dry run prints."""

    def __init__(self) -> None:
        self._crm: list[CrmWrite] = []
        self._jira: list[JiraWrite] = []
        self._crm_ledger: list[tuple[str, str]] = []
        self._jira_ledger: list[JiraLedger] = []
        self._stale: set[str] = set()
        self._crm_conflicts: list[Conflict] = []
        self._jira_conflicts: list[Conflict] = []

    def add(self, part: Plan) -> None:
        """Take one batch's plan."""
        self._crm.extend(part.crm)
        self._jira.extend(part.jira)
        self._crm_ledger.extend(part.crm_ledger)
        self._jira_ledger.extend(part.jira_ledger)
        self._stale.update(part.stale_crm)
        for conflict in part.conflicts:
            (self._crm_conflicts if conflict.side == "crm" else self._jira_conflicts).append(
                conflict
            )

    def plan(self) -> Plan:
        """The joined plan."""
        wanted = {w.external_id for w in self._crm} | {k for k, _ in self._crm_ledger}
        return Plan(
            crm=tuple(sorted(self._crm, key=lambda w: w.external_id)),
            jira=tuple(sorted(self._jira, key=lambda w: issue_sort_key(w.issue_key))),
            crm_ledger=tuple(sorted(self._crm_ledger, key=lambda entry: entry[0])),
            jira_ledger=tuple(
                sorted(self._jira_ledger, key=lambda entry: issue_sort_key(entry.issue_key))
            ),
            stale_crm=tuple(sorted(self._stale - wanted)),
            conflicts=(
                *sorted(self._crm_conflicts, key=lambda c: c.key),
                *sorted(self._jira_conflicts, key=lambda c: (issue_sort_key(c.key), c.what)),
            ),
        )


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


def crm_inputs(
    conn: Any, rules: Rules, now: datetime, survey_window_days: int, form: RecordForm
) -> CrmInputs:
    """The stored CRM records, flags and scores a merge reads (:mod:`sync.cycle.rows`)."""
    crm = CrmInputs()
    for customer in repo.iter_customers(conn, include_deleted=True):
        if customer.deleted:
            crm.deleted_accounts.append(customer.id)
            into = customer.data.get(repo.MERGED_INTO)
            if into:
                crm.merged_into[customer.id] = str(into)
        else:
            crm.accounts.append(rows.customer_input(customer, form))
    crm.cases = [rows.case_input(case) for case in repo.iter_cases(conn)]
    if rules.satisfaction.source == "survey":
        since = now - timedelta(days=survey_window_days)
        crm.surveys = [rows.survey_input(r) for r in repo.iter_surveys(conn, since=since)]
    crm.previous_flags = rows.previous_flags(repo.get_flags(conn))
    crm.scores = repo.latest_scores(conn, now.date())
    return crm


def plan_of(
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
    crm_ledger = rows.crm_ledger_of(crm_rows)
    jira_ledger = rows.jira_ledger_of(jira_rows)
    if jira_remote is None:
        jira_remote = trusting_the_ledger(remote_from_items(result.items), jira_ledger, aside)
    return plan(
        result,
        rules,
        crm_ledger=crm_ledger,
        jira_ledger=jira_ledger,
        crm_remote=crm_remote,
        jira_remote=jira_remote,
    )


def trusting_the_ledger(
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


def r_key(report: Any) -> str:
    """The external id of a report record: ``<PROJECT KEY>:<customer id>`` (SPEC section 6)."""
    return f"{report.project_key}:{report.customer_id}"
