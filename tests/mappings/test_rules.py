"""The rule values: plain, frozen and hashable, with defaults that are a rule set the config
accepts. Building them from the config, and refusing bad values, is tested with the config
(tests/sync/test_config_rules.py)."""

from __future__ import annotations

import dataclasses

import pytest

from mappings.rules import (
    CRM_FIELD_NAMES,
    DEFAULT_CRM_FIELDS,
    CrmPushRules,
    FieldIds,
    HealthRules,
    LinkRules,
    ProgressRules,
    Rules,
    SatisfactionRules,
)


def test_rules_are_frozen_and_hashable() -> None:
    rules = Rules(fields=FieldIds(account_link="customfield_10100"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.link = LinkRules()  # type: ignore[misc]
    assert hash(rules) == hash(Rules(fields=FieldIds(account_link="customfield_10100")))
    # mappings.progress caches what counts as blocked per ProgressRules (lru_cache).
    assert hash(ProgressRules(blocked_statuses=("Waiting",))) != hash(ProgressRules())


def test_rules_take_what_they_are_given() -> None:
    """No validation here: the config model refuses what the rules cannot use, so a test or
    a benchmark may build any rule set it wants to exercise."""
    assert LinkRules(order=()).order == ()
    assert HealthRules(amber_overdue_ratio=0.5, red_overdue_ratio=0.2).red_overdue_ratio == 0.2
    assert SatisfactionRules(at_risk_below=4.5).at_risk_below == 4.5


def test_the_crm_field_names_start_with_the_default_map() -> None:
    defaults = tuple(name for name, _ in DEFAULT_CRM_FIELDS)
    assert CRM_FIELD_NAMES[: len(defaults)] == defaults
    assert len(set(CRM_FIELD_NAMES)) == len(CRM_FIELD_NAMES)


def test_the_defaults_are_rules_the_config_accepts() -> None:
    """What tests and benchmarks build with ``Rules()`` is what a config could give."""
    rules = Rules()
    health = rules.progress.health
    assert 0 <= health.amber_overdue_ratio <= health.red_overdue_ratio <= 1
    assert 0 <= health.amber_blocked_ratio <= health.red_blocked_ratio <= 1
    assert 0 <= health.amber_forecast_slip_days <= health.red_forecast_slip_days
    assert rules.satisfaction.at_risk_below <= rules.satisfaction.watch_below
    crm = CrmPushRules()
    crm_names = [crm_name for _, crm_name in crm.fields]
    assert len(set(crm_names)) == len(crm_names) and crm.external_id_field not in crm_names
    assert len(set(rules.link.order)) == len(rules.link.order)
    assert " " not in rules.jira_push.label
