"""Discovery's calls: a handful on Jira's side, the CRM's side through its connector's
discovery (connectors.crm.Discoverable), then the pure decisions of jira_fields; and the
same candidates as `check --online` hints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.crm import CrmConnector, Discoverable
from connectors.discovery import Choice, CrmChoices, CrmTerms
from connectors.jira import JiraConnector
from sync.discover.jira_fields import (
    account_link_choice,
    epic_link_choice,
    sample_fields,
    sampled_customer_ids,
    story_points_choice,
)
from sync.discover.result import Discovery, Project

#: Issues one sample reads (one call).
SAMPLE_ISSUES = 100


@dataclass(frozen=True)
class Sample:
    """What Jira answered, and which sampled customer ids the CRM holds: every decision
    on Jira's side reads only this."""

    #: Jira's ``GET /field``.
    fields: Sequence[Mapping[str, Any]] = ()
    #: The sampled issues (raw, with the candidate fields).
    issues: Sequence[Mapping[str, Any]] = ()
    #: The sampled customer ids that the CRM holds (None: not asked).
    known: set[str] | None = None


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


def decide(
    projects: Sequence[str],
    in_reach: Sequence[Project],
    sample: Sample,
    crm: CrmChoices,
    terms: CrmTerms,
) -> Discovery:
    """Every choice, from what Jira answered and what the CRM's discovery proposes."""
    return Discovery(
        projects=tuple(projects),
        in_reach=tuple(in_reach),
        account_link=account_link_choice(sample.fields, sample.issues, terms, sample.known),
        story_points=story_points_choice(sample.fields, sample.issues),
        epic_link=epic_link_choice(sample.fields),
        crm_link=crm.crm_link,
        segment=crm.segment,
        satisfaction=crm.satisfaction,
        survey=crm.survey,
        report=crm.report,
        crm_name=terms.name,
        customer=terms.customer,
    )


def discover(
    jira: JiraConnector,
    crm: Discoverable,
    projects: Sequence[str],
    in_reach: Sequence[Project],
    push_fields: Mapping[str, str] | None = None,
) -> Discovery:
    """Sample both sites and decide (signed-in connectors; ConnectorError as they raise)."""
    side = crm.discovery()
    fields, issues = _jira_sample(jira, projects)
    known = side.known_customers(sampled_customer_ids(fields, issues, side.terms))
    choices = side.choices(projects, push_fields)
    return decide(projects, in_reach, Sample(fields, issues, known), choices, side.terms)


# -- check --online: the same candidates as hints -----------------------------------------


def jira_hints(
    jira: JiraConnector, wanted: Iterable[str], crm: CrmConnector | None = None
) -> dict[str, str]:
    """``{what: "did you mean ...?"}`` for the configured Jira fields that failed
    (``what``: ``account_link`` or ``story_points``, as in sync.remote.configured_fields):
    the field list held and one sampled search in the configured scope. Customer ids are
    recognised as ``crm`` writes them: a CRM without discovery gets no link hint."""
    terms = crm.discovery().terms if isinstance(crm, Discoverable) else None
    roles = set(wanted) & {"account_link", "story_points"}
    if terms is None:
        roles.discard("account_link")
    if not roles:
        return {}
    fields, issues = _jira_sample(jira, None)
    choices: dict[str, Choice] = {"story_points": story_points_choice(fields, issues)}
    if terms is not None:
        choices["account_link"] = account_link_choice(fields, issues, terms)
    hints = {role: choices[role].hint() for role in roles}
    return {role: hint for role, hint in hints.items() if hint}


#: What `check --online` can suggest on the CRM's side.
CRM_ROLES = ("segment", "satisfaction", "crm_link", "survey", "report", "external_id")


def crm_hints(
    crm: CrmConnector,
    wanted: Iterable[str],
    project_keys: Sequence[str],
    push_fields: Mapping[str, str] | None,
    report_object: str,
) -> dict[str, str]:
    """``{role: "did you mean ...?"}`` for the configured CRM names that failed (``role``:
    one of :data:`CRM_ROLES`), from the CRM's discovery, which spends calls only on what
    the roles need; a CRM without discovery gets no hints."""
    if not isinstance(crm, Discoverable):
        return {}
    roles = set(wanted) & set(CRM_ROLES)
    if not roles:
        return {}
    choices = crm.discovery().hints(roles, project_keys, push_fields, report_object)
    hints = {role: choice.hint() for role, choice in choices.items() if role in roles}
    return {role: hint for role, hint in hints.items() if hint}
