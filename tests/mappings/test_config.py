"""Rules from the config: the example file's values are the defaults; bad values are named."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from mappings.config import (
    DEFAULT_CRM_FIELDS,
    CrmPushRules,
    FieldIds,
    JiraPushRules,
    LinkRules,
    ProgressRules,
    Rules,
    SurveyRules,
    rules_from_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def test_the_example_config_is_the_defaults() -> None:
    fields = FieldIds(account_link="customfield_10100", story_points="customfield_10016")
    rules = rules_from_config(example(), fields)
    assert rules == Rules(fields=fields)
    assert rules.crm_push.fields == DEFAULT_CRM_FIELDS
    assert rules.satisfaction.at_risk_below == 3.5 and rules.satisfaction.watch_below == 4.0
    assert rules.progress.health.red_forecast_slip_days == 14
    assert rules_from_config({}) == Rules()


def test_values_from_the_config_are_used() -> None:
    data = example()
    data["link"]["order"] = ["static", "jira_field"]
    data["link"]["static"] = {"apollo": "001Dn0000000001IAA", "ORION": ["a", "b"]}
    data["link"]["crm_field"] = "Project__c"
    data["progress"]["measure"] = "story_points"
    data["progress"]["health"]["red_overdue_ratio"] = 0.5
    data["satisfaction"]["survey"]["aggregate"] = "latest"
    data["push"]["crm"]["fields"] = {"health": "State__c"}
    data["push"]["jira"]["issues"] = "all"
    data["push"]["jira"]["label_levels"] = ["watch", "at_risk"]
    rules = rules_from_config(data)
    assert rules.link == LinkRules(
        order=("static", "jira_field"),
        static=(("APOLLO", ("001Dn0000000001IAA",)), ("ORION", ("a", "b"))),
    )
    assert rules.progress.measure == "story_points"
    assert rules.progress.health.red_overdue_ratio == 0.5
    assert rules.satisfaction.survey == SurveyRules(aggregate="latest")
    assert rules.crm_push.fields == (("health", "State__c"),)
    assert rules.jira_push.issues == "all"
    assert rules.jira_push.label_levels == ("watch", "at_risk")


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("link", "order", ["jira_field", "magic"], "link.order"),
        ("link", "order", ["static", "static"], "link.order"),
        ("progress", "measure", "hours", "progress.measure"),
        ("progress", "forecast_weeks", 0, "progress.forecast_weeks"),
        ("progress", "colour", "red", "progress.colour"),
        ("satisfaction", "source", "gut", "satisfaction.source"),
        ("satisfaction", "watch_below", 3.0, "satisfaction.at_risk_below"),
        ("push", "jira", {"issues": "some"}, "push.jira.issues"),
        ("push", "jira", {"policy": "ignore"}, "push.jira.policy"),
        ("push", "jira", {"label": "at risk"}, "push.jira.label"),
        ("push", "crm", {"fields": {"mood": "Mood__c"}}, "push.crm.fields.mood"),
    ],
)
def test_bad_values_name_the_key(section: str, key: str, value: Any, message: str) -> None:
    data = example()
    data[section][key] = value
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        rules_from_config(data)


def test_rule_objects_validate_themselves() -> None:
    with pytest.raises(ValueError, match=r"push\.crm\.fields"):
        CrmPushRules(fields=(("health", "X__c"), ("summary", "X__c")))
    with pytest.raises(ValueError, match=r"push\.crm\.external_id_field"):
        CrmPushRules(fields=(("health", "Jira_Sync_Key__c"),))
    with pytest.raises(ValueError, match=r"push\.jira\.label_levels"):
        JiraPushRules(label_levels=("doom",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"satisfaction\.survey\.window_days"):
        SurveyRules(window_days=0)
    assert ProgressRules().blocked_statuses == ("Blocked",)
