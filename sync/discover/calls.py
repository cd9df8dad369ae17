"""Discovery's calls: a handful per side, then the pure decisions of jira_fields and
crm_objects; and the same candidates as `check --online` hints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.crm import CUSTOMER, CrmConnector
from connectors.jira import JiraConnector
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.ids import canonical_id
from sync.discover.crm_objects import (
    account_sample_fields,
    crm_link_choice,
    external_id_choice,
    object_choices,
    objects_to_describe,
    satisfaction_choice,
    segment_choice,
)
from sync.discover.jira_fields import (
    account_link_choice,
    epic_link_choice,
    sample_fields,
    sampled_account_ids,
    story_points_choice,
)
from sync.discover.result import Choice, Discovery, Project

#: Issues and Accounts one sample reads (one call each).
SAMPLE_ISSUES = 100
SAMPLE_ACCOUNTS = 200


@dataclass(frozen=True)
class Sample:
    """What the two sites answered: every decision reads only this."""

    #: Jira's ``GET /field``.
    fields: Sequence[Mapping[str, Any]] = ()
    #: The sampled issues (raw, with the candidate fields).
    issues: Sequence[Mapping[str, Any]] = ()
    #: The sampled Account Ids that Salesforce holds (None: not asked).
    known: set[str] | None = None
    #: The Account describe and the sampled Accounts.
    account: Mapping[str, Any] = field(default_factory=dict)
    records: Sequence[Mapping[str, Any]] = ()
    #: Describes of the custom objects looked at.
    objects: Sequence[Mapping[str, Any]] = ()


def projects_in_reach(jira: JiraConnector) -> tuple[Project, ...]:
    """The projects the user can browse (one call)."""
    return tuple(
        Project(str(p["key"]), str(p.get("name") or p["key"]), bool(p.get("simplified")))
        for p in jira.projects()
    )


def _jira_sample(
    jira: JiraConnector, projects: Sequence[str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(/field, the sampled issues): the field list (one call) and one search."""
    fields = jira.field_catalog().fields
    wanted = sample_fields(fields)
    issues = jira.sample_issues(wanted, SAMPLE_ISSUES, projects) if wanted else []
    return fields, [dict(i) for i in issues]


def _known_accounts(crm: SalesforceConnector, ids: set[str]) -> set[str]:
    """Which of ``ids`` are Accounts Salesforce holds (one query, at most 200 Ids)."""
    if not ids:
        return set()
    found = crm.ids_present(CUSTOMER, sorted(ids)[:200])
    return {cid for cid in (canonical_id(i) for i in found) if cid}


def _account_sample(crm: SalesforceConnector) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Account describe and the most recently changed Accounts (one query)."""
    account = crm.describe_kind(CUSTOMER)
    records = crm.sample(CUSTOMER, account_sample_fields(account), SAMPLE_ACCOUNTS)
    return account, [dict(r) for r in records]


def _custom_objects(crm: SalesforceConnector, preferred: Sequence[str]) -> list[dict[str, Any]]:
    """The global describe, then the describes of a few custom objects."""
    entries = crm.listed_objects()
    return [crm.describe(name) for name in objects_to_describe(entries, preferred)]


def decide(
    projects: Sequence[str],
    in_reach: Sequence[Project],
    sample: Sample,
    push_fields: Mapping[str, str] | None = None,
) -> Discovery:
    """Every choice, from what the sites answered."""
    survey, report = object_choices(sample.objects, push_fields)
    return Discovery(
        projects=tuple(projects),
        in_reach=tuple(in_reach),
        account_link=account_link_choice(sample.fields, sample.issues, sample.known),
        story_points=story_points_choice(sample.fields, sample.issues),
        epic_link=epic_link_choice(sample.fields),
        crm_link=crm_link_choice(sample.account, sample.records, projects),
        segment=segment_choice(sample.account, sample.records),
        satisfaction=satisfaction_choice(sample.account, sample.records),
        survey=survey,
        report=report,
    )


#: Looked at first among the custom objects: the example config's survey and report.
DEFAULT_OBJECTS = ("Survey_Response__c", "Jira_Project_Status__c")


def discover(
    jira: JiraConnector,
    crm: SalesforceConnector,
    projects: Sequence[str],
    in_reach: Sequence[Project],
    push_fields: Mapping[str, str] | None = None,
) -> Discovery:
    """Sample both sites and decide (signed-in connectors; ConnectorError as they raise)."""
    fields, issues = _jira_sample(jira, projects)
    known = _known_accounts(crm, sampled_account_ids(fields, issues))
    account, records = _account_sample(crm)
    objects = _custom_objects(crm, DEFAULT_OBJECTS)
    sample = Sample(fields, issues, known, account, records, objects)
    return decide(projects, in_reach, sample, push_fields)


# -- check --online: the same candidates as hints -----------------------------------------


def jira_hints(jira: JiraConnector, wanted: Iterable[str]) -> dict[str, str]:
    """``{what: "did you mean ...?"}`` for the configured Jira fields that failed
    (``what``: ``account_link`` or ``story_points``, as in sync.remote.configured_fields):
    the field list held and one sampled search in the configured scope."""
    roles = set(wanted) & {"account_link", "story_points"}
    if not roles:
        return {}
    fields, issues = _jira_sample(jira, None)
    choices = {
        "account_link": account_link_choice(fields, issues),
        "story_points": story_points_choice(fields, issues),
    }
    hints = {role: choices[role].hint() for role in roles}
    return {role: hint for role, hint in hints.items() if hint}


#: What `check --online` can suggest on the Salesforce side.
CRM_ROLES = ("segment", "satisfaction", "crm_link", "survey", "report", "external_id")


def crm_hints(
    crm: CrmConnector,
    wanted: Iterable[str],
    project_keys: Sequence[str],
    push_fields: Mapping[str, str] | None,
    report_object: str,
) -> dict[str, str]:
    """``{role: "did you mean ...?"}`` for the configured Salesforce names that failed
    (``role``: one of :data:`CRM_ROLES`): Accounts are sampled only when an Account field
    failed, custom objects described only when an object did. Discovery reads
    Salesforce's describes: another CRM gets no hints (yet)."""
    if not isinstance(crm, SalesforceConnector):
        return {}
    roles = set(wanted) & set(CRM_ROLES)
    choices: dict[str, Choice] = {}
    if roles & {"segment", "satisfaction", "crm_link"}:
        account, records = _account_sample(crm)
        choices["segment"] = segment_choice(account, records)
        choices["satisfaction"] = satisfaction_choice(account, records)
        choices["crm_link"] = crm_link_choice(account, records, project_keys)
    if roles & {"survey", "report"}:
        objects = _custom_objects(crm, (DEFAULT_OBJECTS[0], report_object))
        choices["survey"], choices["report"] = object_choices(objects, push_fields)
    hints = {role: choices[role].hint() for role in roles if role in choices}
    if "external_id" in roles:
        # Held: check described the report object already.
        hints["external_id"] = external_id_choice(crm.describe(report_object)).hint()
    return {role: hint for role, hint in hints.items() if hint}
