"""What each kind of the CRM seam (:mod:`connectors.crm`) is in Salesforce.

Customers are Accounts, cases are Cases, survey answers and the report object are the
objects the config names. Here the engine's neutral description of a cycle
(:class:`~connectors.crm.Needs`) becomes the objects and fields to select, and a record
read becomes a :class:`~connectors.crm.CrmRecord` (no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors import soql
from connectors.crm import (
    CASE,
    CUSTOMER,
    SURVEY,
    CrmField,
    CrmObject,
    CrmRecord,
    Kind,
    Needs,
    Read,
    report_object,
    streams_of,
)
from connectors.salesforce.changes import MASTER, ChangeQuery
from connectors.salesforce.paging import MODSTAMP
from connectors.salesforce.pull import ModstampCursor
from connectors.salesforce.records import CASE_FIELDS, CASE_OBJECT, CUSTOMER_OBJECT, neutral
from connectors.times import parse_timestamp

_STANDARD_OBJECT = "a standard object"
_STANDARD_FIELD = "a standard field"


def streams(needs: Needs) -> dict[Kind, str]:
    """The object each kind is read from and written to."""
    return streams_of(needs, CUSTOMER_OBJECT, CASE_OBJECT)


def customer_fields(needs: Needs) -> tuple[str, ...]:
    """The Account fields a cycle selects. The owner's name comes as Salesforce gives it:
    the Owner relationship, rendered as {"Owner": {"attributes": ..., "Name": ...}}
    (OwnerId alone is only an Id)."""
    customer = needs.customer
    names = ["Name", customer.segment.name, "OwnerId", "Owner.Name"]
    if customer.satisfaction is not None:
        names.append(customer.satisfaction.name)
    if customer.project_keys is not None:
        names.append(customer.project_keys.name)
    return tuple(dict.fromkeys(names))


def selected(needs: Needs, kind: Kind) -> tuple[str, ...]:
    """The fields selected for ``kind`` (Id, SystemModstamp and IsDeleted come anyway)."""
    if kind == CUSTOMER:
        return customer_fields(needs)
    if kind == CASE:
        return CASE_FIELDS
    if kind == SURVEY:
        survey = needs.survey
        if survey is None:
            raise ValueError("the config reads no survey object")
        return (survey.customer_field.name, survey.score_field.name, survey.date_field.name)
    report = needs.report
    return tuple(dict.fromkeys([report.external_id.name, *(f.name for f in report.fields)]))


def query(needs: Needs, read: Read) -> ChangeQuery:
    """The query of one read: since its cursor, or the records with its ids."""
    sobject = streams(needs)[read.kind]
    fields = selected(needs, read.kind)
    merges = (MASTER,) if read.kind == CUSTOMER else ()
    if read.ids is not None:
        where = soql.in_("Id", list(read.ids))
        return ChangeQuery(sobject, fields, None, where, kind=read.kind, optional=merges)
    cursor = ModstampCursor.from_json(read.cursor) if read.cursor else None
    return ChangeQuery(sobject, fields, cursor, kind=read.kind, optional=merges)


def objects(needs: Needs) -> list[CrmObject]:
    """The objects and fields a cycle uses, where the config sets each (for `check`)."""
    customer = needs.customer
    account = [
        CrmField("Name", _STANDARD_FIELD),
        CrmField("OwnerId", _STANDARD_FIELD),
        CrmField(customer.segment.name, customer.segment.setting),
    ]
    for extra in (customer.satisfaction, customer.project_keys):
        if extra is not None:
            account.append(CrmField(extra.name, extra.setting))
    found = [
        CrmObject(CUSTOMER, CUSTOMER_OBJECT, _STANDARD_OBJECT, tuple(account)),
        CrmObject(
            CASE,
            CASE_OBJECT,
            _STANDARD_OBJECT,
            tuple(CrmField(name, _STANDARD_FIELD) for name in CASE_FIELDS),
        ),
    ]
    if needs.survey is not None:
        survey = needs.survey
        found.append(
            CrmObject(
                SURVEY,
                survey.object.name,
                survey.object.setting,
                tuple(
                    CrmField(f.name, f.setting)
                    for f in (survey.customer_field, survey.score_field, survey.date_field)
                ),
            )
        )
    found.append(report_object(needs))
    return found


def record(needs: Needs, kind: Kind, raw: dict[str, Any]) -> CrmRecord:
    """One record read (checked by the paginator: an Id, a readable SystemModstamp; and
    by :func:`connectors.salesforce.records.problem`), its data in the neutral form."""
    record_id = str(raw["Id"])
    changed_at = parse_timestamp(str(raw[MODSTAMP]))
    data = neutral(needs, kind, raw)
    if kind == CUSTOMER:
        return CrmRecord(record_id, changed_at, data, customer_id=record_id)
    if kind == CASE:
        return CrmRecord(
            record_id,
            changed_at,
            data,
            customer_id=_id(raw.get("AccountId")),
            closed=bool(raw.get("IsClosed")),
            escalated=bool(raw.get("IsEscalated")),
        )
    if kind == SURVEY and needs.survey is not None:
        survey = needs.survey
        return CrmRecord(
            record_id,
            changed_at,
            data,
            customer_id=_id(raw.get(survey.customer_field.name)),
            score=_number(raw.get(survey.score_field.name)),
            answered_at=_moment(raw.get(survey.date_field.name)),
        )
    return CrmRecord(record_id, changed_at, data)


def _id(value: Any) -> str | None:
    return str(value) if value else None


def _number(value: Any) -> float | None:
    # Unreadable values come back None: the model's check sets such a record aside
    # before anything stores it.
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_timestamp(str(value))
    except ValueError:
        return None


def cursor_json(cursor: ModstampCursor | None) -> dict[str, Any] | None:
    """A page's cursor as the engine stores it."""
    return dict(cursor.to_json()) if cursor is not None else None


def describe_fields(described: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A describe's fields by lower-case API name."""
    return {str(f.get("name")).lower(): dict(f) for f in described.get("fields") or []}
