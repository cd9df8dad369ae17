"""The pull phase: what changed on each side since the cursors, into the store.

Each page commits with the records it holds; a cursor advances only in the transaction
that stores the last records it covers. A crash mid-pull therefore re-reads from the old
cursor, and storing a record twice is harmless (an older version never overwrites a
newer one). In a dry run the pages go to an in-memory :class:`Overlay` instead.

The same transaction marks the projects the stored records show in (``repo.mark_dirty``):
a crash after a cursor advanced but before the derive that covers those records leaves
the marks, and the next cycle derives those projects though its pull finds nothing new.

A record the model cannot read (mappings.validate: a value of the wrong type, a required
field missing) is not stored: it is set aside in the quarantine with its reason, in the
same transaction as the rest of its page, so the cursor never passes a record that was
neither stored nor set aside. Set-aside records are read again by id: at the next cycle,
then after an hour, four hours and daily (:func:`retry_due`), and by every full pull; a
clean read stores the record and takes it out of the quarantine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, runtime_checkable

from connectors.crm import CASE, CUSTOMER, SURVEY, ChangePage, CrmConnector, CrmRecord, Kind, Read
from connectors.jira import JiraConnector
from connectors.jira.paging import IssueCursor, RawIssue
from connectors.times import parse_timestamp as parse_datetime
from mappings.validate import IssueCheck
from sync.config import Config
from sync.cycle.rows import (
    JIRA_KIND,
    case_rows,
    customer_rows,
    issue_project,
    issue_row,
    quarantine_row,
    survey_rows,
)
from sync.remote import crm_needs
from sync.store import Store, repo

#: How often every key in scope is listed to find issues deleted in Jira.
JIRA_DELETE_SCAN_EVERY = timedelta(hours=1)

#: Told, as pages arrive, how many records of a kind a pull has read so far, e.g.
#: ``("jira_issues", 200)``: for progress bars (sync.cli.bars).
PullProgress = Callable[[str, int], None]


@runtime_checkable
class TakesTotals(Protocol):
    """A progress that also shows totals (the bars): given one, the Jira pull asks how
    many issues it will read (on Cloud one extra call, so never for a run off a terminal)."""

    def total(self, what: str, n: int) -> None:
        """``n`` records of ``what`` are expected."""


#: Quarantined records listed in a cycle's result (all are counted, and stored).
LISTED = 100
#: Quarantined records read again per side and cycle (the rest wait for the next one).
RETRY_BATCH = 50
#: How long a record set aside waits before it is read again, by how often it was set
#: aside: at once (the next cycle) after the first time, then 1 h, 4 h, then daily.
RETRY_AFTER = (timedelta(0), timedelta(hours=1), timedelta(hours=4), timedelta(days=1))


def retry_due(record: repo.QuarantineRecord, now: datetime) -> bool:
    """Whether a set-aside record is due to be read again."""
    wait = RETRY_AFTER[min(record.attempts, len(RETRY_AFTER)) - 1]
    return record.last_seen_at + wait <= now


@dataclass
class Overlay:
    """Records pulled in a dry run: merged over the store, never written to it.

    ``accounts``, ``cases`` and ``surveys`` hold the CRM records as the CRM sent them
    (what derive reads); ``crm`` the same records by kind, as the connector gave them
    (what a reconcile stores)."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_items: set[str] = field(default_factory=set)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_accounts: set[str] = field(default_factory=set)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    surveys: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_other: set[str] = field(default_factory=set)
    crm: dict[str, dict[str, CrmRecord]] = field(default_factory=dict)
    #: Customers a merge took -> the customer they were merged into.
    merged_into: dict[str, str] = field(default_factory=dict)

    def put_crm(self, kind: Kind, records: Iterable[CrmRecord]) -> None:
        """Hold CRM records of ``kind`` (customers, cases or survey answers)."""
        target = {CUSTOMER: self.accounts, CASE: self.cases}.get(kind, self.surveys)
        held = self.crm.setdefault(kind, {})
        for record in records:
            target[record.id] = record.data
            held[record.id] = record

    def crm_records(self, kind: Kind) -> list[CrmRecord]:
        """The CRM records of ``kind`` held, in the order they came."""
        return list(self.crm.get(kind, {}).values())


