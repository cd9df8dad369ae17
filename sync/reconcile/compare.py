"""Comparing, batch by batch: the store (ledger), the remotes (what was read) and what
they should hold (reconcile's second step).

The scratch store the read filled is derived through the cycle's own batches
(:class:`~sync.cycle.derive.BatchedDerive`: whole projects, a bounded number of issues each),
and each batch is planned again *with what the remotes hold*
(:func:`~sync.cycle.derive.plan_of`): the plan's writes are the drift, and its ownership
and policy rules decide what counts (a label a person added is not ours to judge; with
``[push.jira] policy = "respect"`` a value a person changed is a conflict, not drift).

Flag comments: one search for our marker text finds the issues whose comments carry a flag
marker (whatever the ledger says: a new or lost state store has no memory of them), and
only those issues' comments are read, batch by batch, a few in flight (each on its own
client: :mod:`connectors.jira.lanes`). A flag comment repeating its
customer's previous level is a duplicate, named by comment id.

Each batch's findings go to the report as they are found (it keeps counts and the first
entries); what is held across batches is keys and ids, the project and customer names
(for suggested links), and the report object's records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from connectors.crm import CrmRecord, RecordForm
from connectors.jira import CommentInfo, JiraConnector
from connectors.jira.lanes import Lanes
from mappings.desired import VOLATILE_FIELDS
from mappings.drift import (
    Duplicate,
    crm_drift,
    duplicate_flag_comments,
    duplicate_reports,
    jira_drift,
    redundant_flag_comments,
    remote_jira,
)
from mappings.linking import LinkProblem
from mappings.merge import MergeResult
from mappings.model import Customer
from mappings.rules import Rules
from mappings.similarity import NameIndex
from mappings.text import MARKER_PHRASE, parse_marker
from mappings.writes import CrmWrite, RemoteJira
from sync.config import Config
from sync.cycle.derive import BatchedDerive, Derived, DeriveEnd, plan_of, r_key
from sync.cycle.engine import link_problem_dict
from sync.cycle.rows import LEDGER_FIELD
from sync.reconcile.read import ReadBoth
from sync.reconcile.report import ReconcileReport
from sync.remote import crm_form
from sync.store import Store, repo


@dataclass
class Compared:
    """What the comparison leaves for ``--apply``."""

    #: per issue, the redundant flag comments the integration user posted.
    redundant: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: what remains to record after the batches (None: not derived).
    end: DeriveEnd | None = None


class Findings:
    """The report's sections, filled batch by batch."""

    def __init__(
        self, report: ReconcileReport, rules: Rules, policy: str, crm_remote: Mapping[str, Any]
    ) -> None:
        self.report, self.rules, self.policy = report, rules, policy
        self.crm_remote = crm_remote
        self.volatile = frozenset(c for name, c in rules.crm_push.fields if name in VOLATILE_FIELDS)
        self.wanted: set[str] = set()
        self.project_names: dict[str, str] = {}
        self.customers: dict[str, str] | None = None
        self.by_customer: NameIndex | None = None
        self.unlinked_customers: set[str] | None = None
        self.table_problems: set[LinkProblem] = set()

    def reports(self, records: Iterable[CrmRecord], form: RecordForm) -> None:
        """Report records the CRM holds more than once."""
        fields = dict(self.rules.crm_push.fields)
        for duplicate in duplicate_reports(
            [(r.id, r.data) for r in records],
            self.rules.crm_push.external_id_field,
            fields.get("account"),
            fields.get("project_key"),
            form.customer_id,
        ):
            self.report.add("duplicates", duplicate)

    def batch(
        self, derived: Derived, jira_remote: Mapping[str, RemoteJira], comments: list[Duplicate]
    ) -> None:
        """One batch: its drift, conflicts, flag comment duplicates, unlinked projects and
        link problems; what it links and wants, for the end."""
        report, result, plan = self.report, derived.result, derived.plan
        drift = [
            *crm_drift(plan.crm, self.crm_remote, self.volatile),
            *jira_drift(plan.jira, jira_remote),
        ]
        for found in drift:
            report.add("drift", found)
        report.drifted_records += len({(d.side, d.record) for d in drift})
        for conflict in plan.conflicts:
            policy = self.policy if conflict.side == "jira" else "enforce"
            report.add("conflicts", {**conflict.as_dict(), "policy": policy})
        for duplicate in comments:
            report.add("duplicates", duplicate)
        if self.customers is None:  # every batch shares the customers of the first
            self.customers = {c.id: c.name for c in result.customers}
            self.by_customer = _customer_index(result.customers)
        names = {project.key: project.name for project in result.projects}
        self.project_names.update(names)
        assert self.by_customer is not None
        for key in result.links.unlinked_projects:
            name = names.get(key, key)
            ranked = self.by_customer.rank([key, names.get(key, "")])
            report.add(
                "unlinked_projects",
                {"key": key, "name": name, "suggestions": [s.as_dict() for s in ranked]},
            )
        unlinked = set(result.links.unlinked_customers)
        if self.unlinked_customers is None:
            self.unlinked_customers = unlinked
        else:  # unlinked in every batch: no project links it
            self.unlinked_customers &= unlinked
        for problem in result.links.problems:
            if problem.item_key is None:  # [link.static] problems: every batch repeats them
                if problem in self.table_problems:
                    continue
                self.table_problems.add(problem)
            report.add("link_problems", link_problem_dict(problem))
        self.wanted.update(r_key(r) for r in result.reports)

    def finish(self, store: Store, read: ReadBoth) -> None:
        """After every batch: unlinked customers (ranked against every project), and the
        records gone remotely or left without a pair."""
        report = self.report
        customers = self.customers or {}
        by_project = NameIndex((key, [key, name]) for key, name in self.project_names.items())
        for cid in sorted(self.unlinked_customers or ()):
            ranked = by_project.rank([customers.get(cid, "")])
            report.add(
                "unlinked_customers",
                {
                    "id": cid,
                    "name": customers.get(cid, cid),
                    "suggestions": [s.as_dict() for s in ranked],
                },
            )
        for entry in deleted(store, read, self.crm_remote, self.wanted):
            report.add("deleted", entry)


