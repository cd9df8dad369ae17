"""Raw Jira issues in Jira's shape and CRM records in the CRM-neutral form the connectors
hand over (see ``mappings.normalise_crm``), built by hand for rule tests, and a simulated remote
that applies plans (for the idempotence properties). Realistic generated worlds come from
``bench.merge.generate``, shared with the benchmark."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.merge import ACCOUNT_FIELD, CUSTOMER_IDS, EPIC_LINK_FIELD, STORY_POINTS_FIELD, sf_id
from mappings.model import FlagLevel
from mappings.plan import ledgers_after, remote_flags_from_comments
from mappings.rules import FieldIds, Rules
from mappings.writes import JiraLedger, Plan, RemoteJira

AS_OF = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
TODAY = AS_OF.date()
FIELDS = FieldIds(
    account_link=ACCOUNT_FIELD,
    story_points=STORY_POINTS_FIELD,
    epic_link=EPIC_LINK_FIELD,
    flag_field="customfield_10300",
)
RULES = Rules(fields=FIELDS)
#: How the ids of these tests compare: they are the generated world's (Salesforce-style:
#: a 15-character and an 18-character spelling of one id); the mapping layer is handed
#: this form, as the sync hands it the configured CRM's.
IDS = CUSTOMER_IDS

ACME = sf_id("001", 1)
GLOBEX = sf_id("001", 2)
INITECH = sf_id("001", 3)
GONE = sf_id("001", 99)  # a deleted account
NOBODY = sf_id("001", 500)  # never existed

__all__ = [
    "ACME",
    "AS_OF",
    "FIELDS",
    "GLOBEX",
    "GONE",
    "IDS",
    "INITECH",
    "NOBODY",
    "RULES",
    "TODAY",
    "SimRemote",
    "account",
    "case",
    "days_ago",
    "issue",
    "jira_time",
    "survey",
]


def days_ago(days: float) -> datetime:
    """A moment ``days`` before the as-of time."""
    return AS_OF - timedelta(days=days)


def jira_time(moment: datetime) -> str:
    """A Jira timestamp: ``2026-09-06T08:13:46.019+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def issue(
    key: str,
    *,
    account: str | None = None,
    status: str | None = "To Do",
    category: str | None = None,
    type_name: str = "Story",
    parent: str | None = None,
    parent_type: str = "Epic",
    due: str | None = None,
    labels: Iterable[object] = (),
    versions: Iterable[dict[str, Any]] = (),
    points: float | None = None,
    estimate: int | None = None,
    created: datetime | None = None,
    resolved: datetime | None = None,
    priority: str | None = "Medium",
    summary: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A raw Jira issue as ``GET /rest/api/2/search/jql`` returns it."""
    project = key.rpartition("-")[0]
    categories = {"To Do": "new", "In Progress": "indeterminate", "Blocked": "indeterminate"}
    category = category or categories.get(status or "", "done")
    if category == "done" and resolved is None:
        resolved = days_ago(2)
    fields: dict[str, Any] = {
        "summary": summary or f"Work on {key}",
        "issuetype": {"name": type_name, "subtask": type_name == "Sub-task"},
        "project": {"id": "10000", "key": project, "name": f"{project.title()} Rollout"},
        "status": {"name": status, "statusCategory": {"key": category}},
        "priority": {"name": priority} if priority else None,
        "assignee": {"accountId": "5b10", "displayName": "Dana Developer"},
        "created": jira_time(created or days_ago(30)),
        "updated": jira_time(resolved or created or days_ago(1)),
        "resolutiondate": jira_time(resolved) if resolved else None,
        "duedate": due,
        "labels": list(labels),
        "fixVersions": list(versions),
        ACCOUNT_FIELD: account,
        STORY_POINTS_FIELD: points,
        "timeoriginalestimate": estimate,
        "timeestimate": None,
        "description": "Plain v2 text",
    }
    if parent is not None:
        fields["parent"] = {"key": parent, "fields": {"issuetype": {"name": parent_type}}}
    fields.update(extra)
    return {"id": str(abs(hash(key)) % 100000), "key": key, "fields": fields}


def account(
    account_id: str,
    name: str = "Acme Corp",
    *,
    csat: float | str | None = 4.5,
    segment: str | None = "Enterprise",
    project_key: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A customer record in the CRM-neutral form."""
    record = {
        "id": account_id,
        "name": name,
        "segment": segment,
        "satisfaction": csat,
        "owner_id": "owner-1",
        "owner_name": "Olivia Owner",
        "project_keys": project_key,
        "changed_at": "2026-11-20T10:00:00.000+0000",
        "deleted": False,
    }
    record.update(extra)
    return record


_case_numbers = iter(range(1, 10**9))


def case(account_id: str, *, closed: bool = False, escalated: bool = False) -> dict[str, Any]:
    """A case record in the CRM-neutral form."""
    return {
        "id": f"case-{next(_case_numbers)}",
        "customer_id": account_id,
        "closed": closed,
        "escalated": escalated,
        "deleted": False,
    }


def survey(account_id: str, score: float, days: float, number: int = 1) -> dict[str, Any]:
    """A survey answer in the CRM-neutral form."""
    return {
        "id": f"survey-{number}",
        "customer_id": account_id,
        "score": score,
        "answered_at": jira_time(days_ago(days)),
    }


@dataclass
class SimRemote:
    """Both sides as a plan's writes leave them, and the ledgers, for replaying cycles."""

    labels: dict[str, frozenset[str]]
    fields: dict[str, str | None] = field(default_factory=dict)
    comments: dict[str, list[str]] = field(default_factory=dict)
    crm: dict[str, dict[str, Any]] = field(default_factory=dict)
    crm_ledger: dict[str, str] = field(default_factory=dict)
    jira_ledger: dict[str, JiraLedger] = field(default_factory=dict)
    comments_posted: int = 0

    @classmethod
    def from_issues(cls, raws: Iterable[dict[str, Any]]) -> SimRemote:
        """The remote as the raw issues show it (their labels)."""
        return cls({raw["key"]: frozenset(raw["fields"].get("labels") or ()) for raw in raws})

    def jira_remote(self) -> dict[str, RemoteJira]:
        """What the plan sees of Jira: labels, the flag field, markers in comments."""
        return {
            key: RemoteJira(
                key,
                labels,
                self.fields.get(key),
                remote_flags_from_comments(self.comments.get(key, [])),
            )
            for key, labels in self.labels.items()
        }

    def apply(self, plan: Plan) -> None:
        """Perform every write of the plan and record the ledgers."""
        for write in plan.crm:
            record = dict(write.fields)
            record[write.external_id_field] = write.external_id
            self.crm[write.external_id] = record
        for jira in plan.jira:
            labels = set(self.labels[jira.issue_key])
            labels |= set(jira.add_labels)
            labels -= set(jira.remove_labels)
            self.labels[jira.issue_key] = frozenset(labels)
            if jira.set_field is not None:
                self.fields[jira.issue_key] = jira.set_field[1]
            for comment in jira.comments:
                self.comments.setdefault(jira.issue_key, []).append(comment.body)
                self.comments_posted += 1
        self.crm_ledger, self.jira_ledger = ledgers_after(plan, self.crm_ledger, self.jira_ledger)

    def person_sets(
        self, key: str, labels: Iterable[str] = (), level: FlagLevel | None = None
    ) -> None:
        """A person edits an issue: its labels, and/or the flag field."""
        self.labels[key] = frozenset(labels)
        if level is not None:
            self.fields[key] = level


def with_labels(raw: dict[str, Any], labels: Iterable[str]) -> dict[str, Any]:
    """A copy of a raw issue with other labels."""
    return {**raw, "fields": {**raw["fields"], "labels": list(labels)}}


def rules(**changes: Any) -> Rules:
    """RULES with some sections replaced (``rules(jira_push=JiraPushRules(...))``)."""
    return replace(RULES, **changes)
