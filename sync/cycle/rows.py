"""Vendor records and model values <-> store rows, both ways, in one place.

Into the store (what pull and record write): an issue as Jira sent it becomes an
:class:`~sync.store.repo.ItemRow`, a CRM record a customer, case or survey row, a record
the model cannot read a quarantine row; a planned write becomes an outbox row, a write the
remote accepted (or already held) a ledger row, and the derived model's links, progress,
flags and satisfaction their rows.

Out of the store (what derive reads): stored customers, cases and survey answers become the
records the merge reads (the CRM's own field names), stored flags the previous flags, and
ledger rows the digests and :class:`~mappings.writes.JiraLedger` entries a plan is judged by.

No SQL here: the rows go through :mod:`sync.store.repo`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from connectors.crm import CrmRecord, RecordForm
from connectors.times import parse_timestamp
from mappings.linking import LinkResult
from mappings.model import Customer, ProgressReport, SatisfactionFlag
from mappings.normalise_crm import merged_ids_of
from mappings.writes import JiraLedger
from sync.cycle.ownership import shard_of_record
from sync.store import repo

#: The ledger's field for a whole record: one ledger row per record (the plan diffs whole
#: records).
LEDGER_FIELD = "*"
#: The quarantine's kind for a Jira issue (CRM records are kept under their stream).
JIRA_KIND = "issue"


# --- into the store: pulled records --------------------------------------------------------


def issue_project(issue: Mapping[str, Any]) -> str:
    """The project key of a raw issue (from its key when the fields do not say)."""
    project = (issue.get("fields") or {}).get("project") or {}
    return str(project.get("key") or str(issue["key"]).rsplit("-", 1)[0])


def issue_updated(issue: Mapping[str, Any]) -> datetime | None:
    """When a raw issue was last updated (None: Jira did not say)."""
    text = (issue.get("fields") or {}).get("updated")
    return parse_timestamp(str(text)) if text else None


def issue_row(issue: Mapping[str, Any]) -> repo.ItemRow:
    """A raw issue as the store keeps it: key, project, id, updated and the whole record."""
    return {
        "key": str(issue["key"]),
        "project_key": issue_project(issue),
        "issue_id": str(issue.get("id") or ""),
        "updated": issue_updated(issue),
        "data": dict(issue),
    }


def stored_item_row(record: repo.ItemRecord) -> repo.ItemRow:
    """A stored issue as a row again (reconcile copies records into its scratch store)."""
    return {
        "key": record.key,
        "project_key": record.project_key,
        "issue_id": record.issue_id,
        "updated": record.updated,
        "data": record.data,
    }


def stored_customer_rows(records: Iterable[repo.CustomerRecord]) -> list[repo.CustomerRow]:
    """Stored customers as rows again (reconcile copies records into its scratch store)."""
    return [{"id": c.id, "modstamp": c.modstamp, "data": c.data} for c in records]


def customer_rows(records: Iterable[CrmRecord]) -> list[repo.CustomerRow]:
    """CRM customers as the store keeps them (the whole record: derive reads it back)."""
    return [{"id": r.id, "modstamp": r.changed_at, "data": r.data} for r in records]


def case_rows(records: Iterable[CrmRecord]) -> list[repo.CaseRow]:
    """CRM cases as the store keeps them: only what satisfaction rules count."""
    return [
        {
            "id": r.id,
            "customer_id": r.customer_id,
            "is_closed": r.closed,
            "is_escalated": r.escalated,
            "modstamp": r.changed_at,
        }
        for r in records
    ]


def survey_rows(records: Iterable[CrmRecord]) -> list[repo.SurveyRow]:
    """CRM survey answers as the store keeps them: customer, score and when."""
    return [
        {
            "id": r.id,
            "customer_id": r.customer_id,
            "score": r.score,
            "responded_at": r.answered_at,
            "modstamp": r.changed_at,
        }
        for r in records
    ]


def quarantine_row(side: str, kind: str, record_id: str, reason: str) -> repo.QuarantineRow:
    """A record set aside: which side and kind, its id and why the model cannot read it."""
    return {"side": side, "kind": kind, "record_id": record_id, "reason": reason}


# --- into the store: what a cycle derived and wrote ----------------------------------------


def ledger_digest(value: Any) -> str:
    """A stable digest of a JSON value."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def crm_ledger_row(record_key: str, digest: str, run_id: int | None) -> repo.LedgerRow:
    """The ledger row of a CRM report record written (or found) with ``digest``."""
    return {
        "target": "crm",
        "record_key": record_key,
        "field": LEDGER_FIELD,
        "value_hash": digest,
        "value": None,
        "run_id": run_id,
    }


def jira_ledger_row(ledger: JiraLedger, run_id: int | None) -> repo.LedgerRow:
    """The ledger row of what we own on one issue (labels, field, flag levels announced)."""
    value = ledger.as_dict()
    return {
        "target": "jira",
        "record_key": ledger.issue_key,
        "field": LEDGER_FIELD,
        "value_hash": ledger_digest(value),
        "value": value,
        "run_id": run_id,
    }


def outbox_row(
    target: str,
    key: str,
    op: str,
    payload: dict[str, Any],
    run_id: int | None,
    content_hash: str | None = None,
) -> repo.OutboxRow:
    """A queued write; ``content_hash`` (default: the payload's digest) says when a re-plan
    is the same write (it keeps a parked write's attempts and backoff)."""
    return {
        "target": target,
        "record_key": key,
        "op": op,
        "payload": payload,
        "payload_hash": content_hash or ledger_digest(payload),
        "run_id": run_id,
        "shard": shard_of_record(key, target),
    }