@dataclass
class Changes:
    """What the pull found: counts, and what needs recomputing."""

    projects: set[str] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    named_projects: set[str] = field(default_factory=set)  # by accounts' project-key field
    counts: dict[str, int] = field(default_factory=dict)
    #: Records set aside this cycle (the first :data:`LISTED`), and how many in all.
    quarantined: list[repo.QuarantineRow] = field(default_factory=list)
    quarantined_count: int = 0
    #: Records taken out of the quarantine this cycle (read cleanly, or gone).
    released: int = 0

    def add(self, what: str, n: int) -> None:
        """Count ``n`` records of a kind."""
        if n:
            self.counts[what] = self.counts.get(what, 0) + n

    def set_aside(self, rows: list[repo.QuarantineRow]) -> None:
        """Note records set aside (listed up to :data:`LISTED`)."""
        self.quarantined_count += len(rows)
        room = LISTED - len(self.quarantined)
        if room > 0:
            self.quarantined.extend(rows[:room])


def _shard_names(projects: list[str] | None) -> list[str]:
    """Cursor names of a set of project shards ("*": the whole scope, no project list)."""
    return list(projects) if projects is not None else ["*"]


def pull_jira(
    jira: JiraConnector,
    store: Store,
    fields: list[str],
    changes: Changes,
    now: datetime,
    *,
    full: bool,
    overlay: Overlay | None,
    projects: list[str] | None = None,
    progress: PullProgress | None = None,
    check: IssueCheck | None = None,
) -> None:
    """Issues of ``projects`` (None: the whole scope) changed since their cursors (all with
    ``full``), in one search; then set-aside issues due again; then deletes when a key scan
    is due.

    Cursors are kept per project so that workers can split projects between them; a worker
    reads its projects from the oldest of their cursors and leaves them all at the new one.
    """
    names = _shard_names(projects)
    with store.read() as conn:
        saved = [repo.get_cursor(conn, "jira", f"issues:{name}") for name in names]
        scans = [repo.get_cursor(conn, "jira", f"key_scan:{name}") for name in names]
        aside = _held_aside(conn, "jira", JIRA_KIND, projects)
    cursors = [IssueCursor.from_json(value) for value in saved if value]
    cursor = None
    if not full and len(cursors) == len(names):
        cursor = min(cursors, key=lambda c: c.updated_ms)
    pages = JiraPages(store, changes, now, overlay, progress, check, aside)
    on_total = partial(progress.total, "jira_issues") if isinstance(progress, TakesTotals) else None
    pull = jira.pull_issues(fields, cursor, projects, on_total=on_total)
    for page in pull:
        pages.take(page)
    reached = pull.cursor or cursor
    if overlay is None and reached is not None:
        with store.transaction() as tx:
            for name in names:
                repo.set_cursor(tx, "jira", f"issues:{name}", reached.to_json(), at=now)
    if overlay is None:
        if full:
            # Everything in scope was read: a set-aside key not seen is out of scope or gone.
            pages.release([r.record_id for r in aside.values() if r.record_id not in pages.seen])
        else:
            _retry_jira(jira, fields, pages, aside, now, projects)
    if cursor is None:
        # The pull listed the whole scope (a first or a full pull): its keys are the live
        # set, so listing them again (a tenth of a large pull's calls) would tell nothing.
        _mark_deletes(store, changes, now, overlay, projects, pages.keys, jira.settings.projects)
        return
    stamps = [parse_datetime(scan["at"]) for scan in scans if scan]
    if len(stamps) < len(names) or now - min(stamps) >= JIRA_DELETE_SCAN_EVERY:
        _scan_deletes(jira, store, changes, now, overlay, projects, progress)


