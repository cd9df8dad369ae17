"""Loading the report's model from the state store (no network) and choosing what it shows.

The model is rebuilt exactly as a sync cycle derives it (:class:`sync.cycle.derive.BatchedDerive`
over the stored records, with the Jira field ids from the cached field list), so the report
and the CRM record of a pair never disagree. It is derived batch by batch, as a cycle does:
each batch's pairs get their report lines (milestones, overdue and blocked items, burn-up)
while its work items are at hand, and only those lines are kept, so memory stays flat as
the store grows. History (progress snapshots, satisfaction per day) comes from the store
as well.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Literal, cast

from connectors.exceptions import ConfigError
from connectors.jira.fields import FieldCatalog
from mappings.dates import utc_date
from mappings.ids import IdForm, plain_id
from mappings.model import Customer, Link, ProgressReport, SatisfactionFlag, WorkItem
from mappings.report import (
    CustomerReport,
    PairReport,
    ScorePoint,
    SegmentReport,
    blocked_lines,
    burnup_history,
    burnup_series,
    customer_report,
    milestone_lines,
    overdue_lines,
    score_series,
    scores_by_customer,
    segment_reports,
)
from mappings.rollup import segment_rollups
from mappings.rules import Rules
from sync.config import Config
from sync.cycle.derive import BatchedDerive
from sync.report import ReportError
from sync.store import Store, repo

if TYPE_CHECKING:
    from connectors.jira import JiraConnector

__all__ = ["ReportDocument", "StoredModel", "build_report", "customer_document", "load_model"]

#: Run statuses whose time is the time of the data in the store.
_SYNCED = ("ok", "parked", "budget")
#: The cached Jira field list is used whatever its age: the report never refreshes it.
_ANY_AGE = timedelta(days=36500)


@dataclass(frozen=True)
class StoredModel:
    """The merged model as of a moment, as the report needs it, with the history the
    charts need: the customers, their flags, every linked pair's progress report and its
    report lines; not the work items."""

    customers: tuple[Customer, ...]
    flags: tuple[SatisfactionFlag, ...]
    reports: tuple[ProgressReport, ...]
    links: tuple[Link, ...]
    #: (customer id, project key) -> the pair's lines and burn-up (empty when loaded
    #: without them: the segment view).
    pairs: dict[tuple[str, str], PairReport]
    #: Project key -> counted (non-epic) items of the whole project.
    project_totals: dict[str, int]
    rules: Rules
    as_of: datetime
    last_synced: datetime | None
    #: customer id -> scores by day.
    scores: dict[str, tuple[ScorePoint, ...]]
    #: The CRM's canonical form of a customer id (``--customer`` may give another).
    customer_ids: IdForm = plain_id

    @property
    def today(self) -> date:
        """The report's UTC day (overdue is judged against it)."""
        return utc_date(self.as_of)

    @cached_property
    def customer_by_id(self) -> dict[str, Customer]:
        """The customers by id."""
        return {c.id: c for c in self.customers}

    @cached_property
    def links_by_customer(self) -> dict[str, list[Link]]:
        """Each customer's links, in the model's order."""
        found: dict[str, list[Link]] = defaultdict(list)
        for link in self.links:
            found[link.customer_id].append(link)
        return dict(found)

    @cached_property
    def flag_by_customer(self) -> dict[str, SatisfactionFlag]:
        """Each flagged customer's flag."""
        return {f.customer_id: f for f in self.flags}


@dataclass(frozen=True)
class ReportDocument:
    """Everything one rendered report shows."""

    kind: Literal["customers", "segments"]
    title: str
    scope: str
    as_of: datetime
    last_synced: datetime | None
    customers: tuple[CustomerReport, ...]
    segments: tuple[SegmentReport, ...]
    rules: Rules
    #: Customers known but not shown because nothing is linked to them (customer view).
    unlinked_customers: int = 0
    #: Project key -> counted items of the whole project: a pair counting fewer covers
    #: only part of it, and the report says so.
    project_totals: dict[str, int] = field(default_factory=dict)


class _CachedFields:
    """The Jira field lookups :func:`sync.remote.resolve_field_ids` needs, from the cached
    field list instead of a connection (one rule for resolving, and no network)."""

    def __init__(self, catalog: FieldCatalog) -> None:
        self._catalog = catalog

    def field_catalog(self) -> FieldCatalog:
        return self._catalog

    def resolve_field(self, ref: str, setting: str | None = None) -> str:
        return self._catalog.resolve(ref, setting)


