"""HubSpot's side of discovery (`init --discover`, `check --online` hints and scopes): the
company properties for customer group, satisfaction and the project-key link, the survey
answers (feedback submissions) and the report object (a custom object with a unique
property, else the companies themselves), judged from the properties API and a sample of
records by type and value, not by name; the scopes the token lacks; and how a company id
in a Jira field is recognised.

:class:`HubSpotDiscovery` spends the calls (one batch read of the sampled company ids, the
company properties, one page of companies, the custom object schemas and their
properties, the feedback submission properties and one page of them); every decision is
a pure function of the answers (:func:`judge`). :meth:`HubSpotDiscovery.missing_access`
calls each endpoint a cycle needs once, as cheaply as HubSpot allows (a list of one
record, an empty batch), and collects the scopes the 403s name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from connectors.crm import Needs
from connectors.discovery import Candidate, Choice, CrmChoices, CrmTerms, Lacking, span
from connectors.exceptions import AuthError, RemoteError
from connectors.hubspot.kinds import COMPANIES, CONTACTS, FEEDBACK, OWNER, TICKETS, canonical_id
from connectors.hubspot.pull import MERGED
from connectors.hubspot.search import PAGE_SIZE
from mappings.normalise_crm import project_keys_of

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector

#: Companies one sample reads (one list call: HubSpot's page maximum).
SAMPLE_COMPANIES: Final = PAGE_SIZE
#: Feedback submissions one sample reads.
SAMPLE_FEEDBACK: Final = PAGE_SIZE
#: Custom objects whose properties are read (one call each).
MAX_CUSTOM_OBJECTS: Final = 8
#: The example config's [satisfaction] scale.
DEFAULT_SCALE: Final = 5
COMPANY_SECTION: Final = "crm.hubspot.company"
#: Feedback submissions' standard properties: the score and when it was given; the
#: company is reached through the answering contact (``account_field`` names it).
SURVEY_SCORE: Final = "hs_response_value"
SURVEY_DATE: Final = "hs_submission_timestamp"
SURVEY_TYPE: Final = "hs_survey_type"
SURVEY_COMPANY: Final = "company"
#: The report object and its key as README (and the sandbox portal) name them.
REPORT_OBJECT: Final = "jira_project_status"
REPORT_KEY: Final = "jira_sync_key"
#: The HubSpot names of the CRM-neutral config keys, as ``init --crm hubspot`` writes them
#: (the properties README tells a portal's admin to create, and the sandbox portal holds).
REPORT_PROPERTIES: Final[tuple[tuple[str, str], ...]] = (
    ("account", "company_id"),
    ("project_key", "jira_project_key"),
    ("issues_total", "issues_total"),
    ("issues_done", "issues_done"),
    ("issues_in_progress", "issues_in_progress"),
    ("issues_to_do", "issues_to_do"),
    ("issues_overdue", "issues_overdue"),
    ("percent_complete", "percent_complete"),
    ("health", "health"),
    ("health_reasons", "health_reasons"),
    ("next_milestone", "next_milestone"),
    ("next_milestone_date", "next_milestone_date"),
    ("forecast_date", "forecast_date"),
    ("summary", "summary"),
    ("last_synced", "last_synced"),
)
CONFIG_NAMES: Final[tuple[tuple[str, str, str], ...]] = (
    ("link", "jira_field", "HubSpot Company"),
    ("link", "crm_field", "jira_project_keys"),
    ("satisfaction.survey", "object", FEEDBACK),
    ("satisfaction.survey", "account_field", SURVEY_COMPANY),
    ("satisfaction.survey", "score_field", SURVEY_SCORE),
    ("satisfaction.survey", "date_field", SURVEY_DATE),
    ("push.crm", "object", REPORT_OBJECT),
    ("push.crm", "external_id_field", REPORT_KEY),
    *(("push.crm.fields", model, prop) for model, prop in REPORT_PROPERTIES),
)

_NUMBER: Final = "number"
_TEXT_FIELD_TYPES: Final = frozenset({"text", "textarea"})
_ENUM_FIELD_TYPES: Final = frozenset({"select", "radio"})
#: Properties every object carries or HubSpot fills itself: never a candidate.
_NOT_CANDIDATES: Final = frozenset({OWNER, MERGED, "name", "domain"})


def _props(answer: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    found = (answer or {}).get("properties") or []
    return [p for p in found if isinstance(p, Mapping) and p.get("name")]


def _custom(info: Mapping[str, Any]) -> bool:
    """A property the portal's admin made (HubSpot's own are ``hubspotDefined`` or hs_)."""
    name = str(info.get("name") or "")
    return not info.get("hubspotDefined") and not name.startswith("hs_")


def _usable(info: Mapping[str, Any]) -> bool:
    name = str(info.get("name") or "")
    return name not in _NOT_CANDIDATES and not info.get("hidden") and not info.get("calculated")


def _label(info: Mapping[str, Any]) -> str:
    """The label, when it says more than the internal name."""
    label = str(info.get("label") or "")
    plain = str(info.get("name") or "").replace("_", " ")
    return "" if label.casefold() in ("", plain.casefold()) else label


def _value(record: Mapping[str, Any], name: str) -> Any:
    value = (record.get("properties") or {}).get(name)
    return None if value in (None, "") else value


def _number(value: Any) -> float | None:
    """HubSpot sends numbers as text."""
    if value is None:
        return None
    try:
        found = float(str(value))
    except ValueError:
        return None
    return found if found == found and abs(found) != float("inf") else None


def segment_choice(
    properties: Sequence[Mapping[str, Any]], companies: Sequence[Mapping[str, Any]]
) -> Choice:
    """The customer group: a company dropdown (enumeration) property, the admin's own
    before HubSpot's, ranked by how many sampled companies hold a value."""
    ranked: list[tuple[tuple[int, int], Candidate]] = []
    for info in properties:
        if info.get("type") != "enumeration" or not _usable(info):
            continue
        if info.get("fieldType") not in _ENUM_FIELD_TYPES:
            continue  # checkboxes hold several values
        name = str(info["name"])
        values = [str(v) for v in (_value(r, name) for r in companies) if v is not None]
        common = [v for v, _ in Counter(values).most_common(5)]
        evidence = (
            f"dropdown property; {len(values)} of {len(companies)} sampled companies hold a value"
        )
        if common:
            evidence += ": " + ", ".join(common)
        candidate = Candidate(name, _label(info), evidence, len(values))
        ranked.append(((int(_custom(info)), len(values)), candidate))
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    chosen = ranked[0][1] if ranked else None
    return Choice(
        COMPANY_SECTION,
        "segment_field",
        chosen,
        tuple(c for _, c in ranked[1:]),
        missing=(
            "companies have no dropdown property; create one for the customer groups and "
            "set segment_field to it"
        ),
    )