def _held_aside(
    conn: Any, side: str, kind: str, projects: list[str] | None = None
) -> dict[str, repo.QuarantineRecord]:
    """The set-aside records of one kind (Jira: of ``projects``), by record id."""
    held = {r.record_id: r for r in repo.iter_quarantined(conn) if (r.side, r.kind) == (side, kind)}
    if projects is not None and side == "jira":
        wanted = set(projects)
        held = {k: r for k, r in held.items() if k.rsplit("-", 1)[0] in wanted}
    return held


class JiraPages:
    """Stores pulled issue pages: the readable ones, each page in one transaction with the
    issues of it that were set aside and the release of those now read cleanly."""

    def __init__(
        self,
        store: Store,
        changes: Changes,
        now: datetime,
        overlay: Overlay | None,
        progress: PullProgress | None,
        check: IssueCheck | None,
        aside: dict[str, repo.QuarantineRecord],
    ) -> None:
        self.store, self.changes, self.now = store, changes, now
        self.overlay, self.progress, self.check = overlay, progress, check
        self.aside = aside
        #: Set-aside keys seen in this pull (read cleanly or set aside again).
        self.seen: set[str] = set()
        #: Every key this pull read, stored or set aside (a whole-scope pull's live set).
        self.keys: set[str] = set()

    def take(self, page: list[RawIssue]) -> None:
        """Store one page (or, in a dry run, keep it in the overlay)."""
        changes, now = self.changes, self.now
        rows: list[repo.ItemRow] = []
        bad: list[repo.QuarantineRow] = []
        for issue in page:
            key = str(issue["key"])
            self.keys.add(key)
            problem = self.check.problem(issue) if self.check is not None else None
            if problem is not None:
                bad.append(quarantine_row("jira", JIRA_KIND, key, problem))
                continue
            rows.append(issue_row(issue))
        changes.projects.update(row["project_key"] for row in rows)
        changes.add("jira_issues", len(rows))
        changes.set_aside(bad)
        if self.progress is not None:
            self.progress("jira_issues", changes.counts.get("jira_issues", 0))
        if self.overlay is not None:
            self.overlay.items.update((row["key"], row["data"]) for row in rows)
            return
        read = [row["key"] for row in rows if row["key"] in self.aside]
        self.seen.update(read)
        self.seen.update(row["record_id"] for row in bad)
        with self.store.transaction() as tx:
            repo.upsert_items(tx, rows)
            repo.mark_dirty(tx, (row["project_key"] for row in rows), at=now)
            if bad:
                repo.quarantine_records(tx, bad, at=now)
            if read:
                changes.released += repo.release_quarantined(tx, "jira", JIRA_KIND, read)

    def release(self, keys: list[str]) -> None:
        """Take set-aside issues that are gone (or out of scope) out of the quarantine."""
        if keys:
            with self.store.transaction() as tx:
                self.changes.released += repo.release_quarantined(tx, "jira", JIRA_KIND, keys)


def _retry_jira(
    jira: JiraConnector,
    fields: list[str],
    pages: JiraPages,
    aside: dict[str, repo.QuarantineRecord],
    now: datetime,
    projects: list[str] | None,
) -> None:
    """Read set-aside issues that are due (and were not in this pull) again, one by one."""
    due = [
        r.record_id for r in aside.values() if r.record_id not in pages.seen and retry_due(r, now)
    ]
    scope = set(projects if projects is not None else jira.settings.projects)
    gone: list[str] = []
    for key in sorted(due)[:RETRY_BATCH]:
        issue = jira.read_issue(key, fields)
        if issue is None or (scope and issue_project(issue) not in scope):
            gone.append(key)
            continue
        if str(issue["key"]) != key:
            gone.append(key)  # moved: kept under its new key
        pages.take([issue])
    pages.release(gone)


def _scan_deletes(
    jira: JiraConnector,
    store: Store,
    changes: Changes,
    now: datetime,
    overlay: Overlay | None,
    projects: list[str] | None,
    progress: PullProgress | None = None,
) -> None:
    """List every key in scope (5000 a page) and mark stored issues missing from it."""
    present: set[str] = set()
    for page in jira.list_keys(projects):
        present.update(key for _id, key in page)
        if progress is not None:
            progress("jira_keys", len(present))
    _mark_deletes(store, changes, now, overlay, projects, present, jira.settings.projects)