def _customer_index(customers: Iterable[Customer]) -> NameIndex:
    return NameIndex((customer.id, [customer.name]) for customer in customers)


def deleted(
    store: Store, read: ReadBoth, crm_remote: Mapping[str, Any], wanted: set[str]
) -> Iterable[dict[str, Any]]:
    """Records the store or the ledger knows that are gone remotely, and report records
    the CRM holds for pairs that no longer exist (reported, not deleted)."""
    with store.read() as conn:
        in_ledger = {
            key for key in repo.iter_ledger_keys(conn, "jira", LEDGER_FIELD) if key not in read.keys
        }
        crm_ledger = set(repo.iter_ledger_keys(conn, "crm", LEDGER_FIELD))
    for key in sorted(read.gone_items | in_ledger):
        yield {
            "kind": "jira_issue",
            "key": key,
            "in_store": key in read.gone_items,
            "in_ledger": key in in_ledger,
        }
    for account_id, name in sorted(read.gone_accounts.items()):
        yield {"kind": "account", "key": account_id, "name": name, "in_store": True}
    for key in sorted((set(crm_remote) | crm_ledger) - wanted):
        yield {
            "kind": "report_record",
            "key": key,
            "in_crm": key in crm_remote,
            "in_ledger": key in crm_ledger,
            "id": read.report_ids.get(key) or None,
        }


class CommentReader(Protocol):
    """What the comparison asks Jira: the comments of one issue (the Jira connector)."""

    def comment_infos(self, key: str) -> Iterable[CommentInfo]:
        """The comments of ``key``, oldest first."""


class JiraComments:
    """What each issue of a batch holds of ours, reading the comments only of the
    ``marked`` issues (those the one marker search found), a batch's reads up to
    :data:`~connectors.jira.lanes.WIDTH` in flight when ``lanes`` are given; ``me`` is
    the integration user, whose redundant flag comments ``--apply`` deletes."""

    def __init__(
        self,
        reader: CommentReader,
        read: ReadBoth,
        field_id: str | None,
        *,
        marked: set[str],
        me: str,
        lanes: Lanes | None = None,
    ) -> None:
        self.reader, self.read, self.field_id = reader, read, field_id
        self.marked, self.me, self.lanes = marked & read.keys, me, lanes

    @classmethod
    @contextmanager
    def search(
        cls, jira: JiraConnector, read: ReadBoth, field_id: str | None
    ) -> Iterator[JiraComments]:
        """One search for our marker text says which issues carry flag markers; the
        others are known to carry none. The lanes close when the block ends."""
        marked = jira.keys_with_comment_text(MARKER_PHRASE)
        with Lanes(jira) as lanes:
            yield cls(jira, read, field_id, marked=marked, me=jira.connect().user, lanes=lanes)

    def _comments(self, keys: list[str]) -> dict[str, list[CommentInfo]]:
        if self.lanes is None:
            return {key: list(self.reader.comment_infos(key)) for key in keys}
        return dict(zip(keys, self.lanes.map(_comment_infos, keys), strict=True))

    def batch(
        self, issues: Iterable[Mapping[str, Any]], redundant: dict[str, tuple[str, ...]]
    ) -> tuple[dict[str, RemoteJira], list[Duplicate]]:
        """The remote state of ``issues`` (those read: a stored copy of an unreadable one
        is not what Jira holds), their duplicate flag comments, and (into ``redundant``)
        the ids of the redundant ones the integration user posted."""
        issues = [issue for issue in issues if str(issue["key"]) in self.read.keys]
        read = self._comments([str(i["key"]) for i in issues if str(i["key"]) in self.marked])
        self.read.counts["jira_comment_checks"] += len(read)
        remote: dict[str, RemoteJira] = {}
        duplicates: list[Duplicate] = []
        for issue in issues:
            key = str(issue["key"])
            bodies: list[str] = []
            if key in read:
                comments = [c for c in read[key] if parse_marker(c.body)]
                pairs = [(c.id, c.body) for c in comments]
                duplicates.extend(duplicate_flag_comments(key, pairs))
                ours = {c.id for c in comments if c.author in ("", self.me)}  # "": not said
                mine = tuple(i for i in redundant_flag_comments(pairs) if i in ours)
                if mine:
                    redundant[key] = mine
                bodies = [c.body for c in comments]
            remote[key] = remote_jira(issue, self.field_id, bodies)
        return remote, duplicates


