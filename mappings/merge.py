"""The whole mapping step: raw records in, unified model out (:func:`merge`), and the plan
of writes that follows from it (:func:`plan`). Pure: the as-of time, previous flags and
scores, ledgers and remote state are all parameters."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

from mappings.desired import desired_crm, desired_jira
from mappings.ids import IdForm, plain_id
from mappings.linking import CustomerIndex, LinkResult, link_items
from mappings.model import (
    Customer,
    ProgressReport,
    Project,
    SatisfactionFlag,
    SegmentRollup,
    WorkItem,
)
from mappings.normalise_crm import build_customers
from mappings.normalise_jira import canonical_order, index_issues
from mappings.plan import CommentTexts, diff_crm, diff_jira
from mappings.progress import for_customer, progress_report
from mappings.rollup import SegmentCounts
from mappings.rules import Rules
from mappings.satisfaction import satisfaction_flags
from mappings.writes import JiraLedger, Plan, RemoteJira

__all__ = ["CrmSide", "MergeResult", "build_projects", "merge", "plan"]

_is_epic = attrgetter("is_epic")

#: Raw Jira issues by key, for keys outside the issues merged (see ``merge``'s ``ancestors``).
AncestorLookup = Callable[[Collection[str]], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The unified model of one run."""

    as_of: datetime
    customers: tuple[Customer, ...]
    items: tuple[WorkItem, ...]
    projects: tuple[Project, ...]
    links: LinkResult
    reports: tuple[ProgressReport, ...]
    flags: tuple[SatisfactionFlag, ...]
    rollups: tuple[SegmentRollup, ...]
    #: accounts deleted in the CRM (links naming them are reported, not made).
    deleted_account_ids: tuple[str, ...] = ()
    #: the customers as linking looked them up (:class:`CrmSide` hands it to later batches).
    customer_index: CustomerIndex | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CrmSide:
    """Customers and their flags: they depend on the CRM records only, so a merge done in
    batches of projects builds them once (the first batch) and shares them with the rest."""

    customers: tuple[Customer, ...]
    flags: tuple[SatisfactionFlag, ...]
    deleted_account_ids: tuple[str, ...]
    #: the rollups' customer, flag and case counts (each batch adds its reports).
    segments: SegmentCounts
    #: the customers as linking looks them up, built once (None: each merge builds it).
    index: CustomerIndex | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, result: MergeResult) -> CrmSide:
        """The CRM side of a merge result."""
        segments = SegmentCounts.of(result.customers, result.flags)
        return cls(
            result.customers,
            result.flags,
            result.deleted_account_ids,
            segments,
            result.customer_index,
        )


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration of a merge or plan.

    Both build hundreds of thousands of acyclic values (frozen dataclasses, tuples); the
    collector finds nothing among them but, with the raw records alive, each of its full
    passes walks millions of objects: measured, it took a third of the merge time.
    Reference counting still frees everything; the previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_projects(items: Iterable[WorkItem], jira_url: str = "") -> tuple[Project, ...]:
    """Projects with their items, sorted by key (items keep their order)."""
    grouped: dict[str, list[WorkItem]] = defaultdict(list)
    for item in items:
        grouped[item.project_key].append(item)
    base = jira_url.rstrip("/")
    return tuple(
        Project(
            key=key,
            name=grouped[key][0].project_name,
            url=f"{base}/browse/{key}" if base else "",
            items=tuple(grouped[key]),
        )
        for key in sorted(grouped)
    )