def _mark_deletes(
    store: Store,
    changes: Changes,
    now: datetime,
    overlay: Overlay | None,
    projects: list[str] | None,
    present: set[str],
    configured: Sequence[str],
) -> None:
    """Mark stored issues of the scope missing from ``present`` (every key in scope, from
    a key scan or a whole-scope pull) deleted, release set-aside ones, stamp the scan."""
    scope = projects if projects is not None else (list(configured) or None)
    with store.read() as conn:
        missing = [
            (key, project_key)
            for key, project_key in repo.iter_item_keys(conn, sorted(scope) if scope else None)
            if key not in present
        ]
    gone = sorted(key for key, _project_key in missing)
    projects_gone = {project_key for _key, project_key in missing}
    changes.projects.update(projects_gone)
    changes.add("jira_deleted", len(gone))
    if overlay is not None:
        overlay.deleted_items.update(gone)
        return
    stamp = {"at": now.astimezone(UTC).isoformat()}
    with store.read() as conn:
        aside = [k for k in _held_aside(conn, "jira", JIRA_KIND, projects) if k not in present]
    with store.transaction() as tx:
        if aside:
            changes.released += repo.release_quarantined(tx, "jira", JIRA_KIND, aside)
        repo.mark_items_deleted(tx, gone, at=now)
        repo.mark_dirty(tx, projects_gone, at=now)
        for name in _shard_names(projects):
            repo.set_cursor(tx, "jira", f"key_scan:{name}", stamp, at=now)


def pull_crm(
    crm: CrmConnector,
    store: Store,
    config: Config,
    changes: Changes,
    now: datetime,
    *,
    full: bool,
    overlay: Overlay | None,
    progress: PullProgress | None = None,
) -> None:
    """Customers, cases (and survey answers) changed or deleted since their cursors; then
    the set-aside records that are due again, by id, in one more call. The connector
    checks its records: the ones the model cannot read come as ``unreadable``.

    Cursors and set-aside records are kept under each kind's stream (the CRM's name of
    what it reads), the cursor as the connector's own JSON."""
    needs = crm_needs(config)
    side, streams, kinds = crm.side, crm.streams(needs), needs.pulled
    cursors: dict[str, dict[str, Any]] = {}
    first: set[str] = set()  # kinds of which nothing is stored: no deletes to look for
    with store.read() as conn:
        if not full:
            for kind in kinds:
                saved = repo.get_cursor(conn, side, streams[kind])
                if saved:
                    cursors[kind] = saved
                elif not repo.holds_any(conn, kind):
                    first.add(kind)
        aside = {streams[kind]: _held_aside(conn, side, streams[kind]) for kind in kinds}
    pages = CrmPages(store, config, side, changes, now, overlay, progress, aside)
    reads = [Read(kind, cursors.get(kind), first=kind in first) for kind in kinds]
    for page in crm.changes(needs, reads):
        pages.take(page, retry=False)
    if overlay is not None:
        return
    if full:
        # Everything was read: a set-aside id not seen is gone.
        for stream, held in aside.items():
            pages.release(stream, [i for i in held if i not in pages.seen])
        return
    asked: dict[str, list[str]] = {}
    for stream, held in aside.items():
        due = sorted(i for i, r in held.items() if i not in pages.seen and retry_due(r, now))
        if due:
            asked[stream] = due[:RETRY_BATCH]
    retry = [
        Read(kind, ids=tuple(asked[streams[kind]])) for kind in kinds if streams[kind] in asked
    ]
    if retry:
        for page in crm.changes(needs, retry):
            pages.take(page, retry=True)
        for stream, ids in asked.items():
            pages.release(stream, [i for i in ids if i not in pages.seen])


