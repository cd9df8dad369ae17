"""Salesforce's side of discovery (`init --discover`, `check --online` hints): the Account
fields for customer group, satisfaction and the project-key link, and the survey and
report objects, judged from describes and a sample of Accounts by type and value, not by
name; and how an Account Id in a Jira field is recognised.

:class:`SalesforceDiscovery` spends the calls (one query of the sampled Account Ids, the
Account describe, one query of sampled Accounts, the global describe and the describes of
a few custom objects); every decision is a pure function of the answers (:func:`judge`)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from connectors.crm import CUSTOMER
from connectors.discovery import Candidate, Choice, CrmChoices, CrmTerms, number, span
from connectors.salesforce.ids import canonical_id
from mappings.normalise_crm import project_keys_of
from mappings.rules import DEFAULT_CRM_FIELDS

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector

#: Accounts one sample reads (one call).
SAMPLE_ACCOUNTS = 200
#: Looked at first among the custom objects: the example config's survey and report.
DEFAULT_OBJECTS = ("Survey_Response__c", "Jira_Project_Status__c")
#: Every Account Id starts with the Account key prefix.
ACCOUNT_ID_PREFIX = "001"

#: At most this many candidate fields go into the sampled Account query.
MAX_SAMPLED_FIELDS = 60
#: Custom objects described (one call each) when looking for the survey and report objects.
MAX_OBJECT_DESCRIBES = 8
#: The example config's [satisfaction] scale.
DEFAULT_SCALE = 5
#: Tie-breakers only (names are localised): survey objects and their score fields.
_SURVEY_NAME = re.compile(
    r"survey|response|feedback|nps|csat|satisf|umfrage|enqu[eê]te|调查|问卷|满意", re.IGNORECASE
)
_SCORE_NAME = re.compile(r"score|rating|nps|csat|wert|note|分", re.IGNORECASE)
_NUMBER_TYPES = frozenset({"double", "percent", "int"})  # currency is money, not a score
_TEXT_TYPES = frozenset({"string", "textarea"})
_DATE_TYPES = ("datetime", "date")


def _sf_fields(describe: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [f for f in describe.get("fields") or [] if isinstance(f, Mapping) and f.get("name")]


def _custom_field(info: Mapping[str, Any]) -> bool:
    return bool(info.get("custom")) or str(info.get("name", "")).endswith("__c")


def account_sample_fields(describe: Mapping[str, Any]) -> list[str]:
    """The Account fields one sampled query reads: every picklist, custom number and custom
    text field (capped)."""
    wanted = [
        str(f["name"])
        for f in _sf_fields(describe)
        if f.get("type") == "picklist"
        or (_custom_field(f) and f.get("type") in _NUMBER_TYPES | _TEXT_TYPES)
    ]
    return wanted[:MAX_SAMPLED_FIELDS]


def _sf_label(info: Mapping[str, Any]) -> str:
    """The label, when it says more than the API name."""
    label = str(info.get("label") or "")
    plain = str(info["name"]).removesuffix("__c").replace("_", " ")
    return "" if label.casefold() in ("", plain.casefold()) else label


def segment_choice(describe: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> Choice:
    """The customer group: an Account picklist, custom before standard, ranked by how many
    sampled Accounts hold a value."""
    ranked: list[tuple[tuple[int, int], Candidate]] = []
    for info in _sf_fields(describe):
        if info.get("type") != "picklist":
            continue
        name = str(info["name"])
        values = [str(r[name]) for r in records if isinstance(r.get(name), str) and r[name]]
        common = [v for v, _ in Counter(values).most_common(5)]
        evidence = f"picklist; {len(values)} of {len(records)} sampled Accounts hold a value"
        if common:
            evidence += ": " + ", ".join(common)
        candidate = Candidate(name, _sf_label(info), evidence, len(values))
        ranked.append(((int(_custom_field(info)), len(values)), candidate))
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    chosen = ranked[0][1] if ranked else None
    return Choice(
        "crm.salesforce.account",
        "segment_field",
        chosen,
        tuple(c for _, c in ranked[1:]),
        missing="Account has no picklist; set segment_field to the field of customer groups",
    )


def satisfaction_choice(
    describe: Mapping[str, Any], records: Sequence[Mapping[str, Any]]
) -> Choice:
    """The satisfaction score on Account: a custom number field, ranked by how many sampled
    Accounts hold a score-like value (0 to 10, or a percentage)."""
    ranked: list[tuple[tuple[int, int], Candidate]] = []
    for info in _sf_fields(describe):
        if not (_custom_field(info) and info.get("type") in _NUMBER_TYPES):
            continue
        name = str(info["name"])
        held = [v for v in (number(r.get(name)) for r in records) if v is not None]
        ceiling = 100 if info.get("type") == "percent" else 10
        scores = [v for v in held if 0 <= v <= ceiling]
        evidence = f"number field; {len(held)} of {len(records)} sampled Accounts hold a value"
        if held:
            evidence += f", {span(held)}"
        if held and max(held) > DEFAULT_SCALE:
            evidence += f"; above {DEFAULT_SCALE}: set [satisfaction] scale and thresholds to match"
        ranked.append(
            ((len(scores), len(held)), Candidate(name, _sf_label(info), evidence, len(scores)))
        )
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    chosen = ranked[0][1] if ranked and ranked[0][1].hits else None
    return Choice(
        "crm.salesforce.account",
        "satisfaction_field",
        chosen,
        tuple(c for _, c in ranked if c is not chosen),
        missing="no Account number field holds scores in the sample",
    )


def crm_link_choice(
    describe: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    project_keys: Iterable[str],
) -> Choice:
    """The Account field holding Jira project keys: the custom text field in which most
    sampled Accounts name a project in scope (read as the sync reads it)."""
    keys = {k.upper() for k in project_keys}
    ranked: list[Candidate] = []
    for info in _sf_fields(describe):
        if not (_custom_field(info) and info.get("type") in _TEXT_TYPES):
            continue
        name = str(info["name"])
        naming = [r for r in records if set(project_keys_of(r.get(name))) & keys]
        named = sorted({k for r in naming for k in project_keys_of(r.get(name))} & keys)
        evidence = (
            f"text field; {len(naming)} of {len(records)} sampled Accounts name a project in scope"
        )
        if named:
            evidence += ": " + ", ".join(named[:5])
        ranked.append(Candidate(name, _sf_label(info), evidence, len(naming)))
    ranked.sort(key=lambda c: c.hits, reverse=True)
    chosen = ranked[0] if ranked and ranked[0].hits else None
    return Choice(
        "link",
        "crm_field",
        chosen,
        tuple(c for c in ranked if c is not chosen),
        missing=(
            "no Account text field names a project in scope in the sample; the crm_field "
            "rule is left out"
        ),
    )


def _refers_to_account(info: Mapping[str, Any]) -> bool:
    return info.get("type") == "reference" and "Account" in (info.get("referenceTo") or [])


def _report_fields(push_fields: Mapping[str, str] | None) -> list[str]:
    return list((push_fields or dict(DEFAULT_CRM_FIELDS)).values())


def object_choices(
    describes: Sequence[Mapping[str, Any]],
    push_fields: Mapping[str, str] | None = None,
) -> tuple[Choice, Choice]:
    """(survey, report): among described custom objects, the report object is the one
    holding most of the [push.crm.fields] with an External ID text field, and a survey
    object one that refers to Account and holds a number and a date (and is not it)."""
    wanted = _report_fields(push_fields)
    reports: list[tuple[tuple[int, int], Candidate]] = []
    surveys: list[tuple[tuple[int, int], Candidate]] = []
    for describe in describes:
        name = str(describe.get("name") or "")
        fields = _sf_fields(describe)
        by_lower = {str(f["name"]).lower(): f for f in fields}
        present = [w for w in wanted if w.lower() in by_lower]
        lacking = [w for w in wanted if w.lower() not in by_lower]
        external = external_id_choice(describe).chosen
        accounts = [str(f["name"]) for f in fields if _refers_to_account(f)]
        label = _sf_label(describe)
        if accounts and present and (len(present) * 2 >= len(wanted) or external):
            evidence = (
                f"holds all {len(wanted)} report fields"
                if not lacking
                else f"holds {len(present)} of the {len(wanted)} report fields"
            )
            if lacking:
                evidence += f"; lacks {', '.join(lacking)}: create them (README) first"
            also: tuple[tuple[str, str], ...] = ()
            if external:
                evidence += f"; External ID {external.value}"
                also = (("external_id_field", external.value),)
            else:
                evidence += "; has no External ID text field: add one (Unique) for the upsert"
            reports.append(
                (
                    (int(bool(external)), len(present)),
                    Candidate(name, label, evidence, len(present), also),
                )
            )
            continue
        numbers = [f for f in fields if _custom_field(f) and f.get("type") in _NUMBER_TYPES]
        dates = [f for f in fields if _custom_field(f) and f.get("type") in _DATE_TYPES]
        dates.sort(key=lambda f: _DATE_TYPES.index(str(f.get("type"))))
        if not (accounts and numbers):
            continue
        numbers.sort(key=lambda f: not _SCORE_NAME.search(f"{f['name']} {f.get('label')}"))
        date = str(dates[0]["name"]) if dates else "CreatedDate"
        custom_accounts = [a for a in accounts if a.endswith("__c")] or accounts
        also = (
            ("account_field", custom_accounts[0]),
            ("score_field", str(numbers[0]["name"])),
            ("date_field", date),
        )
        evidence = (
            f"custom object; Account lookup {custom_accounts[0]}, number "
            f"{numbers[0]['name']}, {'date' if dates else 'created date'} {date}"
        )
        hinted = bool(_SURVEY_NAME.search(f"{name} {describe.get('label') or ''}"))
        surveys.append(((int(hinted), int(bool(dates))), Candidate(name, label, evidence, 1, also)))
    reports.sort(key=lambda pair: pair[0], reverse=True)
    surveys.sort(key=lambda pair: pair[0], reverse=True)
    report_list = [c for _, c in reports]
    survey_list = [c for _, c in surveys]
    names = ", ".join(wanted[:4])
    report = Choice(
        "push.crm",
        "object",
        report_list[0] if report_list else None,
        tuple(report_list[1:]),
        missing=(
            f"no custom object holds the report fields ({names}, ...) with an Account "
            "lookup: create the report object (README) and run check --online"
        ),
    )
    survey = Choice(
        "satisfaction.survey",
        "object",
        survey_list[0] if survey_list else None,
        tuple(survey_list[1:]),
        missing="no custom object holds survey responses (Account lookup, number, date)",
    )
    return survey, report


def objects_to_describe(
    global_describe: Sequence[Mapping[str, Any]], preferred: Sequence[str] = ()
) -> list[str]:
    """The custom objects worth one describe each: the ``preferred`` names (configured or
    defaults) first, then those named like surveys, then the rest, at most
    :data:`MAX_OBJECT_DESCRIBES`."""
    custom = [
        o
        for o in global_describe
        if str(o.get("name", "")).endswith("__c")
        and o.get("queryable", True)
        and not o.get("customSetting")
    ]
    lowered = [p.lower() for p in preferred]

    def rank(entry: Mapping[str, Any]) -> tuple[int, int]:
        name = str(entry["name"])
        first = lowered.index(name.lower()) if name.lower() in lowered else len(lowered)
        hinted = _SURVEY_NAME.search(f"{name} {entry.get('label') or ''}")
        return first, 0 if hinted else 1

    custom.sort(key=rank)
    return [str(o["name"]) for o in custom[:MAX_OBJECT_DESCRIBES]]


def external_id_choice(describe: Mapping[str, Any]) -> Choice:
    """The report object's External ID: its External ID text fields, unique ones first."""
    fields = [f for f in _sf_fields(describe) if f.get("externalId")]
    fields = [f for f in fields if f.get("type") in _TEXT_TYPES]
    fields.sort(key=lambda f: not f.get("unique"))
    candidates = [
        Candidate(str(f["name"]), _sf_label(f), "External ID text field", 1) for f in fields
    ]
    return Choice(
        "push.crm",
        "external_id_field",
        candidates[0] if candidates else None,
        tuple(candidates[1:]),
        missing="the object has no External ID text field: add one (Unique) for the upsert",
    )


