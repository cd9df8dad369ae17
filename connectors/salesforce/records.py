"""Salesforce records as the model reads them: checked, then in the CRM-neutral form.

What a Salesforce record holds is named by Salesforce (``Name``, ``OwnerId``, ``Owner``,
``AccountId``, ``IsClosed``, ``SystemModstamp`` ...) and by the config (the segment and
satisfaction fields of ``[crm.salesforce.account]``, ``[link] crm_field``, the survey
object's fields). Here, and only here, those names become the roles the model reads (see
:mod:`mappings.normalise_crm`): a customer's ``id``, ``name``, ``segment``, ``owner_id``,
``owner_name``, ``satisfaction``, ``project_keys``, ``changed_at``, ``deleted``; a case's
``customer_id``, ``closed``, ``escalated``; a survey answer's ``customer_id``, ``score``,
``answered_at``.

First :func:`problem` checks a record by type, at the boundary: the model's normalisers
are tolerant (a value they cannot use reads as "no value"), so a CSAT of ``"high"`` would
silently become "no satisfaction data" and stay so. Such a record is set aside with the
reason instead of being stored. A key that is absent means "no value"; a key present with
a value of the wrong type is a problem. Values are quoted short (:func:`shown`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from connectors.crm import CASE, CUSTOMER, SURVEY, Kind, Needs, RecordForm
from connectors.salesforce.ids import canonical_id
from connectors.salesforce.paging import MODSTAMP
from mappings.dates import parse_date, parse_datetime
from mappings.validate import shown

__all__ = [
    "CASE_FIELDS",
    "CASE_OBJECT",
    "CUSTOMER_OBJECT",
    "form",
    "neutral",
    "problem",
    "stored_customer",
]

CUSTOMER_OBJECT: Final = "Account"
CASE_OBJECT: Final = "Case"
#: What a case is read with (besides Id, SystemModstamp and IsDeleted).
CASE_FIELDS: Final = ("AccountId", "IsClosed", "IsEscalated", "Status")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _numeric_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return math.isfinite(float(value.strip()))
    except ValueError:
        return False


def _is_time(value: object) -> bool:
    return isinstance(value, str) and (
        parse_datetime(value) is not None or parse_date(value) is not None
    )


_WANT: dict[str, tuple[Callable[[object], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "text"),
    "name": (lambda v: isinstance(v, str) and bool(v.strip()), "a name"),
    "id": (lambda v: canonical_id(v) is not None, "a Salesforce id"),
    "score": (lambda v: _is_number(v) or _numeric_text(v), "a number"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "time": (_is_time, "a date or time"),
    # A parent record (Owner.Name selected): an object whose Name is text or null.
    "owner": (
        lambda v: isinstance(v, Mapping) and isinstance(v.get("Name"), str | None),
        "a user with a Name",
    ),
}


def _checked(needs: Needs, kind: Kind) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The object a kind is read from, and its fields the model reads with what each
    should hold."""
    if kind == CUSTOMER:
        customer = needs.customer
        account = [("Name", "name"), (customer.segment.name, "text")]
        account += [("OwnerId", "id"), ("Owner", "owner")]
        if customer.satisfaction is not None:
            account.append((customer.satisfaction.name, "score"))
        if customer.project_keys is not None:
            account.append((customer.project_keys.name, "text"))
        return CUSTOMER_OBJECT, tuple(account)
    if kind == CASE:
        return CASE_OBJECT, (
            ("AccountId", "id"),
            ("IsClosed", "boolean"),
            ("IsEscalated", "boolean"),
            ("Status", "text"),
        )
    if kind == SURVEY and needs.survey is not None:
        survey = needs.survey
        return survey.object.name, (
            (survey.customer_field.name, "id"),
            (survey.score_field.name, "score"),
            (survey.date_field.name, "time"),
        )
    return "", ()


def problem(needs: Needs, kind: Kind, raw: Mapping[str, Any]) -> str | None:
    """Why the model cannot read ``raw``, a record of ``kind`` as Salesforce sent it, in
    one line naming the field, what it holds and what it should hold (None: it can, or
    the kind is not one the model reads)."""
    sobject, fields = _checked(needs, kind)
    for name, want in fields:
        value = raw.get(name)
        if value is None:
            if want == "name":  # required by Salesforce: a null is a garbled answer
                return f"{sobject}.{name} is {shown(value)}, but every {sobject} has one"
            continue
        test, wanted = _WANT[want]
        if not test(value):
            return f"{sobject}.{name} is {shown(value)}, not {wanted}"
    return None


def _customer(needs: Needs, raw: Mapping[str, Any]) -> dict[str, Any]:
    customer = needs.customer
    owner = raw.get("Owner")
    satisfaction, keys = customer.satisfaction, customer.project_keys
    return {
        "id": str(raw.get("Id") or ""),
        "name": raw.get("Name"),
        "segment": raw.get(customer.segment.name),
        "owner_id": raw.get("OwnerId"),
        "owner_name": owner.get("Name") if isinstance(owner, Mapping) else None,
        "satisfaction": raw.get(satisfaction.name) if satisfaction is not None else None,
        "project_keys": raw.get(keys.name) if keys is not None else None,
        "changed_at": raw.get(MODSTAMP),
        "deleted": raw.get("IsDeleted") is True,
    }


def neutral(needs: Needs, kind: Kind, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A Salesforce record of ``kind`` in the CRM-neutral form the model reads; a report
    record as it came (its fields are the ones the config names)."""
    if kind == CUSTOMER:
        return _customer(needs, raw)
    if kind == CASE:
        closed = raw.get("IsClosed")
        if closed is None:
            closed = str(raw.get("Status") or "").lower().startswith("closed")
        return {
            "id": str(raw.get("Id") or ""),
            "customer_id": raw.get("AccountId"),
            "closed": closed is True,
            "escalated": raw.get("IsEscalated") is True,
            "deleted": raw.get("IsDeleted") is True,
        }
    if kind == SURVEY and needs.survey is not None:
        survey = needs.survey
        return {
            "id": str(raw.get("Id") or ""),
            "customer_id": raw.get(survey.customer_field.name),
            "score": raw.get(survey.score_field.name),
            "answered_at": raw.get(survey.date_field.name),
            "deleted": raw.get("IsDeleted") is True,
        }
    return dict(raw)


def stored_customer(needs: Needs, data: Mapping[str, Any]) -> dict[str, Any]:
    """A customer as the state store holds it, in the neutral form. Stores written before
    the CRM seam hold the Account as Salesforce sent it (``Id``, ``Name``, ...): such a row
    is translated here, when it is read, until the next pull of it replaces it."""
    if "id" in data:
        return dict(data)
    return _customer(needs, data)


def form(needs: Needs) -> RecordForm:
    """How Salesforce writes what the model reads: 15- or 18-character ids, and Accounts
    stored before the CRM seam."""
    return RecordForm(canonical_id, lambda data: stored_customer(needs, data))
