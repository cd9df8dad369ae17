"""The mapping rules from the config: ``Config.mapping_rules`` is the one place they are
built, the example's values are the rules' defaults, every rule key reaches the rules, and
a value the rules cannot use is refused by the config model, named by its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mappings.rules import (
    CRM_FIELD_NAMES,
    DEFAULT_CRM_FIELDS,
    CrmPushRules,
    FieldIds,
    HealthRules,
    JiraPushRules,
    LinkRules,
    ProgressRules,
    Rules,
    SatisfactionRules,
    SurveyRules,
)
from sync.config import (
    AccountFieldsConfig,
    Config,
    ConfigFileError,
    HealthConfig,
    LinkConfig,
    ProgressConfig,
    PushCrmConfig,
    PushJiraConfig,
    SatisfactionConfig,
    SurveyConfig,
    load_config,
)
from sync.remote import crm_needs

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
ENV = {"JIRA_API_TOKEN": "jira-secret-123", "SALESFORCE_CONSUMER_KEY": "ck-secret-456"}
FIX = "; fix that key (config.example.toml documents it)"
REQUIRED: dict[str, Any] = {
    "jira": {"url": "https://jira.example.test"},
    "crm": {"salesforce": {"auth": "session"}},
}

#: A value other than the default for every key of the sections the rules come from.
NON_DEFAULT: dict[str, Any] = {
    "jira": {"url": "https://jira.example.test"},
    "crm": {
        "salesforce": {
            "auth": "session",
            "account": {"segment_field": "Tier__c", "satisfaction_field": "Score__c"},
        }
    },
    "link": {
        "order": ["static", "jira_field"],
        "jira_field": "Customer Account",
        "crm_field": "Project__c",
        "inherit_from_epic": False,
        "static": {" orion ": ["b", "a"], "apollo": "001Dn0000000001IAA"},
    },
    "progress": {
        "measure": "story_points",
        "story_points_field": "Points",
        "blocked_statuses": ["Stuck", "Waiting"],
        "blocked_labels": ["stuck"],
        "forecast_weeks": 8,
        "health": {
            "amber_overdue_ratio": 0.2,
            "red_overdue_ratio": 0.3,
            "amber_blocked_ratio": 0.05,
            "red_blocked_ratio": 0.5,
            "red_forecast_slip_days": 7,
        },
    },
    "satisfaction": {
        "source": "survey",
        "scale": 10,
        "at_risk_below": 6.0,
        "watch_below": 8.0,
        "escalated_cases_at_risk": 0,
        "survey": {
            "object": "NPS__c",
            "account_field": "Acct__c",
            "score_field": "NPS_Score__c",
            "date_field": "Answered__c",
            "window_days": 30,
            "aggregate": "latest",
        },
    },
    "push": {
        "crm": {
            "object": "Status__c",
            "external_id_field": "Key__c",
            "fields": {"summary": "Text__c", "health": "State__c"},
        },
        "jira": {
            "issues": "all",
            "label": "at-risk",
            "label_levels": ["watch", "at_risk"],
            "field": "Flag",
            "comment_on_change": False,
            "comment_on": "all",
            "comment_on_first_sight": True,
            "policy": "respect",
        },
    },
}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jira-crm-sync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        load_config(_write(tmp_path, text), environ=ENV)
    return caught.value.problems


def _example_with(tmp_path: Path, *edits: tuple[str, str]) -> list[str]:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return _problems(tmp_path, text)


def test_the_example_config_gives_the_rules_defaults() -> None:
    fields = FieldIds(account_link="customfield_10100", story_points="customfield_10016")
    rules = load_config(EXAMPLE, environ=ENV).mapping_rules(fields)
    assert rules == Rules(fields=fields)
    assert rules.crm_push.fields == DEFAULT_CRM_FIELDS
    assert rules.satisfaction.at_risk_below == 3.5 and rules.satisfaction.watch_below == 4.0
    assert rules.progress.health.red_forecast_slip_days == 14
    assert Config.model_validate(REQUIRED).mapping_rules() == Rules()


def test_every_rule_key_reaches_the_rules() -> None:
    fields = FieldIds(account_link="customfield_10200", flag_field="customfield_10300")
    rules = Config.model_validate(NON_DEFAULT).mapping_rules(fields)
    assert rules == Rules(
        fields=fields,
        link=LinkRules(
            order=("static", "jira_field"),
            inherit_from_epic=False,
            # keys upper-cased and trimmed, one id or a list, sorted by project
            static=(("APOLLO", ("001Dn0000000001IAA",)), ("ORION", ("b", "a"))),
        ),
        progress=ProgressRules(
            measure="story_points",
            blocked_statuses=("Stuck", "Waiting"),
            blocked_labels=("stuck",),
            forecast_weeks=8,
            health=HealthRules(
                amber_overdue_ratio=0.2,
                red_overdue_ratio=0.3,
                amber_blocked_ratio=0.05,
                red_blocked_ratio=0.5,
                red_forecast_slip_days=7,
            ),
        ),
        satisfaction=SatisfactionRules(
            source="survey",
            scale=10,
            at_risk_below=6.0,
            watch_below=8.0,
            escalated_cases_at_risk=0,
            survey=SurveyRules(window_days=30, aggregate="latest"),
        ),
        crm_push=CrmPushRules(
            object="Status__c",
            external_id_field="Key__c",
            fields=(("summary", "Text__c"), ("health", "State__c")),  # in config order
        ),
        jira_push=JiraPushRules(
            issues="all",
            label="at-risk",
            label_levels=("watch", "at_risk"),
            comment_on_change=False,
            comment_on="all",
            comment_on_first_sight=True,
            policy="respect",
        ),
    )
    hash(rules)  # mappings.progress caches by ProgressRules: no list may leak in
    # The CRM's own names (fields, survey object) are what the CRM connector needs.
    needs = crm_needs(Config.model_validate(NON_DEFAULT))
    assert needs.customer.segment.name == "Tier__c"
    assert needs.customer.project_keys is None  # crm_field is not in this [link] order
    assert needs.survey is not None and (
        needs.survey.object.name,
        needs.survey.customer_field.name,
        needs.survey.score_field.name,
        needs.survey.date_field.name,
    ) == ("NPS__c", "Acct__c", "NPS_Score__c", "Answered__c")


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (AccountFieldsConfig, ("crm", "salesforce", "account")),
        (LinkConfig, ("link",)),
        (ProgressConfig, ("progress",)),
        (HealthConfig, ("progress", "health")),
        (SatisfactionConfig, ("satisfaction",)),
        (SurveyConfig, ("satisfaction", "survey")),
        (PushCrmConfig, ("push", "crm")),
        (PushJiraConfig, ("push", "jira")),
    ],
)
def test_the_rule_test_sets_every_key_of_its_section(
    model: type[BaseModel], path: tuple[str, ...]
) -> None:
    """A key added to a section the rules come from must be added to NON_DEFAULT, where
    test_every_rule_key_reaches_the_rules shows whether mapping_rules carries it."""
    data: Any = NON_DEFAULT
    for key in path:
        data = data[key]
    given, default = model.model_validate(data), model()
    for name in model.model_fields:
        assert name in data, f"{'.'.join(path)}.{name}: give it a non-default value here"
        if not isinstance(getattr(default, name), BaseModel):
            assert getattr(given, name) != getattr(default, name), name


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'order = ["jira_field", "crm_field", "static"]',
            'order = ["static", "static"]',
            "link.order: a rule is repeated",
        ),
        (
            "red_overdue_ratio = 0.25",
            "red_overdue_ratio = 0.05",
            "progress.health.overdue: need 0 <= amber <= red <= 1",
        ),
        (
            "amber_blocked_ratio = 0.10",
            "amber_blocked_ratio = 0.5",
            "progress.health.blocked: need 0 <= amber <= red <= 1",
        ),
        (
            "red_forecast_slip_days = 14",
            "red_forecast_slip_days = 0",
            "progress.health.red_forecast_slip_days: must be >= amber_forecast_slip_days >= 0",
        ),
        (
            "watch_below = 4.0",
            "watch_below = 3.0",
            "satisfaction.at_risk_below: must not exceed watch_below",
        ),
        (
            'health = "Health__c"',
            'mood = "Mood__c"',
            "push.crm.fields.mood: unknown model name; use one of " + ", ".join(CRM_FIELD_NAMES),
        ),
        ('health = "Health__c"', 'health = ""', "push.crm.fields.health: needs a CRM field name"),
        ('health = "Health__c"', 'health = "Summary__c"', "push.crm.fields: a CRM field repeats"),
        (
            'external_id_field = "Jira_Sync_Key__c"',
            'external_id_field = "Health__c"',
            "push.crm.external_id_field: is set by the sync; do not map it in push.crm.fields",
        ),
        (
            'label = "customer-at-risk"',
            'label = "customer at risk"',
            "push.jira.label: Jira labels cannot contain spaces",
        ),
    ],
)
def test_a_value_the_rules_cannot_use_is_named_with_its_key(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    assert _example_with(tmp_path, (old, new)) == [problem + FIX]


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            'order = ["jira_field", "crm_field", "static"]',
            'order = ["jira_field", "magic"]',
            "link.order.1",
        ),
        ('measure = "count"', 'measure = "hours"', "progress.measure"),
        ("forecast_weeks = 6", "forecast_weeks = 0", "progress.forecast_weeks"),
        ('measure = "count"', 'measure = "count"\ncolour = "red"', "progress.colour"),
        ('source = "account_field"', 'source = "gut"', "satisfaction.source"),
        ("window_days = 90", "window_days = 0", "satisfaction.survey.window_days"),
        ('issues = "open"', 'issues = "some"', "push.jira.issues"),
        ('policy = "enforce"', 'policy = "ignore"', "push.jira.policy"),
        ('label_levels = ["at_risk"]', 'label_levels = ["doom"]', "push.jira.label_levels.0"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named_with_its_key(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    problems = _example_with(tmp_path, (old, new))
    assert len(problems) == 1 and problems[0].startswith(f"{key}: "), problems


def test_every_value_the_rules_cannot_use_is_said_at_once(tmp_path: Path) -> None:
    problems = _example_with(
        tmp_path,
        ('order = ["jira_field", "crm_field", "static"]', 'order = ["static", "static"]'),
        ("watch_below = 4.0", "watch_below = 3.0"),
        ('label = "customer-at-risk"', 'label = "customer at risk"'),
    )
    assert problems == [
        "link.order: a rule is repeated" + FIX,
        "satisfaction.at_risk_below: must not exceed watch_below" + FIX,
        "push.jira.label: Jira labels cannot contain spaces" + FIX,
    ]


def test_the_default_crm_field_map_is_checked_too() -> None:
    """With no [push.crm.fields] the default map is written: an external-id field that is
    one of its fields is refused, by the model itself (no loader needed)."""
    data = {**REQUIRED, "push": {"crm": {"external_id_field": "Health__c"}}}
    with pytest.raises(ValidationError) as caught:
        Config.model_validate(data)
    (error,) = caught.value.errors()
    assert error["loc"] == ("push", "crm") and error["ctx"]["key"] == "external_id_field"
    empty = {**REQUIRED, "push": {"crm": {"fields": {}}}}
    assert Config.model_validate(empty).mapping_rules().crm_push.fields == DEFAULT_CRM_FIELDS