def _last_synced(store: Store) -> datetime | None:
    with store.read() as conn:
        for run in repo.last_runs(conn, 50):
            if not run.dry_run and run.status in _SYNCED:
                return run.started_at
    return None


def load_model(
    store: Store, config: Config, now: datetime | None = None, *, pairs: bool = True
) -> StoredModel:
    """The model as of ``now`` (default: the start of the last sync, the time of the data),
    from the store alone; without ``pairs`` (the segment view) no pair's report lines are
    worked out. ReportError when nothing was synced yet."""
    from sync.remote import crm_form, resolve_field_ids

    with store.read() as conn:
        empty = repo.count_items(conn) == 0 and repo.count_customers(conn) == 0
        fields = repo.cache_get(conn, "jira:fields", datetime.now(UTC), _ANY_AGE)
    if empty:
        raise ReportError(
            "the state store has no synced data yet: run `jira-crm-sync run` first "
            "(it pulls Jira and the CRM into the store the report reads)"
        )
    last = _last_synced(store)
    as_of = now or last or datetime.now(UTC)
    if fields is None:
        raise ReportError(
            "the state store has no Jira field list: run `jira-crm-sync run` once to read it"
        )
    connector = cast("JiraConnector", _CachedFields(FieldCatalog(fields)))
    try:
        field_ids = resolve_field_ids(connector, config)
    except ConfigError as exc:
        raise ReportError(f"{exc}; then run `jira-crm-sync run` again") from None
    rules = config.mapping_rules(field_ids)
    form = crm_form(config)
    today = utc_date(as_of)
    snapshots: dict[tuple[str, str], list[tuple[date, int, int]]] = defaultdict(list)
    with store.read() as conn:
        for row in repo.progress_history(conn):
            if row.day <= today:
                snapshots[(row.customer_id, row.project_key)].append((row.day, row.done, row.total))
        history = [
            (row.customer_id, row.day, row.score)
            for row in repo.satisfaction_history_of(conn)
            if row.day <= today
        ]
    batches = BatchedDerive(
        store,
        rules,
        None,
        as_of,
        jira_url=config.jira.url,
        instance_url=config.crm.instance_url,
        survey_window_days=config.satisfaction.survey.window_days,
        form=form,
        planned=False,
    )
    reports: list[ProgressReport] = []
    links: list[Link] = []
    lines: dict[tuple[str, str], PairReport] = {}
    totals: dict[str, int] = {}
    for batch in batches:
        result = batch.result
        for project in result.projects:
            totals[project.key] = sum(not item.is_epic for item in project.items)
        by_pair = {(r.customer_id, r.project_key): r for r in result.reports}
        for link in result.links.links if pairs else ():
            pair = (link.customer_id, link.project_key)
            lines[pair] = _pair(
                result.links.items_of(link),
                by_pair[pair],
                snapshots.get(pair, []),
                rules,
                today,
                totals.get(link.project_key),
            )
        reports.extend(result.reports)
        links.extend(result.links.links)
    crm = batches.end.crm
    return StoredModel(
        customers=crm.customers,
        flags=crm.flags,
        reports=tuple(reports),
        links=tuple(links),
        pairs=lines,
        project_totals=totals,
        rules=rules,
        as_of=as_of,
        last_synced=last,
        scores=scores_by_customer(history),
        customer_ids=form.customer_id,
    )


# -- choosing and assembling -------------------------------------------------------------


def _pair(
    items: Sequence[WorkItem],
    report: ProgressReport,
    snapshots: Sequence[tuple[date, int, int]],
    rules: Rules,
    today: date,
    project_total: int | None,
) -> PairReport:
    stored = [s for s in snapshots if s[0] < today]
    # The chart ends at the numbers the report shows (today's snapshot, as of the report);
    # before the first snapshot it is rebuilt from creation and done dates, so a first
    # report already has a history.
    first = min((s[0] for s in stored), default=today)
    series = burnup_series(
        [*stored, (today, report.done, report.total)], burnup_history(items, first)
    )
    return PairReport(
        progress=report,
        milestones=milestone_lines(items, today),
        overdue=overdue_lines(items, today),
        blocked=blocked_lines(items, rules.progress, today),
        burnup=series,
        project_total=project_total,
    )


def _scores(model: StoredModel, customer: Customer) -> tuple[ScorePoint, ...]:
    """Stored scores, ending with the current one on the day it was measured."""
    return score_series(model.scores.get(customer.id, ()), customer.satisfaction, model.today)


