"""What each kind of the CRM seam (:mod:`connectors.crm`) is in HubSpot (no I/O).

Customers are companies, cases are tickets (associated to companies), survey answers are
feedback submissions (reached through their contact's company), the report object is a
custom object or, without one, the companies themselves.

Each record's ``data`` holds HubSpot's properties flat (``name``, ``domain``, the
configured ones) with ``id``, and also the few facts under the names the engine's current
normaliser reads (``Id``, ``Name``, ``OwnerId``, ``Owner.Name``, ``SystemModstamp``;
``AccountId``, ``IsClosed``, ``IsEscalated``, ``Status``; the survey's configured customer
field), so that a HubSpot record reaches the unified model the way an Account does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from connectors.crm import (
    CASE,
    CUSTOMER,
    REPORT,
    SURVEY,
    CrmField,
    CrmObject,
    CrmRecord,
    Kind,
    Needs,
)
from connectors.hubspot.pull import MERGED, modified_ms
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
    found: dict[Kind, str] = {CUSTOMER: COMPANIES, CASE: TICKETS}
    if needs.survey is not None:
        found[SURVEY] = needs.survey.object.name
    found[REPORT] = needs.report.object.name
    return found


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
    r = needs.report
    written = (
        CrmField(r.external_id.name, r.external_id.setting, True, True),
        *(CrmField(f.name, f.setting, True) for f in r.fields),
    )
    found.append(CrmObject(REPORT, r.object.name, r.object.setting, written))
    return found


def changed_at(raw: Mapping[str, Any]) -> datetime:
    """When HubSpot last changed a record (checked by the pull: readable)."""
    ms = modified_ms(raw)
    if ms is None:
        raise ValueError(f"record {raw.get('id')} has no readable hs_lastmodifieddate")
    return datetime.fromtimestamp(ms / 1000, UTC)


def _flat(raw: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    data: dict[str, Any] = dict(raw.get("properties") or {})
    data["id"] = str(raw.get("id"))
    data["Id"] = data["id"]
    data["SystemModstamp"] = at.isoformat()
    return data


def company(raw: Mapping[str, Any], owners: Mapping[str, str]) -> CrmRecord:
    """A company as a customer record, its owner's name looked up."""
    at = changed_at(raw)
    data = _flat(raw, at)
    owner_id = data.get(OWNER) or None
    data["Name"] = data.get("name")
    data["OwnerId"] = owner_id
    data["Owner"] = {"Name": owners.get(str(owner_id))} if owner_id else None
    return CrmRecord(data["id"], at, data, customer_id=data["id"])


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
    """A ticket as a case record: closed by its pipeline stage, escalated by the rule."""
    at = changed_at(raw)
    data = _flat(raw, at)
    closed = str(data.get("hs_pipeline_stage") or "") in closed_stages
    is_escalated = escalated(data, settings)
    data.update(
        AccountId=company_id,
        IsClosed=closed,
        IsEscalated=is_escalated,
        Status="Closed" if closed else "Open",
    )
    return CrmRecord(
        data["id"], at, data, customer_id=company_id, closed=closed, escalated=is_escalated
    )


def feedback(raw: Mapping[str, Any], company_id: str | None, needs: Needs) -> CrmRecord:
    """A feedback submission as a survey answer of its contact's company."""
    survey = needs.survey
    assert survey is not None
    at = changed_at(raw)
    data = _flat(raw, at)
    data[survey.customer_field.name] = company_id
    return CrmRecord(
        data["id"],
        at,
        data,
        customer_id=company_id,
        score=_number(data.get(survey.score_field.name)),
        answered_at=_moment(data.get(survey.date_field.name)),
    )


def plain(raw: Mapping[str, Any]) -> CrmRecord:
    """Any other record (the report object)."""
    at = changed_at(raw)
    data = _flat(raw, at)
    return CrmRecord(data["id"], at, data)


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