def satisfaction_choice(
    properties: Sequence[Mapping[str, Any]], companies: Sequence[Mapping[str, Any]]
) -> Choice:
    """The satisfaction score on companies: an admin's number property, ranked by how many
    sampled companies hold a score-like value (0 to 10)."""
    ranked: list[tuple[tuple[int, int], Candidate]] = []
    for info in properties:
        if info.get("type") != _NUMBER or not _custom(info) or not _usable(info):
            continue
        name = str(info["name"])
        held = [v for v in (_number(_value(r, name)) for r in companies) if v is not None]
        scores = [v for v in held if 0 <= v <= 10]
        evidence = (
            f"number property; {len(held)} of {len(companies)} sampled companies hold a value"
        )
        if held:
            evidence += f", {span(held)}"
        if held and max(held) > DEFAULT_SCALE:
            evidence += f"; above {DEFAULT_SCALE}: set [satisfaction] scale and thresholds to match"
        ranked.append(
            ((len(scores), len(held)), Candidate(name, _label(info), evidence, len(scores)))
        )
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    chosen = ranked[0][1] if ranked and ranked[0][1].hits else None
    return Choice(
        COMPANY_SECTION,
        "satisfaction_field",
        chosen,
        tuple(c for _, c in ranked if c is not chosen),
        missing="no company number property holds scores in the sample",
    )


