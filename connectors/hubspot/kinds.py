"""What each kind of the CRM seam (:mod:`connectors.crm`) is in HubSpot (no I/O).

Customers are companies, cases are tickets (associated to companies), survey answers are
feedback submissions (reached through their contact's company), the report object is a
custom object or, without one, the companies themselves.

Each customer, case and survey answer's ``data`` is in the CRM-neutral form the model reads
(:mod:`mappings.normalise_crm`): a company's ``name``, its configured segment, satisfaction
and project-keys properties, its owner's id and name; a ticket's company, closed (by its
pipeline stage) and escalated (by the configured rule); a feedback submission's company
(through its contact), score and submission time; a company's ``merged_ids`` are the
companies merged into it (``hs_merged_object_ids``). A report record's ``data`` holds its
properties flat, as the config names them, with ``id``. HubSpot ids are numeric strings:
:func:`form` gives their canonical form (the digits) and the stored customers (already
neutral: HubSpot records were never stored in another shape).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from connectors.crm import (
    CASE,
    CUSTOMER,
    SURVEY,
    CrmField,
    CrmObject,
    CrmRecord,
    Kind,
    Needs,
    RecordForm,
    report_object,
    streams_of,
)
from connectors.hubspot.pull import MERGED, merged_ids, modified_ms
from connectors.hubspot.search import filter_
from connectors.hubspot.settings import ESCALATED_PRIORITIES, HubSpotSettings
from connectors.times import parse_timestamp

COMPANIES: Final = "companies"
TICKETS: Final = "tickets"
CONTACTS: Final = "contacts"
FEEDBACK: Final = "feedback_submissions"
OWNER: Final = "hubspot_owner_id"
SURVEY_TYPE: Final = "hs_survey_type"
TICKET_PROPERTIES: Final = ("subject", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority")
_STANDARD_OBJECT = "a standard object"
_STANDARD_FIELD = "a standard property"


def streams(needs: Needs) -> dict[Kind, str]:
    """The object each kind is read from and written to."""
    return streams_of(needs, COMPANIES, TICKETS)


def properties(needs: Needs, kind: Kind, settings: HubSpotSettings) -> tuple[str, ...]:
    """The properties read for ``kind`` (``hs_lastmodifieddate`` and the id come anyway)."""
    if kind == CUSTOMER:
        c = needs.customer
        names = ["name", OWNER, MERGED, c.segment.name]
        names += [x.name for x in (c.satisfaction, c.project_keys) if x is not None]
        return tuple(dict.fromkeys(names))
    if kind == CASE:
        extra = [settings.escalation_property] if settings.escalation_property else []
        return tuple(dict.fromkeys([*TICKET_PROPERTIES, MERGED, *extra]))
    if kind == SURVEY:
        survey = needs.survey
        if survey is None:
            raise ValueError("the config reads no survey object")
        return (SURVEY_TYPE, survey.score_field.name, survey.date_field.name)
    report = needs.report
    return tuple(dict.fromkeys([report.external_id.name, *(f.name for f in report.fields)]))


def filters(kind: Kind, settings: HubSpotSettings) -> tuple[dict[str, Any], ...]:
    """Filters every search of ``kind`` carries (survey answers: the configured types)."""
    if kind == SURVEY and settings.survey_types:
        return (filter_(SURVEY_TYPE, "IN", list(settings.survey_types)),)
    return ()


def objects(needs: Needs, settings: HubSpotSettings) -> list[CrmObject]:
    """The objects and properties a cycle uses, where the config sets each (for `check`)."""
    c = needs.customer
    company = [CrmField("name", _STANDARD_FIELD), CrmField(OWNER, _STANDARD_FIELD)]
    company += [
        CrmField(x.name, x.setting) for x in (c.segment, c.satisfaction, c.project_keys) if x
    ]
    ticket = [CrmField(name, _STANDARD_FIELD) for name in TICKET_PROPERTIES]
    if settings.escalation_property:
        ticket.append(CrmField(settings.escalation_property, "[crm.hubspot] escalation_property"))
    found = [
        CrmObject(CUSTOMER, COMPANIES, _STANDARD_OBJECT, tuple(company)),
        CrmObject(CASE, TICKETS, _STANDARD_OBJECT, tuple(ticket)),
    ]
    if needs.survey is not None:
        s = needs.survey
        found.append(
            CrmObject(
                SURVEY,
                s.object.name,
                s.object.setting,
                (
                    CrmField(s.score_field.name, s.score_field.setting),
                    CrmField(s.date_field.name, s.date_field.setting),
                ),
            )
        )
    found.append(report_object(needs))
    return found


def changed_at(raw: Mapping[str, Any]) -> datetime:
    """When HubSpot last changed a record (checked by the pull: readable)."""
    ms = modified_ms(raw)
    if ms is None:
        raise ValueError(f"record {raw.get('id')} has no readable hs_lastmodifieddate")
    return datetime.fromtimestamp(ms / 1000, UTC)


def _flat(raw: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = dict(raw.get("properties") or {})
    data["id"] = str(raw.get("id"))
    return data


def _property(props: Mapping[str, Any], name: str | None) -> Any:
    """A configured property's value; None when unset or empty (HubSpot sends "" for a
    property cleared)."""
    if name is None:
        return None
    value = props.get(name)
    return None if value == "" else value


def company(raw: Mapping[str, Any], owners: Mapping[str, str], needs: Needs) -> CrmRecord:
    """A company as a customer record in the neutral form, its owner's name looked up."""
    at = changed_at(raw)
    props = raw.get("properties") or {}
    record_id = str(raw.get("id"))
    owner_id = _property(props, OWNER)
    c = needs.customer
    data: dict[str, Any] = {
        "id": record_id,
        "name": _property(props, "name"),
        "segment": _property(props, c.segment.name),
        "owner_id": str(owner_id) if owner_id is not None else None,
        "owner_name": owners.get(str(owner_id)) if owner_id is not None else None,
        "satisfaction": _property(props, c.satisfaction.name if c.satisfaction else None),
        "project_keys": _property(props, c.project_keys.name if c.project_keys else None),
        # The companies merged into this one (their ids are gone: links to them are its).
        "merged_ids": [i for i in map(canonical_id, merged_ids(raw)) if i is not None],
        "changed_at": at.isoformat(),
        "deleted": False,
    }
    return CrmRecord(record_id, at, data, customer_id=record_id)