def _comment_infos(jira: JiraConnector, key: str) -> list[CommentInfo]:
    return list(jira.comment_infos(key))


@dataclass(frozen=True)
class Derivation:
    """What a derive needs besides the rules: the sites' URLs, the survey window and the
    [push.jira] policy (conflicts name it)."""

    jira_url: str
    instance_url: str
    survey_window_days: int
    policy: str
    #: how the CRM's records read back from the store (its connector's id form).
    form: RecordForm
    #: the report object is the customer record itself: a customer holds one report, its
    #: main project's (:class:`connectors.crm.OneReportPerCustomer`).
    one_report_per_customer: bool = False

    @classmethod
    def of(
        cls, config: Config, instance_url: str, *, one_report_per_customer: bool = False
    ) -> Derivation:
        """From the config and the CRM's instance URL."""
        return cls(
            config.jira.url,
            instance_url,
            config.satisfaction.survey.window_days,
            config.push.jira.policy,
            crm_form(config),
            one_report_per_customer,
        )


def main_reports_only(writes: Iterable[CrmWrite], linked: Iterable[str]) -> tuple[CrmWrite, ...]:
    """Where a customer holds one report (its main project's: the lowest project key it
    is linked to), the planned writes of its other projects are no drift: only the main
    one's is kept. ``linked``: the report keys of every linked pair known, ``<PROJECT
    KEY>:<customer id>`` (SPEC section 6)."""
    main: dict[str, str] = {}
    for key in linked:
        project, _, customer = key.partition(":")
        if customer:
            main[customer] = min(main.get(customer, project), project)
    kept = []
    for write in writes:
        project, _, customer = write.external_id.partition(":")
        if not customer or main.get(customer, project) >= project:
            kept.append(write)
    return tuple(kept)


def _linked_pairs(store: Store, result: MergeResult) -> list[str]:
    """The batch's linked pairs and the stored links of its customers (their projects in
    other batches), as report keys."""
    pairs = [r_key(r) for r in result.reports]
    customers = {r.customer_id for r in result.reports}
    with store.read() as conn:
        pairs += [
            f"{link.project_key}:{link.customer_id}"
            for link in repo.get_links(conn, customer_ids=customers)
        ]
    return pairs


def compare(
    store: Store,
    scratch: Store,
    rules: Rules,
    read: ReadBoth,
    report: ReconcileReport,
    now: datetime,
    *,
    derivation: Derivation,
    comments: JiraComments,
    on_batch: Callable[[Derived], None] | None = None,
    batch_issues: int | None = None,
) -> Compared:
    """Derive ``scratch`` (what was read) in the cycle's batches (``batch_issues`` issues
    at a time, the cycle's default when None), plan each against the remotes and the
    ledger of ``store``, and add the findings to ``report``; ``on_batch`` (``--apply``)
    is given each batch, planned so."""
    ext = rules.crm_push.external_id_field
    crm_remote = {str(r.data[ext]): r.data for r in read.reports if r.data.get(ext)}
    read.report_ids = {str(r.data[ext]): r.id for r in read.reports if r.data.get(ext)}
    findings = Findings(report, rules, derivation.policy, crm_remote)
    findings.reports(read.reports, derivation.form)
    compared = Compared()
    batches = BatchedDerive(
        scratch,
        rules,
        None,
        now,
        jira_url=derivation.jira_url,
        instance_url=derivation.instance_url,
        survey_window_days=derivation.survey_window_days,
        form=derivation.form,
        batch_issues=batch_issues,
        planned=False,  # planned below, against the remotes and the state store's ledger
    )
    for batch in batches:
        with scratch.read() as conn:
            issues = (record.data for record in repo.iter_items(conn, batch.projects))
            jira_remote, duplicates = comments.batch(issues, compared.redundant)
        result = batch.result
        theirs = {
            key: crm_remote[key] for key in (r_key(r) for r in result.reports) if key in crm_remote
        }
        plan = plan_of(store, result, rules, crm_remote=theirs, jira_remote=jira_remote)
        if derivation.one_report_per_customer:
            linked = _linked_pairs(store, result)
            plan = replace(plan, crm=main_reports_only(plan.crm, linked))
        derived = Derived(result, plan, batch.projects, False, ())
        del batch
        findings.batch(derived, jira_remote, duplicates)
        if on_batch is not None:
            on_batch(derived)
        del derived, jira_remote
    compared.end = batches.end
    findings.finish(store, read)
    return compared
