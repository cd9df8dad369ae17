"""The pull phase: what changed on each side since the cursors, into the store.

Each page commits with the records it holds; a cursor advances only in the transaction
that stores the last records it covers. A crash mid-pull therefore re-reads from the old
cursor, and storing a record twice is harmless (an older version never overwrites a
newer one). In a dry run the pages go to an in-memory :class:`Overlay` instead.

The same transaction marks the projects the stored records show in (``repo.mark_dirty``):
a crash after a cursor advanced but before the derive that covers those records leaves
the marks, and the next cycle derives those projects though its pull finds nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, runtime_checkable

from connectors.jira import JiraConnector
from connectors.jira.paging import IssueCursor
from connectors.salesforce import ModstampCursor, SalesforceConnector
from connectors.salesforce.changes import ChangeQuery
from connectors.salesforce.pull import parse_datetime
from sync.config import Config
from sync.store import Store, repo

#: How often every key in scope is listed to find issues deleted in Jira.
JIRA_DELETE_SCAN_EVERY = timedelta(hours=1)

#: Told, as pages arrive, how many records of a kind a pull has read so far, e.g.
#: ``("jira_issues", 200)``: for progress bars (sync.progress).
PullProgress = Callable[[str, int], None]


@runtime_checkable
class TakesTotals(Protocol):
    """A progress that also shows totals (the bars): given one, the Jira pull asks how
    many issues it will read (on Cloud one extra call, so never for a run off a terminal)."""

    def total(self, what: str, n: int) -> None:
        """``n`` records of ``what`` are expected."""


ACCOUNT = "Account"
CASE = "Case"
CASE_FIELDS = ("AccountId", "IsClosed", "IsEscalated", "Status")


@dataclass
class Overlay:
    """Records pulled in a dry run: merged over the store, never written to it."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_items: set[str] = field(default_factory=set)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_accounts: set[str] = field(default_factory=set)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    surveys: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_other: set[str] = field(default_factory=set)


@dataclass
class Changes:
    """What the pull found: counts, and what needs recomputing."""

    projects: set[str] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    named_projects: set[str] = field(default_factory=set)  # by accounts' project-key field
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, n: int) -> None:
        """Count ``n`` records of a kind."""
        if n:
            self.counts[what] = self.counts.get(what, 0) + n


def _updated(issue: Mapping[str, Any]) -> datetime | None:
    text = (issue.get("fields") or {}).get("updated")
    return parse_datetime(str(text)) if text else None


def _project(issue: Mapping[str, Any]) -> str:
    project = (issue.get("fields") or {}).get("project") or {}
    return str(project.get("key") or str(issue["key"]).rsplit("-", 1)[0])


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
) -> None:
    """Issues of ``projects`` (None: the whole scope) changed since their cursors (all with
    ``full``), in one search; then deletes when a key scan is due.

    Cursors are kept per project so that workers can split projects between them; a worker
    reads its projects from the oldest of their cursors and leaves them all at the new one.
    """
    names = _shard_names(projects)
    with store.read() as conn:
        saved = [repo.get_cursor(conn, "jira", f"issues:{name}") for name in names]
        scans = [repo.get_cursor(conn, "jira", f"key_scan:{name}") for name in names]
    cursors = [IssueCursor.from_json(value) for value in saved if value]
    cursor = None
    if not full and len(cursors) == len(names):
        cursor = min(cursors, key=lambda c: c.updated_ms)
    on_total = partial(progress.total, "jira_issues") if isinstance(progress, TakesTotals) else None
    pull = jira.pull_issues(fields, cursor, projects, on_total=on_total)
    for page in pull:
        rows: list[repo.ItemRow] = [
            {
                "key": str(issue["key"]),
                "project_key": _project(issue),
                "issue_id": str(issue.get("id") or ""),
                "updated": _updated(issue),
                "data": dict(issue),
            }
            for issue in page
        ]
        changes.projects.update(row["project_key"] for row in rows)
        changes.add("jira_issues", len(rows))
        if progress is not None:
            progress("jira_issues", changes.counts.get("jira_issues", 0))
        if overlay is not None:
            overlay.items.update((row["key"], row["data"]) for row in rows)
            continue
        with store.transaction() as tx:
            repo.upsert_items(tx, rows)
            repo.mark_dirty(tx, (row["project_key"] for row in rows), at=now)
    reached = pull.cursor or cursor
    if overlay is None and reached is not None:
        with store.transaction() as tx:
            for name in names:
                repo.set_cursor(tx, "jira", f"issues:{name}", reached.to_json(), at=now)
    stamps = [parse_datetime(scan["at"]) for scan in scans if scan]
    due = len(stamps) < len(names) or now - min(stamps) >= JIRA_DELETE_SCAN_EVERY
    if full or due:
        _scan_deletes(jira, store, changes, now, overlay, projects, progress)


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
    scope = projects if projects is not None else (list(jira.settings.projects) or None)
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
    with store.transaction() as tx:
        repo.mark_items_deleted(tx, gone, at=now)
        repo.mark_dirty(tx, projects_gone, at=now)
        for name in _shard_names(projects):
            repo.set_cursor(tx, "jira", f"key_scan:{name}", stamp, at=now)