def escalated(props: Mapping[str, Any], settings: HubSpotSettings) -> bool:
    """The configured escalation rule: priority HIGH/URGENT, or a truthy property."""
    if settings.escalation == "property" and settings.escalation_property:
        value = props.get(settings.escalation_property)
        return str(value or "").strip().lower() in ("true", "yes", "1", "y", "on")
    return str(props.get("hs_ticket_priority") or "").upper() in ESCALATED_PRIORITIES


def ticket(
    raw: Mapping[str, Any],
    company_id: str | None,
    closed_stages: frozenset[str],
    settings: HubSpotSettings,
) -> CrmRecord:
    """A ticket as a case record in the neutral form: closed by its pipeline stage,
    escalated by the configured rule, of the company it is associated to."""
    at = changed_at(raw)
    props = raw.get("properties") or {}
    record_id = str(raw.get("id"))
    closed = str(props.get("hs_pipeline_stage") or "") in closed_stages
    is_escalated = escalated(props, settings)
    data = {
        "id": record_id,
        "customer_id": company_id,
        "closed": closed,
        "escalated": is_escalated,
        "deleted": False,
    }
    return CrmRecord(
        record_id, at, data, customer_id=company_id, closed=closed, escalated=is_escalated
    )


def feedback(raw: Mapping[str, Any], company_id: str | None, needs: Needs) -> CrmRecord:
    """A feedback submission as a survey answer (neutral form) of its contact's company."""
    survey = needs.survey
    assert survey is not None
    at = changed_at(raw)
    props = raw.get("properties") or {}
    record_id = str(raw.get("id"))
    score = _property(props, survey.score_field.name)
    answered = _moment(props.get(survey.date_field.name))
    data = {
        "id": record_id,
        "customer_id": company_id,
        "score": score,
        "answered_at": answered.isoformat() if answered is not None else None,
        "deleted": False,
    }
    return CrmRecord(
        record_id,
        at,
        data,
        customer_id=company_id,
        score=_number(score),
        answered_at=answered,
    )


def problem(needs: Needs, kind: Kind, record: CrmRecord) -> str | None:
    """Why the model cannot read ``record`` (one line naming the property, what it holds
    and what it should hold), or None. HubSpot sends every property as text: a score
    that is not a finite number would otherwise read as "no score" and hide the customer's
    (dis)satisfaction, so it is set aside with its reason instead."""
    if kind == CUSTOMER:
        satisfaction = needs.customer.satisfaction
        name, value = (satisfaction.name if satisfaction else None), record.data.get("satisfaction")
        what = "company property"
    elif kind == SURVEY and needs.survey is not None:
        name, value = needs.survey.score_field.name, record.data.get("score")
        what = "feedback submission property"
    else:
        return None
    if value is None or _number(value) is not None:
        return None
    return f"{what} {name} is {str(value)[:80]!r}, not a number"


def plain(raw: Mapping[str, Any], company_field: str | None = None) -> CrmRecord:
    """Any other record (the report object): its properties flat, with ``id``; a report
    held in company properties (``company_field`` given) names its company there, as a
    custom object's record does."""
    data = _flat(raw)
    if company_field is not None:
        data[company_field] = data["id"]
    return CrmRecord(str(raw.get("id")), changed_at(raw), data)


def canonical_id(value: object) -> str | None:
    """A HubSpot record id in its one form, the digits (a whole number, or text of ASCII
    digits, trimmed); None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if text.isascii() and text.isdigit() and len(text) <= 20 else None


def form(needs: Needs) -> RecordForm:
    """How HubSpot writes what the model reads: numeric ids; stored customers are already
    in the neutral form (``needs`` is taken for the seam's symmetry with other CRMs)."""
    del needs
    return RecordForm(canonical_id, dict)


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        return parse_timestamp(text)
    except (ValueError, OverflowError):
        return None