def customer_document(
    model: StoredModel, customer_id: str, project: str | None = None
) -> CustomerReport:
    """The report of one customer (its pairs, optionally only ``project``'s)."""
    customer = model.customer_by_id[customer_id]
    pairs = [
        model.pairs[(link.customer_id, link.project_key)]
        for link in model.links_by_customer.get(customer_id, ())
        if project is None or link.project_key == project
    ]
    flag = model.flag_by_customer.get(customer_id)
    return customer_report(
        customer,
        flag,
        _scores(model, customer),
        pairs,
        risk_limit=max(5, model.rules.progress.top_risks),
    )


def _customer_id(model: StoredModel, value: str) -> str:
    known = model.customer_by_id
    wanted = model.customer_ids(value.strip())
    if wanted is None or wanted not in known:
        raise ReportError(
            f"no customer with id {value!r} in the state store; "
            "`jira-crm-sync report --by segment` lists every customer with its id"
        )
    return wanted


def _project_key(model: StoredModel, value: str) -> str:
    key = value.strip().upper()
    known = set(model.project_totals) | {link.project_key for link in model.links}
    if key not in known:
        listed = ", ".join(sorted(known)[:20]) or "none yet"
        raise ReportError(
            f"no Jira project {value!r} in the state store (projects: {listed}); "
            "check the key, or add it to [jira] projects and run `jira-crm-sync run`"
        )
    return key


def build_report(
    store: Store,
    config: Config,
    *,
    customer: str | None = None,
    project: str | None = None,
    by: Literal["segment"] | None = None,
    now: datetime | None = None,
) -> ReportDocument:
    """What ``report`` shows for these options (see :func:`sync.report.render_report`)."""
    if by not in (None, "segment"):
        raise ReportError(f"--by {by} is not a report view; use --by segment")
    model = load_model(store, config, now, pairs=by != "segment")
    return document_of(model, customer=customer, project=project, by=by)


def document_of(
    model: StoredModel,
    *,
    customer: str | None = None,
    project: str | None = None,
    by: Literal["segment"] | None = None,
) -> ReportDocument:
    """The document for some options from a loaded model."""
    customer_id = _customer_id(model, customer) if customer is not None else None
    project_key = _project_key(model, project) if project is not None else None
    linked = [
        link
        for link in model.links
        if (project_key is None or link.project_key == project_key)
        and (customer_id is None or link.customer_id == customer_id)
    ]
    by_id = model.customer_by_id
    totals = model.project_totals
    scope_parts = []
    if customer_id is not None:
        scope_parts.append(f"customer {by_id[customer_id].name} ({customer_id})")
    if project_key is not None:
        scope_parts.append(f"project {project_key}")
    if by == "segment":
        if customer_id is not None:
            chosen = [by_id[customer_id]]
        elif project_key is not None:
            chosen = [by_id[i] for i in dict.fromkeys(link.customer_id for link in linked)]
        else:
            chosen = list(model.customers)
        ids = {c.id for c in chosen}
        flags = [f for f in model.flags if f.customer_id in ids]
        reports = [
            r
            for r in model.reports
            if r.customer_id in ids and (project_key is None or r.project_key == project_key)
        ]
        segments = segment_reports(
            segment_rollups(chosen, flags, reports),
            chosen,
            flags,
            reports,
            model.scores,
            model.rules.satisfaction.scale,
        )
        return ReportDocument(
            kind="segments",
            title="Customer groups: satisfaction and project health",
            scope=", ".join(scope_parts) or "every customer",
            as_of=model.as_of,
            last_synced=model.last_synced,
            customers=(),
            segments=segments,
            rules=model.rules,
            project_totals=totals,
        )
    if customer_id is not None:
        chosen_ids = [customer_id]
    else:
        chosen_ids = list(dict.fromkeys(link.customer_id for link in linked))
    customers = tuple(
        customer_document(model, cid, project_key)
        for cid in sorted(chosen_ids, key=lambda i: (by_id[i].name.casefold(), i))
    )
    title = "Progress report"
    if customer_id is not None:
        title = f"Progress report: {by_id[customer_id].name}"
    elif project_key is not None:
        title = f"Progress report: {project_key}"
    unlinked = 0 if customer_id or project_key else len(model.customers) - len(customers)
    return ReportDocument(
        kind="customers",
        title=title,
        scope=", ".join(scope_parts) or "every customer with a linked Jira project",
        as_of=model.as_of,
        last_synced=model.last_synced,
        customers=customers,
        segments=(),
        rules=model.rules,
        unlinked_customers=unlinked,
        project_totals=totals,
    )
