"""Merge and plan from the store: only the projects and customers touched by what changed,
and everything once a day (overdue and forecasts move with the date) or when the rules
change. Then record what was derived and queue the writes, in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from mappings.config import Rules
from mappings.merge import MergeResult, merge, plan, remote_from_items
from mappings.model import SatisfactionFlag
from mappings.writes import JiraLedger, Plan, RemoteJira
from sync.pull import Changes, Overlay
from sync.store import Store, repo
from sync.store.schema import crm_cases

LEDGER_FIELD = "*"  # one ledger row per record: the plan diffs whole records


@dataclass
class Derived:
    """One cycle's model and plan, and which projects it covered."""

    result: MergeResult
    plan: Plan
    projects: tuple[str, ...]
    everything: bool
    #: changed-project marks this derive covered (``record`` clears them).
    marks: tuple[str, ...] = ()


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
) -> tuple[list[str] | None, dict[str, dict[str, Any]]]:
    """Project keys to recompute (None: the whole scope) and the engine state to save after.

    ``held`` are the projects this worker owns (None: the whole scope). A project is
    recomputed when something it shows changed, and every project once a day (overdue
    counts and forecasts move with the date) and whenever the rules change.
    """
    names = held if held is not None else ["*"]
    new = {"day": today.isoformat(), "rules": digest}
    with store.read() as conn:
        states = {name: repo.get_cursor(conn, "engine", f"derived:{name}") or {} for name in names}
        marked = set(repo.dirty_marks(conn).values())  # changes a crashed cycle did not derive
    stale = [name for name, state in states.items() if full or state != new]
    saves = {f"derived:{name}": new for name in stale}
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
        for account in repo.iter_accounts(conn, include_deleted=True):
            if account.deleted:
                deleted_accounts.append(account.id)
            else:
                accounts.append(account.data)
        cases = _cases(conn)
        surveys = _surveys(conn, rules, now - timedelta(days=survey_window_days))
        previous = repo.get_flags(conn)
        scores = _previous_scores(conn, now.date())
    if overlay is not None:
        issues = _overlaid(issues, overlay.items, projects)
        accounts = [a for a in accounts if a["Id"] not in overlay.deleted_accounts]
        accounts = list({**{a["Id"]: a for a in accounts}, **overlay.accounts}.values())
        deleted_accounts = sorted(set(deleted_accounts) | overlay.deleted_accounts)
        cases = list({**{c["Id"]: c for c in cases}, **overlay.cases}.values())
        surveys = list({**{s["Id"]: s for s in surveys}, **overlay.surveys}.values())
        gone = overlay.deleted_other
        cases = [c for c in cases if c["Id"] not in gone]
        surveys = [s for s in surveys if s["Id"] not in gone]
    previous_flags = {
        customer: SatisfactionFlag(customer, flag.level, tuple(flag.reasons), flag.since)  # type: ignore[arg-type]
        for customer, flag in previous.items()
    }
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
    )
    with store.read() as conn:
        crm_rows = repo.ledger_get_many(conn, "crm", [r_key(r) for r in result.reports])
        jira_rows = repo.ledger_get_many(conn, "jira", [item.key for item in result.items])
    crm_ledger = {key: fields[LEDGER_FIELD][0] for key, fields in crm_rows.items()}
    jira_ledger = {
        key: JiraLedger.from_dict(fields[LEDGER_FIELD][1]) for key, fields in jira_rows.items()
    }
    the_plan = plan(
        result,
        rules,
        crm_ledger=crm_ledger,
        jira_ledger=jira_ledger,
        crm_remote=crm_remote,
        jira_remote=jira_remote if jira_remote is not None else remote_from_items(result.items),
    )
    covered = tuple(projects) if projects is not None else tuple(p.key for p in result.projects)
    done = tuple(
        sorted(name for name, project in marks.items() if projects is None or project in covered)
    )
    return Derived(result, the_plan, covered, projects is None, done)


def r_key(report: Any) -> str:
    """The external id of a report record: ``<PROJECT KEY>:<Account Id>`` (SPEC section 6)."""
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
    rows = conn.execute(crm_cases.select().where(crm_cases.c.deleted.is_(False))).mappings()
    return [
        {
            "Id": row["id"],
            "AccountId": row["account_id"],
            "IsClosed": bool(row["is_closed"]),
            "IsEscalated": bool(row["is_escalated"]),
        }
        for row in rows
    ]


def _surveys(conn: Any, rules: Rules, since: datetime) -> list[dict[str, Any]]:
    if rules.satisfaction.source != "survey":
        return []
    survey = rules.satisfaction.survey
    return [
        {
            "Id": row.id,
            survey.account_field: row.account_id,
            survey.score_field: row.score,
            survey.date_field: row.responded_at.isoformat() if row.responded_at else None,
        }
        for row in repo.iter_surveys(conn, since=since)
    ]


def _previous_scores(conn: Any, today: date) -> dict[str, float]:
    latest: dict[str, tuple[date, float]] = {}
    for row in repo.satisfaction_history_of(conn):
        if row.day < today and row.score is not None:
            seen = latest.get(row.customer_id)
            if seen is None or row.day > seen[0]:
                latest[row.customer_id] = (row.day, row.score)
    return {customer: score for customer, (_day, score) in latest.items()}


def ledger_digest(value: Any) -> str:
    """A stable digest of a JSON value."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