def account_id(value: object) -> str | None:
    """The 18-character Account Id a Jira field value names (15 or 18 characters, the
    Account key prefix), read as the sync reads it; None for anything else."""
    found = canonical_id(value)
    return found if found is not None and found.startswith(ACCOUNT_ID_PREFIX) else None


TERMS = CrmTerms("Salesforce", "Account", "Accounts", account_id)


def judge(
    account: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    objects: Sequence[Mapping[str, Any]],
    project_keys: Iterable[str],
    push_fields: Mapping[str, str] | None = None,
) -> CrmChoices:
    """Every choice of Salesforce's side, from the Account describe, the sampled Accounts
    and the custom objects' describes."""
    survey, report = object_choices(objects, push_fields)
    return CrmChoices(
        segment=segment_choice(account, records),
        satisfaction=satisfaction_choice(account, records),
        crm_link=crm_link_choice(account, records, project_keys),
        survey=survey,
        report=report,
    )


class SalesforceDiscovery:
    """Salesforce's side of discovery on a signed-in connector."""

    terms = TERMS

    def __init__(self, crm: SalesforceConnector) -> None:
        self.crm = crm

    def known_customers(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are Accounts Salesforce holds (one query, at most 200 Ids)."""
        wanted = sorted(set(ids))[:200]
        if not wanted:
            return set()
        found = self.crm.ids_present(CUSTOMER, wanted)
        return {cid for cid in (canonical_id(i) for i in found) if cid}

    def account_sample(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The Account describe and the most recently changed Accounts (one query)."""
        account = self.crm.describe_kind(CUSTOMER)
        records = self.crm.sample(CUSTOMER, account_sample_fields(account), SAMPLE_ACCOUNTS)
        return account, [dict(r) for r in records]

    def custom_objects(self, preferred: Sequence[str]) -> list[dict[str, Any]]:
        """The global describe, then the describes of a few custom objects."""
        entries = self.crm.listed_objects()
        return [self.crm.describe(name) for name in objects_to_describe(entries, preferred)]

    def choices(
        self, project_keys: Sequence[str], push_fields: Mapping[str, str] | None
    ) -> CrmChoices:
        account, records = self.account_sample()
        objects = self.custom_objects(DEFAULT_OBJECTS)
        return judge(account, records, objects, project_keys, push_fields)

    def hints(
        self,
        roles: set[str],
        project_keys: Sequence[str],
        push_fields: Mapping[str, str] | None,
        report_object: str,
    ) -> dict[str, Choice]:
        """Accounts are sampled only when an Account field failed, custom objects
        described only when an object did."""
        choices: dict[str, Choice] = {}
        if roles & {"segment", "satisfaction", "crm_link"}:
            account, records = self.account_sample()
            choices["segment"] = segment_choice(account, records)
            choices["satisfaction"] = satisfaction_choice(account, records)
            choices["crm_link"] = crm_link_choice(account, records, project_keys)
        if roles & {"survey", "report"}:
            objects = self.custom_objects((DEFAULT_OBJECTS[0], report_object))
            choices["survey"], choices["report"] = object_choices(objects, push_fields)
        if "external_id" in roles:
            # Held: check described the report object already.
            choices["external_id"] = external_id_choice(self.crm.describe(report_object))
        return {role: choice for role, choice in choices.items() if role in roles}
