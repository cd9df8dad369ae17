"""The rules the mapping layer applies, as pure frozen values.

Defaults are those of ``config.example.toml``; thresholds the example file does not name
have documented defaults that leave its behaviour (SPEC section 6) unchanged. Jira fields
are named by display name in the config and resolved to ids by the connector: this layer
only ever sees ids (:class:`FieldIds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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
    "rules_from_config",
]

_LINK_RULES: tuple[LinkRule, ...] = ("jira_field", "crm_field", "static")
_LEVELS: tuple[FlagLevel, ...] = ("ok", "watch", "at_risk")


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{key}: {message}")


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

    order: tuple[LinkRule, ...] = _LINK_RULES
    inherit_from_epic: bool = True
    #: [link.static]: project key -> account ids (one project may serve several accounts).
    static: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        for rule in self.order:
            _check(rule in _LINK_RULES, "link.order", f"unknown rule {rule!r}; use {_LINK_RULES}")
        _check(len(set(self.order)) == len(self.order), "link.order", "a rule is repeated")


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

    def __post_init__(self) -> None:
        for name in ("overdue", "blocked"):
            amber = getattr(self, f"amber_{name}_ratio")
            red = getattr(self, f"red_{name}_ratio")
            _check(0 <= amber <= red <= 1, f"progress.health.{name}", "need 0 <= amber <= red <= 1")
        _check(
            0 <= self.amber_forecast_slip_days <= self.red_forecast_slip_days,
            "progress.health.red_forecast_slip_days",
            "must be >= amber_forecast_slip_days >= 0",
        )


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

    def __post_init__(self) -> None:
        _check(
            self.measure in ("count", "story_points", "estimate"),
            "progress.measure",
            'use "count", "story_points" or "estimate"',
        )
        _check(self.forecast_weeks >= 1, "progress.forecast_weeks", "must be >= 1")
        _check(self.forecast_min_done >= 1, "progress.forecast_min_done", "must be >= 1")


@dataclass(frozen=True, slots=True)
class SurveyRules:
    """[satisfaction.survey]: how survey answers are aggregated (the object and fields they
    are read from are the CRM connector's business)."""

    window_days: int = 90
    aggregate: Literal["mean", "latest"] = "mean"

    def __post_init__(self) -> None:
        _check(self.window_days >= 1, "satisfaction.survey.window_days", "must be >= 1")
        _check(
            self.aggregate in ("mean", "latest"),
            "satisfaction.survey.aggregate",
            'use "mean" or "latest"',
        )


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

    def __post_init__(self) -> None:
        _check(
            self.source in ("account_field", "survey"),
            "satisfaction.source",
            'use "account_field" or "survey"',
        )
        _check(self.scale >= 1, "satisfaction.scale", "must be >= 1")
        _check(
            self.at_risk_below <= self.watch_below,
            "satisfaction.at_risk_below",
            "must not exceed watch_below",
        )
        _check(self.escalated_cases_at_risk >= 0, "satisfaction.escalated_cases_at_risk", ">= 0")
        for key in ("nps_detractor_level", "falling_trend_level"):
            value = getattr(self, key)
            _check(
                value is None or value in _LEVELS, f"satisfaction.{key}", f"use one of {_LEVELS}"
            )


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

    def __post_init__(self) -> None:
        for name, crm_name in self.fields:
            _check(
                name in CRM_FIELD_NAMES,
                f"push.crm.fields.{name}",
                f"unknown model name; use one of {', '.join(CRM_FIELD_NAMES)}",
            )
            _check(bool(crm_name), f"push.crm.fields.{name}", "needs a CRM field name")
        crm_names = [crm_name for _, crm_name in self.fields]
        _check(len(set(crm_names)) == len(crm_names), "push.crm.fields", "a CRM field repeats")
        _check(
            self.external_id_field not in crm_names,
            "push.crm.external_id_field",
            "is set by the sync; do not map it in push.crm.fields",
        )


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

    def __post_init__(self) -> None:
        _check(self.issues in ("open", "epics", "all"), "push.jira.issues", "use open|epics|all")
        _check(self.comment_on in ("epics", "all"), "push.jira.comment_on", "use epics|all")
        _check(self.policy in ("enforce", "respect"), "push.jira.policy", "use enforce|respect")
        _check(" " not in self.label, "push.jira.label", "Jira labels cannot contain spaces")
        for level in self.label_levels:
            _check(level in _LEVELS, "push.jira.label_levels", f"use levels from {_LEVELS}")


@dataclass(frozen=True, slots=True)
class Rules:
    """Every rule of the mapping layer together."""

    fields: FieldIds = field(default_factory=FieldIds)
    link: LinkRules = field(default_factory=LinkRules)
    progress: ProgressRules = field(default_factory=ProgressRules)
    satisfaction: SatisfactionRules = field(default_factory=SatisfactionRules)
    crm_push: CrmPushRules = field(default_factory=CrmPushRules)
    jira_push: JiraPushRules = field(default_factory=JiraPushRules)


def _section(data: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    for key in path:
        value = data.get(key, {})
        data = value if isinstance(value, Mapping) else {}
    return data


def _kwargs(
    section: Mapping[str, Any], cls: type, name: str, handled: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from a config section: lists become tuples, sub-tables
    and ``handled`` keys (resolved elsewhere) are skipped, an unknown key is an error."""
    known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    kwargs: dict[str, Any] = {}
    for key, value in section.items():
        if key in handled or isinstance(value, Mapping):
            continue
        _check(key in known, f"{name}.{key}", "unknown key; see config.example.toml")
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return kwargs


#: [satisfaction.survey] keys naming the survey object and its fields: the CRM's words,
#: read by the sync into what the CRM connector needs, not rules of this layer.
_SURVEY_FIELDS = ("object", "account_field", "score_field", "date_field")


def rules_from_config(data: Mapping[str, Any], fields: FieldIds | None = None) -> Rules:
    """Rules from a parsed config document (the TOML as a dict); missing keys keep defaults.

    Display names of Jira fields (``[link].jira_field``, ``[progress].story_points_field``,
    ``[push.jira].field``) are resolved by the connector and given here as ``fields``.
    """
    link = _section(data, "link")
    static = tuple(
        sorted(
            (str(key).strip().upper(), (value,) if isinstance(value, str) else tuple(value))
            for key, value in _section(link, "static").items()
        )
    )
    progress = _section(data, "progress")
    satisfaction = _section(data, "satisfaction")
    crm_push = _section(data, "push", "crm")
    crm_fields = _section(crm_push, "fields")
    return Rules(
        fields=fields or FieldIds(),
        link=LinkRules(
            **_kwargs(link, LinkRules, "link", ("jira_field", "crm_field")), static=static
        ),
        progress=ProgressRules(
            **_kwargs(progress, ProgressRules, "progress", ("story_points_field",)),
            health=HealthRules(
                **_kwargs(_section(progress, "health"), HealthRules, "progress.health")
            ),
        ),
        satisfaction=SatisfactionRules(
            **_kwargs(satisfaction, SatisfactionRules, "satisfaction"),
            survey=SurveyRules(
                **_kwargs(
                    _section(satisfaction, "survey"),
                    SurveyRules,
                    "satisfaction.survey",
                    _SURVEY_FIELDS,
                )
            ),
        ),
        crm_push=CrmPushRules(
            **_kwargs(crm_push, CrmPushRules, "push.crm"),
            fields=tuple(crm_fields.items()) if crm_fields else DEFAULT_CRM_FIELDS,
        ),
        jira_push=JiraPushRules(
            **_kwargs(_section(data, "push", "jira"), JiraPushRules, "push.jira", ("field",))
        ),
    )