def crm_link_choice(
    properties: Sequence[Mapping[str, Any]],
    companies: Sequence[Mapping[str, Any]],
    project_keys: Iterable[str],
) -> Choice:
    """The company property holding Jira project keys: the admin's text property in which
    most sampled companies name a project in scope (read as the sync reads it)."""
    keys = {k.upper() for k in project_keys}
    ranked: list[Candidate] = []
    for info in properties:
        if info.get("type") != "string" or info.get("fieldType") not in _TEXT_FIELD_TYPES:
            continue
        if not _custom(info) or not _usable(info):
            continue
        name = str(info["name"])
        naming = [r for r in companies if set(project_keys_of(_value(r, name))) & keys]
        named = sorted({k for r in naming for k in project_keys_of(_value(r, name))} & keys)
        evidence = (
            f"text property; {len(naming)} of {len(companies)} sampled companies name a "
            "project in scope"
        )
        if named:
            evidence += ": " + ", ".join(named[:5])
        ranked.append(Candidate(name, _label(info), evidence, len(naming)))
    ranked.sort(key=lambda c: c.hits, reverse=True)
    chosen = ranked[0] if ranked and ranked[0].hits else None
    return Choice(
        "link",
        "crm_field",
        chosen,
        tuple(c for c in ranked if c is not chosen),
        missing=(
            "no company text property names a project in scope in the sample; the "
            "crm_field rule is left out"
        ),
    )


def _report_fields(push_fields: Mapping[str, str] | None) -> dict[str, str]:
    return dict(push_fields or dict(REPORT_PROPERTIES))


def unique_choice(properties: Sequence[Mapping[str, Any]]) -> Choice:
    """The report object's unique property: its text properties with unique values."""
    found = [
        Candidate(str(p["name"]), _label(p), "text property with unique values", 1)
        for p in properties
        if p.get("hasUniqueValue") and p.get("type") == "string"
    ]
    return Choice(
        "push.crm",
        "external_id_field",
        found[0] if found else None,
        tuple(found[1:]),
        missing=(
            "the object has no unique text property: create one (Unique values) for the "
            "upsert, and name it in external_id_field"
        ),
    )


@dataclass(frozen=True)
class CustomObject:
    """One custom object: its schema (as ``/crm/v3/schemas`` lists it) and properties."""

    schema: Mapping[str, Any]
    properties: Sequence[Mapping[str, Any]]

    @property
    def name(self) -> str:
        return str(self.schema.get("name") or self.schema.get("objectTypeId") or "")

    @property
    def label(self) -> str:
        labels = self.schema.get("labels") or {}
        label = str(labels.get("singular") or "") if isinstance(labels, Mapping) else ""
        return "" if label.casefold() in ("", self.name.replace("_", " ").casefold()) else label

    @property
    def to_companies(self) -> bool:
        """Whether the schema defines an association to companies (``0-2``)."""
        return any(
            str(a.get("toObjectTypeId")) == "0-2"
            for a in self.schema.get("associations") or []
            if isinstance(a, Mapping)
        )