def merge(
    issues: Iterable[Mapping[str, Any]],
    accounts: Iterable[Mapping[str, Any]] = (),
    cases: Iterable[Mapping[str, Any]] = (),
    surveys: Iterable[Mapping[str, Any]] = (),
    *,
    rules: Rules,
    as_of: datetime,
    deleted_account_ids: Iterable[str] = (),
    previous_flags: Mapping[str, SatisfactionFlag] | None = None,
    previous_scores: Mapping[str, float] | None = None,
    jira_url: str = "",
    instance_url: str = "",
    crm: CrmSide | None = None,
    ancestors: AncestorLookup | None = None,
    customer_ids: IdForm = plain_id,
) -> MergeResult:
    """Normalise, link, and derive progress, flags and rollups from raw vendor records.

    ``crm`` (a previous batch's :meth:`CrmSide.of`) replaces the CRM records and flag
    history: a merge of a batch of projects then builds no customer again. ``ancestors``
    gives raw issues by key for parents and epics outside ``issues`` (another project, when
    merging in batches): items inherit their link value through them as through the
    issues merged, but they are not merged themselves. Rollups count ``issues``' reports.
    ``accounts``, ``cases`` and ``surveys`` are CRM-neutral records (see
    :mod:`mappings.normalise_crm`); ``customer_ids`` is how the CRM writes a customer id in
    its canonical form (see :mod:`mappings.ids`).
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    with _cyclic_gc_paused():
        return _merge(
            issues,
            accounts,
            cases,
            surveys,
            rules=rules,
            as_of=as_of,
            deleted_account_ids=deleted_account_ids,
            previous_flags=previous_flags,
            previous_scores=previous_scores,
            jira_url=jira_url,
            instance_url=instance_url,
            crm=crm,
            ancestors=ancestors,
            customer_ids=customer_ids,
        )


def _merge(
    issues: Iterable[Mapping[str, Any]],
    accounts: Iterable[Mapping[str, Any]],
    cases: Iterable[Mapping[str, Any]],
    surveys: Iterable[Mapping[str, Any]],
    *,
    rules: Rules,
    as_of: datetime,
    deleted_account_ids: Iterable[str],
    previous_flags: Mapping[str, SatisfactionFlag] | None,
    previous_scores: Mapping[str, float] | None,
    jira_url: str,
    instance_url: str,
    crm: CrmSide | None,
    ancestors: AncestorLookup | None,
    customer_ids: IdForm,
) -> MergeResult:
    index = index_issues(issues, rules.fields)
    items = canonical_order(index.values())
    if crm is None:
        deleted = tuple(deleted_account_ids)
        customers = build_customers(
            accounts,
            cases,
            surveys,
            rules=rules.satisfaction,
            as_of=as_of,
            instance_url=instance_url,
            deleted_ids=deleted,
            ids=customer_ids,
        )
        flags = satisfaction_flags(
            customers, rules.satisfaction, as_of, previous_flags, previous_scores
        )
        segments = SegmentCounts.of(customers, flags)
        customer_index = None
    else:
        customers, flags, deleted = crm.customers, crm.flags, crm.deleted_account_ids
        segments, customer_index = crm.segments, crm.index
    if customer_index is None or not customer_index.serves(rules.link, customer_ids):
        customer_index = CustomerIndex(customers, rules.link, deleted, customer_ids)
    lookup: Mapping[str, WorkItem] = index
    if ancestors is not None and rules.link.inherit_from_epic:
        lookup = _with_ancestors(index, items, ancestors, rules)
    links = link_items(
        items,
        customers,
        rules.link,
        deleted,
        index=lookup,
        ids=customer_ids,
        accounts=customer_index,
    )
    by_customer = customer_index.by_id
    projects = build_projects(items, jira_url)
    project_names = {project.key: project.name for project in projects}
    # Counted items of each whole project: a pair counting fewer says so in its summary.
    project_totals = {p.key: len(p.items) - sum(map(_is_epic, p.items)) for p in projects}
    # A project linked to several customers (a project-level rule) counts the same items
    # for each: its report is worked out once and copied for the others.
    shared: dict[tuple[str, tuple[int, ...]], ProgressReport] = {}
    reports: list[ProgressReport] = []
    for link in links.links:
        customer, pair_items = by_customer[link.customer_id], links.items_of(link)
        project_total = project_totals.get(link.project_key)
        same = (link.project_key, tuple(map(id, pair_items)))
        report = shared.get(same)
        if report is None:
            report = shared[same] = progress_report(
                customer,
                link.project_key,
                project_names.get(link.project_key, link.project_key),
                pair_items,
                rules.progress,
                as_of,
                jira_url,
                project_total=project_total,
            )
        else:
            report = for_customer(report, customer, project_total)
        reports.append(report)
    return MergeResult(
        as_of=as_of,
        customers=customers,
        items=items,
        projects=projects,
        links=links,
        reports=tuple(reports),
        flags=flags,
        rollups=segments.rollups(reports),
        deleted_account_ids=deleted,
        customer_index=customer_index,
    )


def _with_ancestors(
    index: Mapping[str, WorkItem],
    items: Iterable[WorkItem],
    ancestors: AncestorLookup,
    rules: Rules,
) -> Mapping[str, WorkItem]:
    """``index`` plus the parents and epics, up the chain, of the items that have no link
    value of their own and whose ancestors are not in ``index``."""
    found: dict[str, WorkItem] = {}
    asked: set[str] = set()
    wanting = [item for item in items if item.link_value is None]
    while wanting:
        missing = {
            key
            for item in wanting
            for key in (item.parent_key, item.epic_key)
            if key is not None and key not in index and key not in asked
        }
        if not missing:
            break
        asked |= missing
        fetched = index_issues(ancestors(sorted(missing)), rules.fields)
        found.update(fetched)
        wanting = [item for item in fetched.values() if item.link_value is None]
    return {**index, **found} if found else index


def plan(
    result: MergeResult,
    rules: Rules,
    *,
    crm_ledger: Mapping[str, str] | None = None,
    jira_ledger: Mapping[str, JiraLedger] | None = None,
    crm_remote: Mapping[str, Mapping[str, Any]] | None = None,
    jira_remote: Mapping[str, RemoteJira] | None = None,
) -> Plan:
    """The writes that bring both sides to what ``result`` implies, and nothing else.

    Ledgers say what was last written; ``*_remote`` (optional, e.g. for reconcile, or the
    labels of the issues just pulled) say what each side holds now.
    """
    with _cyclic_gc_paused():
        return _plan(result, rules, crm_ledger, jira_ledger, crm_remote, jira_remote)


def _plan(
    result: MergeResult,
    rules: Rules,
    crm_ledger: Mapping[str, str] | None,
    jira_ledger: Mapping[str, JiraLedger] | None,
    crm_remote: Mapping[str, Mapping[str, Any]] | None,
    jira_remote: Mapping[str, RemoteJira] | None,
) -> Plan:
    crm, crm_ledger_only, stale, crm_conflicts = diff_crm(
        desired_crm(result.reports, rules.crm_push),
        crm_ledger or {},
        rules.crm_push,
        crm_remote,
    )
    flags = {flag.customer_id: flag for flag in result.flags}
    desired = desired_jira(
        result.items, result.links.by_item, flags, rules.jira_push, rules.fields.flag_field
    )
    comments = CommentTexts(flags, {c.id: c for c in result.customers})
    jira, jira_ledger_only, jira_conflicts = diff_jira(
        desired,
        jira_ledger or {},
        rules.jira_push,
        rules.fields.flag_field,
        comments,
        jira_remote,
    )
    return Plan(
        crm=crm,
        jira=jira,
        crm_ledger=crm_ledger_only,
        jira_ledger=jira_ledger_only,
        stale_crm=stale,
        conflicts=crm_conflicts + jira_conflicts,
    )


def remote_from_items(items: Iterable[WorkItem]) -> dict[str, RemoteJira]:
    """Remote Jira state known from the issues just pulled: their labels. The flag field and
    the comments are not known from them, and are judged by the ledger."""
    return {
        item.key: RemoteJira(item.key, frozenset(item.labels), field_known=False) for item in items
    }