def crm_queries(config: Config, cursors: dict[str, Any]) -> list[ChangeQuery]:
    """The objects a cycle reads, each since its cursor."""
    account = config.crm.salesforce.account
    account_fields = ["Name", account.segment_field, "OwnerId"]
    if config.satisfaction.source == "account_field":
        account_fields.append(account.satisfaction_field)
    if "crm_field" in config.link.order:
        account_fields.append(config.link.crm_field)
    queries = [
        ChangeQuery(ACCOUNT, tuple(dict.fromkeys(account_fields)), cursors.get(ACCOUNT)),
        ChangeQuery(CASE, CASE_FIELDS, cursors.get(CASE)),
    ]
    if config.satisfaction.source == "survey":
        survey = config.satisfaction.survey
        fields = (survey.account_field, survey.score_field, survey.date_field)
        queries.append(ChangeQuery(survey.object, fields, cursors.get(survey.object)))
    return queries


def crm_objects(config: Config) -> list[str]:
    """Objects read or written: their describes are needed."""
    objects = [ACCOUNT, CASE, config.push.crm.object]
    if config.satisfaction.source == "survey":
        objects.append(config.satisfaction.survey.object)
    return objects


def pull_crm(
    crm: SalesforceConnector,
    store: Store,
    config: Config,
    changes: Changes,
    now: datetime,
    *,
    full: bool,
    overlay: Overlay | None,
    progress: PullProgress | None = None,
) -> None:
    """Accounts, cases (and survey responses) changed or deleted since their cursors."""
    survey = config.satisfaction.survey
    names = [ACCOUNT, CASE, survey.object]
    cursors: dict[str, Any] = {}
    if not full:
        with store.read() as conn:
            for name in names:
                saved = repo.get_cursor(conn, "salesforce", name)
                if saved:
                    cursors[name] = ModstampCursor.from_json(saved)
    project_field = config.link.crm_field
    for page in crm.changes(crm_queries(config, cursors)):
        kind = page.sobject
        changes.add(f"{kind}", len(page.live))
        changes.add(f"{kind}_deleted", len(page.deleted_ids))
        if progress is not None:
            read = changes.counts.get(kind, 0) + changes.counts.get(f"{kind}_deleted", 0)
            progress(kind, read)
        customers: set[str] = set()
        named: set[str] = set()
        if kind == ACCOUNT:
            customers.update(r["Id"] for r in page.live)
            customers.update(page.deleted_ids)
            named = _named_projects(page.live, project_field)
        elif kind == CASE:
            customers.update(str(r["AccountId"]) for r in page.live if r.get("AccountId"))
        else:
            customers.update(
                str(r[survey.account_field]) for r in page.live if r.get(survey.account_field)
            )
        changes.customers.update(customers)
        changes.named_projects.update(named)
        if overlay is not None:
            _overlay_page(overlay, kind, page.live, page.deleted_ids)
            continue
        with store.transaction() as tx:
            _store_page(tx, config, kind, page.live, page.deleted_ids, now)
            # The projects these changes show in, marked until a derive covers them.
            linked = {link.project_key for link in repo.get_links(tx, customer_ids=customers)}
            repo.mark_dirty(tx, named | linked, at=now)
            if page.cursor is not None:
                repo.set_cursor(tx, "salesforce", kind, page.cursor.to_json(), at=now)


def _named_projects(accounts: Iterable[dict[str, Any]], field_name: str) -> set[str]:
    named: set[str] = set()
    for account in accounts:
        value = account.get(field_name)
        if isinstance(value, str):
            named.update(part.strip().upper() for part in value.split(",") if part.strip())
    return named


def _stamp(record: dict[str, Any]) -> datetime | None:
    text = record.get("SystemModstamp")
    return parse_datetime(str(text)) if text else None


def _store_page(
    tx: Any,
    config: Config,
    kind: str,
    live: list[dict[str, Any]],
    deleted: list[str],
    now: datetime,
) -> None:
    if kind == ACCOUNT:
        repo.upsert_accounts(tx, [{"id": r["Id"], "modstamp": _stamp(r), "data": r} for r in live])
        repo.mark_accounts_deleted(tx, deleted, at=now)
    elif kind == CASE:
        repo.upsert_cases(
            tx,
            [
                {
                    "id": r["Id"],
                    "account_id": r.get("AccountId"),
                    "is_closed": bool(r.get("IsClosed")),
                    "is_escalated": bool(r.get("IsEscalated")),
                    "modstamp": _stamp(r),
                }
                for r in live
            ],
        )
        repo.mark_cases_deleted(tx, deleted)
    else:
        survey = config.satisfaction.survey
        rows: list[repo.SurveyRow] = []
        for r in live:
            answered = r.get(survey.date_field)
            score = r.get(survey.score_field)
            rows.append(
                {
                    "id": r["Id"],
                    "account_id": r.get(survey.account_field),
                    "score": float(score) if score is not None else None,
                    "responded_at": parse_datetime(str(answered)) if answered else None,
                    "modstamp": _stamp(r),
                }
            )
        repo.upsert_surveys(tx, rows)
        repo.mark_surveys_deleted(tx, deleted)


def _overlay_page(
    overlay: Overlay, kind: str, live: list[dict[str, Any]], deleted: list[str]
) -> None:
    target = {ACCOUNT: overlay.accounts, CASE: overlay.cases}.get(kind, overlay.surveys)
    target.update((r["Id"], r) for r in live)
    if kind == ACCOUNT:
        overlay.deleted_accounts.update(deleted)
    else:
        overlay.deleted_other.update(deleted)
