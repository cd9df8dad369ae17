"""The rules the mapping layer applies, as plain frozen values.

They are built from the validated config by ``sync.config.Config.mapping_rules``, which is
also where a user's values are checked: this layer trusts what it is given. Defaults are
those of ``config.example.toml`` (tests/sync/test_config.py pins that the two agree);
thresholds the example file does not name have documented defaults that leave its
behaviour (SPEC section 6) unchanged. Jira fields are named by display name in the config
and resolved to ids by the connector: this layer only ever sees ids (:class:`FieldIds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mappings.model import FlagLevel, LinkRule, Measure

__all__ = [
    "CRM_FIELD_NAMES",
    "DEFAULT_CRM_FIELDS",
    "CrmPushRules",
    "FieldIds",
    "HealthRules",
    "JiraPushRules",
    "LinkRules",
    "ProgressRules",
    "Rules",
    "SatisfactionRules",
    "SurveyRules",
]


@dataclass(frozen=True, slots=True)
class FieldIds:
    """Jira field ids resolved from the configured display names (``customfield_N``)."""

    account_link: str | None = None
    story_points: str | None = None
    #: Jira Software's Epic Link field holding the epic's key (company-managed projects and
    #: Server/DC; team-managed projects and newer Cloud sites use ``parent``), found by type.
    epic_link: str | None = None
    #: The field [push.jira].field names, where the flag level is written.
    flag_field: str | None = None
    #: Read, in order, for an issue with no value in ``story_points``: the site's other
    #: story-points fields (team-managed "Story point estimate" beside "Story Points").
    story_points_also: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkRules:
    """[link]: how a work item finds its customer, tried in ``order``."""

    order: tuple[LinkRule, ...] = ("jira_field", "crm_field", "static")
    inherit_from_epic: bool = True
    #: [link.static]: project key -> account ids (one project may serve several accounts).
    static: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class HealthRules:
    """[progress.health]: when a (customer, project) pair is amber or red.

    Ratios are shares of open (not done) items, compared with ``>=``. A forecast later than
    the next milestone by ``amber_forecast_slip_days`` or more (default: any slip) is amber,
    by ``red_forecast_slip_days`` or more red; an unreleased milestone past its date is amber
    when ``milestone_overdue_amber``.
    """

    amber_overdue_ratio: float = 0.10
    red_overdue_ratio: float = 0.25
    amber_blocked_ratio: float = 0.10
    red_blocked_ratio: float = 0.25
    red_forecast_slip_days: int = 14
    amber_forecast_slip_days: int = 1
    milestone_overdue_amber: bool = True


@dataclass(frozen=True, slots=True)
class ProgressRules:
    """[progress]: the measure of percent complete, what counts as blocked, the forecast."""

    measure: Measure = "count"
    blocked_statuses: tuple[str, ...] = ("Blocked",)
    blocked_labels: tuple[str, ...] = ("blocked",)
    forecast_weeks: int = 6
    #: Fewer items done in the forecast window than this: "not enough history".
    forecast_min_done: int = 3
    #: A forecast further out than this many days is not given ("throughput too low").
    forecast_max_days: int = 730
    top_risks: int = 3
    health: HealthRules = field(default_factory=HealthRules)


@dataclass(frozen=True, slots=True)
class SurveyRules:
    """[satisfaction.survey]: how survey answers are aggregated (the object and fields they
    are read from are the CRM connector's business)."""

    window_days: int = 90
    aggregate: Literal["mean", "latest"] = "mean"


@dataclass(frozen=True, slots=True)
class SatisfactionRules:
    """[satisfaction]: score source, scale and thresholds, escalations, NPS and trend rules.

    Thresholds are in the units of ``scale``. ``escalated_cases_at_risk = 0`` disables the
    escalation rule. The NPS-detractor rule applies only when ``scale`` is 10;
    ``falling_trend_drop`` (off by default) raises ``falling_trend_level`` when the score fell
    by at least that much since the previous measurement.
    """

    source: Literal["account_field", "survey"] = "account_field"
    scale: int = 5
    at_risk_below: float = 3.5
    watch_below: float = 4.0
    escalated_cases_at_risk: int = 1
    nps_detractor_level: FlagLevel | None = "watch"
    falling_trend_drop: float | None = None
    falling_trend_level: FlagLevel = "watch"
    survey: SurveyRules = field(default_factory=SurveyRules)


DEFAULT_CRM_FIELDS: tuple[tuple[str, str], ...] = (
    ("account", "Account__c"),
    ("project_key", "Jira_Project_Key__c"),
    ("issues_total", "Issues_Total__c"),
    ("issues_done", "Issues_Done__c"),
    ("issues_in_progress", "Issues_In_Progress__c"),
    ("issues_to_do", "Issues_To_Do__c"),
    ("issues_overdue", "Issues_Overdue__c"),
    ("percent_complete", "Percent_Complete__c"),
    ("health", "Health__c"),
    ("health_reasons", "Health_Reasons__c"),
    ("next_milestone", "Next_Milestone__c"),
    ("next_milestone_date", "Next_Milestone_Date__c"),
    ("forecast_date", "Forecast_Date__c"),
    ("summary", "Summary__c"),
    ("last_synced", "Last_Synced__c"),
)


#: Every unified-model name [push.crm.fields] may map (the example maps the first 15).
CRM_FIELD_NAMES: tuple[str, ...] = (
    *(name for name, _ in DEFAULT_CRM_FIELDS),
    "issues_blocked",
    "next_milestone_percent",
    "forecast_note",
    "top_risks",
    "customer_name",
    "project_name",
    "jira_url",
)


@dataclass(frozen=True, slots=True)
class CrmPushRules:
    """[push.crm]: the report object, its external-id field, and the field map."""

    object: str = "Jira_Project_Status__c"
    external_id_field: str = "Jira_Sync_Key__c"
    #: unified-model name -> CRM field name, in config order.
    fields: tuple[tuple[str, str], ...] = DEFAULT_CRM_FIELDS


@dataclass(frozen=True, slots=True)
class JiraPushRules:
    """[push.jira]: what a satisfaction flag does to the linked Jira work.

    ``comment_on_change``: one comment per item when the levels of its customers change.
    ``comment_on``: ``epics`` comments on the linked epics and on linked items with no
    epic (more exactly: on an item, for the customers none of its ancestors among the
    flagged items has), ``all`` on every item that carries the flag.
    ``comment_on_first_sight``: also comment when a level is first seen on an item (a first
    sync, an item newly linked to an already flagged customer); off, those only get the
    label and field.
    """

    issues: Literal["open", "epics", "all"] = "open"
    label: str = "customer-at-risk"
    label_levels: tuple[FlagLevel, ...] = ("at_risk",)
    comment_on_change: bool = True
    comment_on: Literal["epics", "all"] = "epics"
    comment_on_first_sight: bool = False
    policy: Literal["enforce", "respect"] = "enforce"


@dataclass(frozen=True, slots=True)
class Rules:
    """Every rule of the mapping layer together."""

    fields: FieldIds = field(default_factory=FieldIds)
    link: LinkRules = field(default_factory=LinkRules)
    progress: ProgressRules = field(default_factory=ProgressRules)
    satisfaction: SatisfactionRules = field(default_factory=SatisfactionRules)
    crm_push: CrmPushRules = field(default_factory=CrmPushRules)
    jira_push: JiraPushRules = field(default_factory=JiraPushRules)
