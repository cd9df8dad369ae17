"""Reading both sides in full, page by page (reconcile's first step).

One read of each side: one Jira search of the whole scope, and one CRM changes call that
reads accounts, cases (surveys) and the report object's records together. Each page goes,
as it comes, into a *scratch store* (a temporary SQLite file the comparison derives from,
so the state store is not written without ``--apply``) and, with ``--apply``, into the
state store too, exactly as a pull stores it (its projects marked changed, so a crash
before they are derived leaves the next run to derive them). Nothing holds the scope:
what stays in memory is keys and ids, counts, and the report object's records (one per
linked pair, which the comparison looks up by external id).

After the read, what the store holds as live that the read did not find is gone remotely
(or, for issues, moved out of scope); a full read sees every live record, so this also
finds records purged from the CRM's recycle bin. Records the model cannot read are left
out (reported, never stored, never called deleted): the scratch store gets the state
store's copy of them, as the cycle would derive with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connectors.crm import (
    CASE,
    CUSTOMER,
    REPORT,
    SURVEY,
    ChangePage,
    CrmRecord,
    Kind,
    Read,
    RecordForm,
)
from mappings.rules import Rules
from mappings.validate import IssueCheck
from sync.config import Config
from sync.cycle import rows as row_of
from sync.cycle.engine import field_names
from sync.cycle.pull import PullProgress, store_crm_page
from sync.remote import Remotes, crm_form, crm_needs
from sync.store import Store, repo

#: Told of each record that could not be read: side, kind, record id, why.
Unreadable = Callable[[dict[str, str]], None]


@dataclass
class ReadBoth:
    """What one reconcile read, beyond the pages stored: counts, keys and ids, and what
    the store holds that the remotes no longer do."""

    counts: Counter[str] = field(default_factory=Counter)
    #: Jira keys read (readable ones).
    keys: set[str] = field(default_factory=set)
    #: ids of the records that could not be read (present remotely: not "deleted").
    unreadable: set[str] = field(default_factory=set)
    #: the report object's records, as the CRM sent them.
    reports: list[CrmRecord] = field(default_factory=list)
    #: report records by external id -> the CRM's record id.
    report_ids: dict[str, str] = field(default_factory=dict)
    #: store records gone from the remote: Jira keys, account ids (with their names).
    gone_items: set[str] = field(default_factory=set)
    gone_accounts: dict[str, str] = field(default_factory=dict)
    deleted_cases: set[str] = field(default_factory=set)
    deleted_surveys: set[str] = field(default_factory=set)
    #: accounts the CRM's read says were deleted.
    deleted_accounts: set[str] = field(default_factory=set)


class Pages:
    """Where the pages read go: the scratch store, and with ``apply`` the state store too
    (``still_mine`` is called before each write to it: the run lock is still ours)."""

    def __init__(
        self,
        store: Store,
        scratch: Store,
        now: datetime,
        *,
        apply: bool,
        still_mine: Callable[[], None],
    ) -> None:
        self.store, self.scratch, self.now = store, scratch, now
        self.apply, self.still_mine = apply, still_mine

    def _targets(self) -> list[Store]:
        if self.apply:
            self.still_mine()
            return [self.scratch, self.store]
        return [self.scratch]

    def issues(self, rows: list[repo.ItemRow]) -> None:
        """A page of issues (an older copy never replaces a newer one)."""
        for target in self._targets():
            with target.transaction() as tx:
                repo.upsert_items(tx, rows)
                if target is self.store:
                    repo.mark_dirty(tx, {row["project_key"] for row in rows}, at=self.now)

    def crm(
        self,
        kind: Kind,
        records: list[CrmRecord],
        deleted: list[str],
        merged_into: dict[str, str] | None = None,
    ) -> None:
        """A page of CRM records of ``kind``, the ids it says were deleted, and of those
        the customers a merge took (with the one each was merged into)."""
        for target in self._targets():
            with target.transaction() as tx:
                store_crm_page(tx, kind, records, deleted, self.now, merged_into)


def read_both(
    config: Config,
    store: Store,
    remotes: Remotes,
    rules: Rules,
    fields: list[str],
    pages: Pages,
    *,
    unreadable: Unreadable,
    progress: PullProgress | None,
) -> ReadBoth:
    """Every issue in scope (one search) and every CRM record the model and the report
    object need (one changes call), page by page into ``pages``; then what the store
    holds that they no longer do."""
    read = ReadBoth()
    tell = progress or (lambda what, count: None)
    issue_check = IssueCheck(rules.fields, field_names(config, rules.fields))

    def readable(side: str, kind: str, record_id: str, problem: str | None) -> bool:
        if problem is None:
            return True
        unreadable({"side": side, "kind": kind, "record": record_id, "reason": problem})
        read.unreadable.add(record_id)
        return False

    for issues in remotes.jira.pull_issues(fields, None, None):
        rows = [
            row_of.issue_row(issue)
            for issue in issues
            if readable("jira", "issue", str(issue["key"]), issue_check.problem(issue))
        ]
        pages.issues(rows)
        read.keys.update(row["key"] for row in rows)
        tell("jira_issues", len(read.keys))
    read.counts["jira_issues"] = len(read.keys)

    crm = remotes.crm
    needs = crm_needs(config)
    streams, kinds = crm.streams(needs), needs.pulled
    pulled = {streams[kind] for kind in kinds}
    live: dict[str, set[str]] = {CUSTOMER: set(), CASE: set(), SURVEY: set()}

    def take(page: ChangePage) -> None:
        stream = page.stream
        for record_id, why in page.unreadable:
            readable(crm.side, stream, record_id, why)
        records = page.live  # the connector set aside what the model cannot read
        read.counts[stream] += len(records)
        tell(stream, read.counts[stream])
        live.setdefault(page.kind, set()).update(r.id for r in records)
        live[page.kind].update(i for i, _why in page.unreadable)
        deleted = list(page.deleted_ids) if page.kind == CUSTOMER else []
        read.deleted_accounts.update(deleted)
        pages.crm(page.kind, records, deleted, page.merged_into)

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
    _gone_from_store(store, read, live[CUSTOMER], live[CASE], surveys, crm_form(config))
    return read


def _gone_from_store(
    store: Store,
    read: ReadBoth,
    live_accounts: set[str],
    live_cases: set[str],
    live_surveys: set[str] | None,
    form: RecordForm,
) -> None:
    """What the store holds as live that the full read did not find (records that could
    not be read are present remotely: never gone)."""
    present = read.keys | read.unreadable
    with store.read() as conn:
        read.gone_items = {key for key, _project in repo.iter_item_keys(conn) if key not in present}
        stored = repo.live_customer_ids(conn)
        gone = sorted(stored - live_accounts - read.unreadable)
        read.gone_accounts = {
            account_id: str(form.stored_customer(record.data).get("name") or "")
            for account_id, record in repo.get_customers(conn, gone).items()
        }
        read.deleted_cases = repo.live_case_ids(conn) - live_cases
        if live_surveys is not None:  # not read unless satisfaction comes from surveys
            read.deleted_surveys = repo.live_survey_ids(conn) - live_surveys


def store_gone(store: Store, read: ReadBoth, now: datetime) -> None:
    """``--apply``: mark in the state store what the read found gone, and the projects
    that shows in changed (those of the gone issues, and those linked to gone accounts)."""
    gone_customers = set(read.gone_accounts) | read.deleted_accounts
    with store.transaction() as tx:
        repo.mark_items_deleted(tx, read.gone_items, at=now)
        touched = {key.rsplit("-", 1)[0] for key in read.gone_items}
        touched.update(link.project_key for link in repo.get_links(tx, customer_ids=gone_customers))
        repo.mark_dirty(tx, touched, at=now)
        store_crm_page(tx, CUSTOMER, [], sorted(read.gone_accounts), now)
        store_crm_page(tx, CASE, [], sorted(read.deleted_cases), now)
        if read.deleted_surveys:
            store_crm_page(tx, SURVEY, [], sorted(read.deleted_surveys), now)


def fill_scratch(store: Store, scratch: Store, read: ReadBoth, now: datetime) -> None:
    """Give the scratch store what the derive reads besides the pages: the state store's
    copy of the records that could not be read, the deleted accounts (stored ones, gone
    ones, and those the read says were deleted), and the flags and latest scores the
    flags are judged against."""
    ids = read.unreadable
    with store.read() as conn:
        items = repo.get_items(conn, ids)
        accounts = list(repo.get_customers(conn, ids).values())
        cases = [case for case in repo.iter_cases(conn) if case.id in ids]
        surveys = [survey for survey in repo.iter_surveys(conn) if survey.id in ids]
        deleted = [a for a in repo.iter_customers(conn, include_deleted=True) if a.deleted]
        gone = list(repo.get_customers(conn, read.gone_accounts).values())
        flags = list(repo.get_flags(conn).values())
        scores = repo.latest_scores(conn, now.date())
    known = {account.id for account in deleted} | set(read.gone_accounts)
    placeholders = [
        repo.CustomerRecord(account_id, None, {"id": account_id}, True)
        for account_id in sorted(read.deleted_accounts - known)
    ]
    with scratch.transaction() as tx:
        repo.upsert_items(tx, [row_of.stored_item_row(record) for record in items])
        repo.upsert_customers(
            tx, row_of.stored_customer_rows([*accounts, *deleted, *gone, *placeholders])
        )
        repo.mark_customers_deleted(tx, [a.id for a in (*deleted, *gone, *placeholders)], at=now)
        repo.upsert_cases(
            tx,
            [
                {
                    "id": case.id,
                    "customer_id": case.customer_id,
                    "is_closed": case.is_closed,
                    "is_escalated": case.is_escalated,
                    "modstamp": None,
                }
                for case in cases
            ],
        )
        repo.upsert_surveys(
            tx,
            [
                {
                    "id": survey.id,
                    "customer_id": survey.customer_id,
                    "score": survey.score,
                    "responded_at": survey.responded_at,
                    "modstamp": None,
                }
                for survey in surveys
            ],
        )
        repo.put_flags(
            tx,
            [
                {
                    "customer_id": flag.customer_id,
                    "level": flag.level,
                    "since": flag.since,
                    "reasons": list(flag.reasons),
                }
                for flag in flags
            ],
        )
        # The latest score of each customer, on a day before today: what the flags read.
        day = now.date() - timedelta(days=1)
        repo.put_satisfaction(
            tx,
            [
                {"customer_id": c, "day": day, "score": s, "scale": None, "level": ""}
                for c, s in scores.items()
            ],
        )
