"""Salesforce records (plain dicts, no ``attributes``) to :class:`Customer`.

Accounts give name, segment, owner, the Jira project keys they name (the crm_field link
rule) and, with ``source = "account_field"``, the satisfaction score. Survey responses,
aggregated over a window, give it otherwise. Cases give open and escalated counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from mappings.dates import parse_datetime
from mappings.model import Customer, Satisfaction, new_customer, new_satisfaction
from mappings.rules import AccountFields, SatisfactionRules
from mappings.sfid import canonical_id

__all__ = ["aggregate_surveys", "build_customers", "nps_category", "project_keys_of"]

_SEPARATORS = str.maketrans(",;|\n\t", "     ")


def nps_category(score: float) -> Literal["promoter", "passive", "detractor"]:
    """NPS category of a 0-10 score: promoter 9-10, passive 7-8, detractor 0-6."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def project_keys_of(value: object) -> tuple[str, ...]:
    """Jira project keys named by an Account field: one key or several, comma-separated."""
    if not isinstance(value, str):
        return ()
    keys = {part.upper() for part in value.translate(_SEPARATORS).split()}
    return tuple(sorted(keys))


def _score(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _rank(record: Mapping[str, Any]) -> tuple[str, str]:
    """Of two versions of one record the later ``SystemModstamp`` wins, in any input order."""
    return (str(record.get("SystemModstamp") or ""), repr(sorted(record.items(), key=str)))


def _deleted(record: Mapping[str, Any]) -> bool:
    return record.get("IsDeleted") is True


def aggregate_surveys(
    responses: Iterable[Mapping[str, Any]], rules: SatisfactionRules, as_of: datetime
) -> dict[str, Satisfaction]:
    """Per Account Id, the survey score over the window ending at ``as_of`` (mean or latest)."""
    survey = rules.survey
    start = as_of - timedelta(days=survey.window_days)
    scored: dict[str, list[tuple[datetime, str, float]]] = defaultdict(list)
    for response in responses:
        if _deleted(response):
            continue
        account_id = canonical_id(response.get(survey.account_field))
        score = _score(response.get(survey.score_field))
        when = parse_datetime(response.get(survey.date_field))
        if account_id is None or score is None or when is None or not start < when <= as_of:
            continue
        scored[account_id].append((when, str(response.get("Id") or ""), score))
    out: dict[str, Satisfaction] = {}
    for account_id, entries in scored.items():
        entries.sort()
        latest = entries[-1]
        if survey.aggregate == "latest":
            value = latest[2]
        else:
            value = round(sum(entry[2] for entry in entries) / len(entries), 2)
        out[account_id] = new_satisfaction(
            score=value,
            scale=rules.scale,
            source="survey",
            measured_at=latest[0],
            responses=len(entries),
            nps_category=nps_category(value) if rules.scale == 10 else None,
        )
    return out


def _case_counts(cases: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in cases:
        if _deleted(case):
            continue
        closed = case.get("IsClosed")
        if closed is None:
            closed = str(case.get("Status") or "").lower().startswith("closed")
        if closed:
            continue
        account_id = canonical_id(case.get("AccountId"))
        if account_id is None:
            continue
        entry = counts[account_id]
        entry[0] += 1
        if case.get("IsEscalated") is True:
            entry[1] += 1
    return {account_id: (entry[0], entry[1]) for account_id, entry in counts.items()}


def build_customers(
    accounts: Iterable[Mapping[str, Any]],
    cases: Iterable[Mapping[str, Any]] = (),
    surveys: Iterable[Mapping[str, Any]] = (),
    *,
    fields: AccountFields,
    rules: SatisfactionRules,
    as_of: datetime,
    instance_url: str = "",
    deleted_ids: Iterable[str] = (),
) -> tuple[Customer, ...]:
    """Customers from Account, Case and survey records, sorted by Id.

    Accounts flagged ``IsDeleted`` or named in ``deleted_ids`` are left out; cases and
    survey responses of unknown accounts are ignored.
    """
    deleted = {cid for cid in map(canonical_id, deleted_ids) if cid is not None}
    case_counts = _case_counts(cases)
    survey_scores = aggregate_surveys(surveys, rules, as_of) if rules.source == "survey" else {}
    base_url = instance_url.rstrip("/")
    latest: dict[str, Mapping[str, Any]] = {}
    for account in accounts:
        account_id = canonical_id(account.get("Id"))
        if account_id is None or account_id in deleted or _deleted(account):
            continue
        seen = latest.get(account_id)
        if seen is None or _rank(account) > _rank(seen):
            latest[account_id] = account
    customers: dict[str, Customer] = {}
    for account_id, account in latest.items():
        satisfaction: Satisfaction | None
        if rules.source == "survey":
            satisfaction = survey_scores.get(account_id)
        else:
            score = _score(account.get(fields.satisfaction_field))
            satisfaction = (
                None
                if score is None
                else new_satisfaction(
                    score=score,
                    scale=rules.scale,
                    source="account_field",
                    measured_at=parse_datetime(account.get("SystemModstamp")),
                    nps_category=nps_category(score) if rules.scale == 10 else None,
                )
            )
        owner = account.get("Owner")
        owner_name = owner.get("Name") if isinstance(owner, Mapping) else None
        segment = account.get(fields.segment_field)
        open_cases, escalated = case_counts.get(account_id, (0, 0))
        owner_id = account.get("OwnerId")
        customers[account_id] = new_customer(
            id=account_id,
            name=str(account.get("Name") or account_id),
            segment=(str(segment).strip() or None) if segment is not None else None,
            owner_id=str(owner_id) if owner_id else None,
            owner_name=str(owner_name) if owner_name else None,
            satisfaction=satisfaction,
            open_cases=open_cases,
            escalated_cases=escalated,
            url=f"{base_url}/{account_id}" if base_url else "",
            project_keys=project_keys_of(account.get(fields.project_key_field)),
        )
    return tuple(customers[key] for key in sorted(customers))