def report_choice(
    objects: Sequence[CustomObject],
    company_properties: Sequence[Mapping[str, Any]],
    push_fields: Mapping[str, str] | None,
) -> Choice:
    """The report object: the custom object holding most of the [push.crm.fields] with a
    unique property; without one (custom objects need an Enterprise hub), the companies
    themselves when they hold the report properties (one project's report each)."""
    wanted = _report_fields(push_fields)
    company_field = wanted.get("account", "")
    ranked: list[tuple[tuple[int, int], Candidate]] = []
    for found in objects:
        names = {str(p["name"]).lower() for p in found.properties}
        present = [w for w in wanted.values() if w.lower() in names]
        lacking = [w for w in wanted.values() if w.lower() not in names]
        if not present:
            continue
        unique = unique_choice(found.properties).chosen
        evidence = (
            f"custom object; holds all {len(wanted)} report properties"
            if not lacking
            else f"custom object; holds {len(present)} of the {len(wanted)} report properties; "
            f"lacks {', '.join(lacking)}: create them (README) first"
        )
        also: tuple[tuple[str, str], ...] = ()
        if unique is not None:
            evidence += f"; unique property {unique.value}"
            also = (("external_id_field", unique.value),)
        else:
            evidence += "; has no unique text property: add one (Unique values) for the upsert"
        if not found.to_companies:
            evidence += "; no association to companies: define one in the object's schema"
        score = (int(unique is not None) + int(found.to_companies), len(present))
        ranked.append((score, Candidate(found.name, found.label, evidence, len(present), also)))
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    candidates = [c for _, c in ranked]
    on_companies = {str(p["name"]).lower() for p in company_properties}
    own = [w for w in wanted.values() if w != company_field]
    present = [w for w in own if w.lower() in on_companies]
    if present and len(present) * 2 >= len(own):
        lacking = [w for w in own if w.lower() not in on_companies]
        evidence = (
            "the companies' own properties (for each company's main project; custom objects "
            f"need an Enterprise hub); they hold {len(present)} of the {len(own)} report "
            "properties"
        )
        if lacking:
            evidence += f"; lacks {', '.join(lacking)}: create them (README) first"
        key = _report_key(company_properties)
        also = (("external_id_field", key),) if key else ()
        candidates.append(Candidate(COMPANIES, "", evidence, len(present), also))
    shown = ", ".join(list(wanted.values())[:4])
    return Choice(
        "push.crm",
        "object",
        candidates[0] if candidates else None,
        tuple(candidates[1:]),
        missing=(
            f"no custom object holds the report properties ({shown}, ...), nor do the "
            "companies: create the report object or the company properties (README) and "
            "run check --online"
        ),
    )


def _report_key(properties: Sequence[Mapping[str, Any]]) -> str | None:
    """The company property that holds a report's key (README's name), when there is one."""
    return REPORT_KEY if any(p.get("name") == REPORT_KEY for p in properties) else None


def survey_choice(
    properties: Sequence[Mapping[str, Any]] | None,
    answers: Sequence[Mapping[str, Any]],
    survey_types: Sequence[str],
) -> Choice:
    """The survey answers: feedback submissions (NPS, CSAT, CES), when the portal holds
    answers of the configured types (``properties`` None: the app may not read them)."""
    missing = "the portal holds no feedback submissions (Service Hub surveys)"
    if properties is None:
        return Choice("satisfaction.survey", "object", None, missing=missing)
    names = {str(p.get("name")) for p in properties}
    if not {SURVEY_SCORE, SURVEY_DATE} <= names:
        missing = f"feedback submissions lack {SURVEY_SCORE} or {SURVEY_DATE}"
        return Choice("satisfaction.survey", "object", None, missing=missing)
    by_type: dict[str, list[float]] = {}
    for answer in answers:
        score = _number(_value(answer, SURVEY_SCORE))
        kind = str(_value(answer, SURVEY_TYPE) or "?")
        if score is not None:
            by_type.setdefault(kind, []).append(score)
    wanted = {t.upper() for t in survey_types}
    read = sum(len(v) for t, v in by_type.items() if t.upper() in wanted)
    if not read:
        seen = ", ".join(sorted(by_type)) or "none"
        return Choice(
            "satisfaction.survey",
            "object",
            None,
            missing=(
                f"no sampled feedback submission is of [crm.hubspot] survey_types "
                f"({', '.join(survey_types)}); types seen: {seen}"
            ),
        )
    seen = "; ".join(f"{t} {len(v)} ({span(v)})" for t, v in sorted(by_type.items()))
    evidence = (
        f"feedback submissions, read through their contact's company; {len(answers)} "
        f"sampled: {seen}; survey_types reads {', '.join(survey_types)}"
    )
    highest = max(max(v) for t, v in by_type.items() if t.upper() in wanted)
    if highest > DEFAULT_SCALE:
        evidence += (
            f'; above {DEFAULT_SCALE}: with source = "survey" set [satisfaction] scale '
            "and thresholds to match (NPS is 0 to 10)"
        )
    also = (
        ("account_field", SURVEY_COMPANY),
        ("score_field", SURVEY_SCORE),
        ("date_field", SURVEY_DATE),
    )
    return Choice(
        "satisfaction.survey",
        "object",
        Candidate(FEEDBACK, "", evidence, read, also),
        missing=missing,
    )