class CrmPages:
    """Stores pulled CRM pages: readable records, the ones set aside (with their reason)
    and the release of set-aside ones now read cleanly or deleted, in one transaction with
    the page's cursor."""

    def __init__(
        self,
        store: Store,
        config: Config,
        side: str,
        changes: Changes,
        now: datetime,
        overlay: Overlay | None,
        progress: PullProgress | None,
        aside: dict[str, dict[str, repo.QuarantineRecord]],
    ) -> None:
        self.store, self.config, self.side, self.changes = store, config, side, changes
        self.now, self.overlay, self.progress = now, overlay, progress
        self.aside = aside
        #: Set-aside ids seen in this pull (read, set aside again, or deleted).
        self.seen: set[str] = set()

    def take(self, page: ChangePage, *, retry: bool) -> None:
        """Store one page; a retry page (records read by id) moves no cursor."""
        changes, side, stream, now = self.changes, self.side, page.stream, self.now
        live = page.live
        bad = [quarantine_row(side, stream, i, why) for i, why in page.unreadable]
        changes.add(stream, len(live))
        changes.add(f"{stream}_deleted", len(page.deleted_ids))
        changes.set_aside(bad)
        if self.progress is not None:
            read = changes.counts.get(stream, 0) + changes.counts.get(f"{stream}_deleted", 0)
            self.progress(stream, read)
        customers = {r.customer_id for r in live if r.customer_id}
        named: set[str] = set()
        if page.kind == CUSTOMER:
            customers.update(page.deleted_ids)
            named = _named_projects(live)
        changes.customers.update(customers)
        changes.named_projects.update(named)
        if self.overlay is not None:
            _overlay_page(self.overlay, page)
            return
        held = self.aside.get(stream, {})
        settled = [i for i in (*(r.id for r in live), *page.deleted_ids) if i in held]
        self.seen.update(settled)
        self.seen.update(row["record_id"] for row in bad)
        with self.store.transaction() as tx:
            store_crm_page(tx, page.kind, live, page.deleted_ids, now, page.merged_into)
            if bad:
                repo.quarantine_records(tx, bad, at=now)
            if settled:
                changes.released += repo.release_quarantined(tx, side, stream, settled)
            # The projects these changes show in, marked until a derive covers them.
            linked = {link.project_key for link in repo.get_links(tx, customer_ids=customers)}
            repo.mark_dirty(tx, named | linked, at=now)
            if page.cursor is not None and not retry:
                repo.set_cursor(tx, side, stream, page.cursor, at=now)

    def release(self, stream: str, ids: list[str]) -> None:
        """Take set-aside records that are gone out of the quarantine."""
        if ids:
            with self.store.transaction() as tx:
                self.changes.released += repo.release_quarantined(tx, self.side, stream, ids)


def _named_projects(customers: Iterable[CrmRecord]) -> set[str]:
    named: set[str] = set()
    for customer in customers:
        value = customer.data.get("project_keys")
        if isinstance(value, str):
            named.update(part.strip().upper() for part in value.split(",") if part.strip())
    return named


def store_crm_page(
    tx: Any,
    kind: Kind,
    live: list[CrmRecord],
    deleted: list[str],
    now: datetime,
    merged_into: Mapping[str, str] | None = None,
) -> None:
    """Store one page of CRM records of ``kind`` (an older copy never replaces a newer
    one) and mark the deleted ones (customers a merge took naming their survivor)."""
    if kind == CUSTOMER:
        repo.upsert_customers(tx, customer_rows(live))
        repo.mark_customers_deleted(tx, deleted, at=now)
        if merged_into:
            repo.mark_customers_merged(tx, merged_into, at=now)
    elif kind == CASE:
        repo.upsert_cases(tx, case_rows(live))
        repo.mark_cases_deleted(tx, deleted)
    elif kind == SURVEY:
        repo.upsert_surveys(tx, survey_rows(live))
        repo.mark_surveys_deleted(tx, deleted)
    else:
        raise ValueError(f"the store keeps no CRM records of kind {kind!r}")


def _overlay_page(overlay: Overlay, page: ChangePage) -> None:
    kind, deleted = page.kind, page.deleted_ids
    overlay.put_crm(kind, page.live)
    if kind == CUSTOMER:
        overlay.deleted_accounts.update(deleted)
        overlay.merged_into.update(page.merged_into)
    else:
        overlay.deleted_other.update(deleted)
