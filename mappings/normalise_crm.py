"""CRM records, in the CRM-neutral form a connector gives them, to :class:`Customer`.

Each record is a plain dict whose keys name the role of a value, not the CRM's field (the
connector translates; see ``connectors.crm``):

- a customer: ``id``, ``name``, ``segment``, ``owner_id``, ``owner_name``,
  ``satisfaction`` (a number or numeric text, when the score is a customer field),
  ``project_keys`` (text naming Jira project keys: the crm_field link rule),
  ``merged_ids`` (the ids of customers merged into it, optional: a list of ids),
  ``changed_at`` (when the CRM last changed it, as text) and ``deleted``;
- a case: ``id``, ``customer_id``, ``closed``, ``escalated``, ``deleted``;
- a survey answer: ``id``, ``customer_id``, ``score``, ``answered_at``, ``deleted``.

Customers give name, segment, owner, the Jira project keys they name and, with
``source = "account_field"``, the satisfaction score. Survey answers, aggregated over a
window, give it otherwise. Cases give open and escalated counts. Ids are compared in the
CRM's canonical form (``ids``, see :mod:`mappings.ids`). A customer merged into another is
gone, and its id an alias of the survivor: cases and survey answers still naming it count
for the survivor (:func:`merged_aliases`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from mappings.dates import parse_datetime
from mappings.ids import IdForm, plain_id
from mappings.model import Customer, Satisfaction, new_customer, new_satisfaction
from mappings.rules import SatisfactionRules

__all__ = [
    "aggregate_surveys",
    "build_customers",
    "merged_aliases",
    "merged_ids_of",
    "nps_category",
    "project_keys_of",
]

_SEPARATORS = str.maketrans(",;|\n\t", "     ")


def nps_category(score: float) -> Literal["promoter", "passive", "detractor"]:
    """NPS category of a 0-10 score: promoter 9-10, passive 7-8, detractor 0-6."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def project_keys_of(value: object) -> tuple[str, ...]:
    """Jira project keys named by a customer field: one key or several, comma-separated."""
    if not isinstance(value, str):
        return ()
    keys = {part.upper() for part in value.translate(_SEPARATORS).split()}
    return tuple(sorted(keys))


def merged_ids_of(value: object, ids: IdForm = plain_id) -> tuple[str, ...]:
    """The ids a customer record's ``merged_ids`` names (a list, or text separated by
    ``;``/``,``), in canonical form, sorted; what is not an id is left out."""
    if isinstance(value, str):
        parts: list[object] = list(value.translate(_SEPARATORS).split())
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        return ()
    return tuple(sorted({i for i in map(ids, parts) if i is not None}))


def merged_aliases(customers: Iterable[Customer]) -> dict[str, str]:
    """Merged-away id -> the customer it was merged into, for ids that are no customer of
    their own (a merge undone in the CRM brings the id back as a customer: it wins)."""
    return _aliases({customer.id: customer.merged_ids for customer in customers})


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
    """Of two versions of one record the later ``changed_at`` wins, in any input order."""
    return (str(record.get("changed_at") or ""), repr(sorted(record.items(), key=str)))


def _deleted(record: Mapping[str, Any]) -> bool:
    return record.get("deleted") is True


def aggregate_surveys(
    responses: Iterable[Mapping[str, Any]],
    rules: SatisfactionRules,
    as_of: datetime,
    ids: IdForm = plain_id,
) -> dict[str, Satisfaction]:
    """Per customer id, the survey score over the window ending at ``as_of`` (mean or
    latest)."""
    survey = rules.survey
    start = as_of - timedelta(days=survey.window_days)
    scored: dict[str, list[tuple[datetime, str, float]]] = defaultdict(list)
    for response in responses:
        if _deleted(response):
            continue
        account_id = ids(response.get("customer_id"))
        score = _score(response.get("score"))
        when = parse_datetime(response.get("answered_at"))
        if account_id is None or score is None or when is None or not start < when <= as_of:
            continue
        scored[account_id].append((when, str(response.get("id") or ""), score))
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