def link_rows(links: LinkResult) -> dict[str, list[repo.LinkRow]]:
    """The links of a merge, by project."""
    by_project: dict[str, list[repo.LinkRow]] = {}
    for link in links.links:
        by_project.setdefault(link.project_key, []).append(
            {
                "customer_id": link.customer_id,
                "rule": link.rule,
                "scope": link.scope,
                "item_count": len(link.item_keys),
            }
        )
    return by_project


def link_problem_rows(links: LinkResult) -> dict[str, list[repo.LinkProblemRow]]:
    """The link problems that name a work item, by project (those of the [link.static]
    table name none and are not stored)."""
    by_project: dict[str, list[repo.LinkProblemRow]] = {}
    for problem in links.problems:
        if problem.item_key is not None:
            by_project.setdefault(problem.project_key, []).append(
                {
                    "item_key": problem.item_key,
                    "reason": problem.reason,
                    "linked_by": problem.linked_by,
                }
            )
    return by_project


def progress_rows(reports: Iterable[ProgressReport], day: date) -> list[repo.ProgressRecord]:
    """Each (customer, project) pair's progress on ``day``."""
    return [
        repo.ProgressRecord(
            customer_id=r.customer_id,
            project_key=r.project_key,
            day=day,
            total=r.total,
            done=r.done,
            in_progress=r.in_progress,
            todo=r.todo,
            overdue=r.overdue,
            blocked=r.blocked,
            percent_complete=r.percent_complete,
            health=r.health,
            forecast_date=r.forecast.date,
        )
        for r in reports
    ]


def flag_rows(flags: Iterable[SatisfactionFlag]) -> list[repo.FlagRow]:
    """Customers' current flags."""
    return [
        {
            "customer_id": f.customer_id,
            "level": f.level,
            "since": f.since,
            "reasons": list(f.reasons),
        }
        for f in flags
    ]


def satisfaction_rows(
    customers: Iterable[Customer], flags: Iterable[SatisfactionFlag], day: date
) -> list[repo.SatisfactionRow]:
    """Each flagged customer's satisfaction on ``day`` (the history ``status`` shows)."""
    by_id = {c.id: c for c in customers}
    return [
        {
            "customer_id": f.customer_id,
            "day": day,
            "score": sat.score if (sat := by_id[f.customer_id].satisfaction) else None,
            "scale": sat.scale if sat else None,
            "level": f.level,
            "reasons": list(f.reasons),
        }
        for f in flags
        if f.customer_id in by_id
    ]


# --- out of the store: model inputs --------------------------------------------------------


def customer_input(customer: repo.CustomerRecord, form: RecordForm) -> dict[str, Any]:
    """A stored customer as the merge reads it: the CRM-neutral record (a store written
    before the records were neutral holds the CRM's own shape: ``form`` reads either)."""
    return form.stored_customer(customer.data)


def name_merged(
    accounts: list[dict[str, Any]], merged_into: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``accounts`` with each live customer naming the ids merged into it (its neutral
    ``merged_ids``), from the deleted customers that name the one they were merged into
    (a CRM may say it on the record merged away, not on the survivor); a chain of merges
    ends at the live customer, so a link value naming any id of it names the survivor.
    The records given are not changed (a survivor's is copied)."""
    live = {str(a.get("id")): a for a in accounts}
    found: dict[str, list[str]] = {}
    for gone in sorted(merged_into):
        into, seen = merged_into[gone], {gone}
        while into not in live and into in merged_into and into not in seen:
            seen.add(into)
            into = merged_into[into]
        if into in live:
            found.setdefault(into, []).append(gone)
    if not found:
        return accounts
    out = []
    for account in accounts:
        taken = found.get(str(account.get("id")))
        if taken:
            named = list(merged_ids_of(account.get("merged_ids")))
            account = {**account, "merged_ids": [*named, *(i for i in taken if i not in named)]}
        out.append(account)
    return out


def case_input(case: repo.CaseRecord) -> dict[str, Any]:
    """A stored case as the merge reads it (CRM-neutral names)."""
    return {
        "id": case.id,
        "customer_id": case.customer_id,
        "closed": case.is_closed,
        "escalated": case.is_escalated,
    }


def survey_input(row: repo.SurveyRecord) -> dict[str, Any]:
    """A stored survey answer as the merge reads it (CRM-neutral names)."""
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "score": row.score,
        "answered_at": row.responded_at.isoformat() if row.responded_at else None,
    }


def previous_flags(stored: Mapping[str, Any]) -> dict[str, SatisfactionFlag]:
    """Stored flags (:func:`sync.store.repo.get_flags`) as the merge's previous flags."""
    return {
        customer: SatisfactionFlag(customer, flag.level, tuple(flag.reasons), flag.since)
        for customer, flag in stored.items()
    }


def crm_ledger_of(rows: Mapping[str, Mapping[str, tuple[str, Any]]]) -> dict[str, str]:
    """CRM ledger rows (:func:`sync.store.repo.ledger_get_many`) as digests by external id."""
    return {key: fields[LEDGER_FIELD][0] for key, fields in rows.items()}


def jira_ledger_of(rows: Mapping[str, Mapping[str, tuple[str, Any]]]) -> dict[str, JiraLedger]:
    """Jira ledger rows as the entries a plan judges the issues by."""
    return {key: JiraLedger.from_dict(fields[LEDGER_FIELD][1]) for key, fields in rows.items()}