TERMS = CrmTerms("HubSpot", "company", "companies", canonical_id)


def judge(
    company_properties: Sequence[Mapping[str, Any]],
    companies: Sequence[Mapping[str, Any]],
    objects: Sequence[CustomObject],
    feedback_properties: Sequence[Mapping[str, Any]] | None,
    answers: Sequence[Mapping[str, Any]],
    project_keys: Iterable[str],
    push_fields: Mapping[str, str] | None = None,
    survey_types: Sequence[str] = ("NPS",),
) -> CrmChoices:
    """Every choice of HubSpot's side, from the company properties, the sampled
    companies, the custom objects, and the feedback submissions' properties and sample."""
    return CrmChoices(
        segment=segment_choice(company_properties, companies),
        satisfaction=satisfaction_choice(company_properties, companies),
        crm_link=crm_link_choice(company_properties, companies, project_keys),
        survey=survey_choice(feedback_properties, answers, survey_types),
        report=report_choice(objects, company_properties, push_fields),
    )


# -- scopes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One cheap call that needs a scope, and what the cycle does with it."""

    scope: str
    needed_for: str
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None


def probes(crm: HubSpotConnector, needs: Needs, upload: bool) -> list[Probe]:
    """The calls that prove each scope a cycle with ``needs`` uses (at most one per
    scope). Writes are proved by an empty batch, which writes nothing."""
    one = {"limit": 1}
    empty: dict[str, list[Any]] = {"inputs": []}
    objects = "/crm/v3/objects"
    found = [
        Probe(
            "crm.objects.companies.read", "to read companies", "GET", f"{objects}/{COMPANIES}", one
        ),
        Probe(
            "crm.objects.owners.read", "to read the companies' owners", "GET", "/crm/v3/owners", one
        ),
        Probe("tickets", "to read tickets and their pipelines", "GET", f"{objects}/{TICKETS}", one),
    ]
    if needs.survey is not None:
        survey = crm.object_type(needs.survey.object.name) or needs.survey.object.name
        found += [
            Probe(
                "crm.objects.feedback_submissions.read",
                "to read survey answers (feedback submissions)",
                "GET",
                f"{objects}/{survey}",
                one,
            ),
            Probe(
                "crm.objects.contacts.read",
                "to reach a survey answer's company through its contact",
                "GET",
                f"{objects}/{CONTACTS}",
                one,
            ),
        ]
    found.append(
        Probe(
            "crm.schemas.custom.read",
            "to find the custom report object (without it reports go to company properties)",
            "GET",
            "/crm/v3/schemas",
        )
    )
    name = needs.report.object.name
    target = crm.report_type(name)
    if target == COMPANIES:
        found.append(
            Probe(
                "crm.objects.companies.write",
                "to write the progress reports into company properties",
                "POST",
                f"{objects}/{COMPANIES}/batch/update",
                json=empty,
            )
        )
    if name.lower() != COMPANIES:
        # A custom object the schemas did not show (their scope lacking) is tried by its
        # name: a portal without it answers 400, which proves nothing is missing.
        custom = target if target != COMPANIES else name
        found += [
            Probe(
                "crm.objects.custom.read",
                f"to read the progress reports in {name} (reconcile)",
                "GET",
                f"{objects}/{custom}",
                one,
            ),
            Probe(
                "crm.objects.custom.write",
                f"to upsert the progress reports into {name}",
                "POST",
                f"{objects}/{custom}/batch/upsert",
                json=empty,
            ),
        ]
    if upload:
        found += [
            Probe(
                "files", "to upload the HTML reports ([report] upload)", "GET", "/files/v3/files/0"
            ),
            Probe(
                "crm.objects.contacts.write",
                "to post the HTML reports as notes on companies ([report] upload)",
                "POST",
                f"{objects}/notes/batch/create",
                json=empty,
            ),
        ]
    return found