def _case_counts(cases: Iterable[Mapping[str, Any]], ids: IdForm) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in cases:
        if _deleted(case) or case.get("closed") is True:
            continue
        account_id = ids(case.get("customer_id"))
        if account_id is None:
            continue
        entry = counts[account_id]
        entry[0] += 1
        if case.get("escalated") is True:
            entry[1] += 1
    return {account_id: (entry[0], entry[1]) for account_id, entry in counts.items()}


def build_customers(
    accounts: Iterable[Mapping[str, Any]],
    cases: Iterable[Mapping[str, Any]] = (),
    surveys: Iterable[Mapping[str, Any]] = (),
    *,
    rules: SatisfactionRules,
    as_of: datetime,
    instance_url: str = "",
    deleted_ids: Iterable[str] = (),
    ids: IdForm = plain_id,
) -> tuple[Customer, ...]:
    """Customers from customer, case and survey-answer records, sorted by id.

    Customers flagged ``deleted`` or named in ``deleted_ids`` are left out; cases and
    survey answers of unknown customers are ignored.
    """
    deleted = {cid for cid in map(ids, deleted_ids) if cid is not None}
    latest: dict[str, Mapping[str, Any]] = {}
    for account in accounts:
        account_id = ids(account.get("id"))
        if account_id is None or account_id in deleted or _deleted(account):
            continue
        seen = latest.get(account_id)
        if seen is None or _rank(account) > _rank(seen):
            latest[account_id] = account
    merged: dict[str, tuple[str, ...]] = {}
    for a, r in latest.items():
        given = r.get("merged_ids")  # most customers have none
        merged[a] = () if given is None else tuple(i for i in merged_ids_of(given, ids) if i != a)
    alias = _aliases(merged)
    owner_of = ids if not alias else _resolving(ids, alias)
    case_counts = _case_counts(cases, owner_of)
    survey_scores = (
        aggregate_surveys(surveys, rules, as_of, owner_of) if rules.source == "survey" else {}
    )
    base_url = instance_url.rstrip("/")
    customers: dict[str, Customer] = {}
    for account_id, account in latest.items():
        satisfaction: Satisfaction | None
        if rules.source == "survey":
            satisfaction = survey_scores.get(account_id)
        else:
            score = _score(account.get("satisfaction"))
            satisfaction = (
                None
                if score is None
                else new_satisfaction(
                    score=score,
                    scale=rules.scale,
                    source="account_field",
                    measured_at=parse_datetime(account.get("changed_at")),
                    nps_category=nps_category(score) if rules.scale == 10 else None,
                )
            )
        owner_name = account.get("owner_name")
        segment = account.get("segment")
        open_cases, escalated = case_counts.get(account_id, (0, 0))
        owner_id = account.get("owner_id")
        customers[account_id] = new_customer(
            id=account_id,
            name=str(account.get("name") or account_id),
            segment=(str(segment).strip() or None) if segment is not None else None,
            owner_id=str(owner_id) if owner_id else None,
            owner_name=str(owner_name) if owner_name else None,
            satisfaction=satisfaction,
            open_cases=open_cases,
            escalated_cases=escalated,
            url=f"{base_url}/{account_id}" if base_url else "",
            project_keys=project_keys_of(account.get("project_keys")),
            merged_ids=merged[account_id],
        )
    return tuple(customers[key] for key in sorted(customers))


def _aliases(merged: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Merged-away id -> survivor, for ids that are no live customer themselves."""
    found: dict[str, str] = {}
    for survivor in sorted(merged):
        for gone in merged[survivor]:
            if gone != survivor and gone not in merged:
                found.setdefault(gone, survivor)
    return found


def _resolving(ids: IdForm, alias: Mapping[str, str]) -> IdForm:
    """``ids``, then a merged-away id to the customer it was merged into."""

    def resolve(value: object) -> str | None:
        found = ids(value)
        return alias.get(found, found) if found is not None else None

    return resolve