def scope_fix(scope: str, auth: str) -> str:
    """What to do about a scope the token lacks."""
    if auth == "oauth":
        return (
            f"add scope {scope} to the OAuth app's scopes, then re-authorize it in the "
            "portal and put the new refresh token in [crm.hubspot] refresh_token"
        )
    return (
        f"add scope {scope} to the private app (Settings > Integrations > Private apps > "
        "the app > Scopes); its access token stays the same"
    )


class HubSpotDiscovery:
    """HubSpot's side of discovery on a signed-in connector."""

    terms = TERMS

    def __init__(self, crm: HubSpotConnector) -> None:
        self.crm = crm

    def known_customers(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are companies HubSpot holds (one batch read, at most 100)."""
        wanted = sorted({cid for cid in (canonical_id(i) for i in ids) if cid})[:PAGE_SIZE]
        if not wanted:
            return set()
        answer = self.crm.call(
            f"read {len(wanted)} companies",
            "POST",
            f"/crm/v3/objects/{COMPANIES}/batch/read",
            json={"properties": ["name"], "inputs": [{"id": i} for i in wanted]},
        )
        found = (answer or {}).get("results") or []
        return {str(r.get("id")) for r in found if isinstance(r, Mapping)} & set(wanted)

    def company_sample(self) -> tuple[list[Mapping[str, Any]], list[dict[str, Any]]]:
        """The company properties and one page of companies with the candidates (two
        calls)."""
        properties = _props(self.crm.describe(COMPANIES))
        wanted = [
            str(p["name"])
            for p in properties
            if _usable(p) and p.get("type") in ("enumeration", _NUMBER, "string")
        ]
        answer = self.crm.call(
            "read a sample of companies",
            "GET",
            f"/crm/v3/objects/{COMPANIES}",
            params={"limit": SAMPLE_COMPANIES, "properties": ",".join(wanted)},
        )
        records = [dict(r) for r in (answer or {}).get("results") or [] if isinstance(r, Mapping)]
        return properties, records

    def custom_objects(self, preferred: Sequence[str] = ()) -> list[CustomObject]:
        """The custom object schemas (one call, held by the connector), then the properties
        of a few, ``preferred`` names first."""
        schemas = self.crm.schemas()
        lowered = [p.lower() for p in preferred]

        def rank(schema: Mapping[str, Any]) -> int:
            names = {str(schema.get(k) or "").lower() for k in ("name", "objectTypeId")}
            hits = [lowered.index(n) for n in names if n in lowered]
            return min(hits) if hits else len(lowered)

        chosen = sorted(schemas, key=rank)[:MAX_CUSTOM_OBJECTS]
        return [
            CustomObject(s, _props(self.crm.describe(str(s.get("objectTypeId") or s.get("name")))))
            for s in chosen
        ]

    def feedback_sample(self) -> tuple[list[Mapping[str, Any]] | None, list[dict[str, Any]]]:
        """The feedback submissions' properties and one page of them (two calls); (None, [])
        when the app may not read them."""
        try:
            properties = _props(self.crm.describe(FEEDBACK))
            answer = self.crm.call(
                "read a sample of feedback submissions",
                "GET",
                f"/crm/v3/objects/{FEEDBACK}",
                params={
                    "limit": SAMPLE_FEEDBACK,
                    "properties": ",".join((SURVEY_TYPE, SURVEY_SCORE, SURVEY_DATE)),
                },
            )
        except (AuthError, RemoteError):  # the scope lacking (check names it), or no object
            return None, []
        records = [dict(r) for r in (answer or {}).get("results") or [] if isinstance(r, Mapping)]
        return properties, records

    def choices(
        self, project_keys: Sequence[str], push_fields: Mapping[str, str] | None
    ) -> CrmChoices:
        properties, companies = self.company_sample()
        objects = self.custom_objects((REPORT_OBJECT,))
        feedback, answers = self.feedback_sample()
        return judge(
            properties,
            companies,
            objects,
            feedback,
            answers,
            project_keys,
            push_fields,
            self.crm.settings.survey_types,
        )

    def hints(
        self,
        roles: set[str],
        project_keys: Sequence[str],
        push_fields: Mapping[str, str] | None,
        report_object: str,
    ) -> dict[str, Choice]:
        """Companies are sampled only when a company property failed, objects read only
        when an object did."""
        choices: dict[str, Choice] = {}
        if roles & {"segment", "satisfaction", "crm_link"}:
            properties, companies = self.company_sample()
            choices["segment"] = segment_choice(properties, companies)
            choices["satisfaction"] = satisfaction_choice(properties, companies)
            choices["crm_link"] = crm_link_choice(properties, companies, project_keys)
        if "report" in roles:
            objects = self.custom_objects((report_object,))
            on_companies = _props(self.crm.describe(COMPANIES))  # held when sampled above
            choices["report"] = report_choice(objects, on_companies, push_fields)
        if "survey" in roles:
            feedback, answers = self.feedback_sample()
            choices["survey"] = survey_choice(feedback, answers, self.crm.settings.survey_types)
        if "external_id" in roles:
            # Held: check read the report object's properties already.
            target = self.crm.report_type(report_object)
            choices["external_id"] = unique_choice(_props(self.crm.describe(target)))
        return {role: choice for role, choice in choices.items() if role in roles}

    def missing_access(self, needs: Needs, upload: bool = False) -> tuple[int, list[Lacking]]:
        """(calls made, what the token may not do): each scope a cycle needs proved by one
        cheap call; a 403 naming the scope is collected, any other answer proves it."""
        lacking: list[Lacking] = []
        before = self.crm.meter.total
        for probe in probes(self.crm, needs, upload):
            try:
                self.crm.call(
                    f"check the scope {probe.scope}",
                    probe.method,
                    probe.path,
                    params=probe.params,
                    json=probe.json,
                )
            except AuthError as exc:
                if "scope" not in exc.message:
                    raise  # refused for another reason: the sign-in's or the user's
                named = _named_scopes(exc) or [probe.scope]
                for scope in named:
                    fix = scope_fix(scope, self.crm.settings.auth)
                    lacking.append(Lacking(f"scope {scope}", f"needed {probe.needed_for}; {fix}"))
            except RemoteError:
                continue  # refused for another reason (404, 400): the scope is there
        made = self.crm.meter.total - before
        return made, list({x.name: x for x in lacking}.values())


def _named_scopes(exc: AuthError) -> list[str]:
    """The scopes a 403's message names (:func:`connectors.hubspot.errors.convert` puts
    them after ``lacks the scope``)."""
    marker = "lacks the scope "
    if marker not in exc.message:
        return []
    listed = exc.message.split(marker, 1)[1].split(";", 1)[0]
    return [s.strip() for s in listed.split(" or ") if s.strip()]


__all__ = [
    "CONFIG_NAMES",
    "REPORT_PROPERTIES",
    "TERMS",
    "CustomObject",
    "HubSpotDiscovery",
    "judge",
    "probes",
    "report_choice",
    "satisfaction_choice",
    "scope_fix",
    "segment_choice",
    "survey_choice",
    "unique_choice",
]
