"""Satisfaction flags (ok / watch / at_risk) and segment rollups."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

import pytest

from mappings.model import Customer, Forecast, ProgressReport, Satisfaction, SatisfactionFlag
from mappings.rollup import UNASSIGNED, segment_rollups
from mappings.rules import SatisfactionRules
from mappings.satisfaction import satisfaction_flag, satisfaction_flags, worst_level
from tests.mappings.factories import ACME, AS_OF, GLOBEX, INITECH, days_ago

RULES = SatisfactionRules()


def customer(
    score: float | None = 4.5,
    *,
    scale: int = 5,
    escalated: int = 0,
    customer_id: str = ACME,
    segment: str | None = "Enterprise",
    nps: str | None = None,
) -> Customer:
    category: Any = nps
    satisfaction = None
    if score is not None:
        satisfaction = Satisfaction(score, scale, "account_field", None, 1, category)
    return Customer(
        customer_id, "Acme", segment, None, None, satisfaction, escalated, escalated, ""
    )


@pytest.mark.parametrize(
    ("score", "escalated", "level", "reasons"),
    [
        (4.5, 0, "ok", ()),
        (4.0, 0, "ok", ()),
        (3.9, 0, "watch", ("CSAT 3.9/5 below 4.0",)),
        (3.5, 0, "watch", ("CSAT 3.5/5 below 4.0",)),
        (2.8, 0, "at_risk", ("CSAT 2.8/5 below 3.5",)),
        (3.45, 0, "at_risk", ("CSAT 3.45/5 below 3.5",)),
        (4.8, 1, "at_risk", ("1 escalated case",)),
        (3.8, 2, "at_risk", ("CSAT 3.8/5 below 4.0", "2 escalated cases")),
        (None, 0, "ok", ()),
        (None, 3, "at_risk", ("3 escalated cases",)),
    ],
)
def test_default_rules(
    score: float | None, escalated: int, level: str, reasons: tuple[str, ...]
) -> None:
    flag = satisfaction_flag(customer(score, escalated=escalated), RULES, AS_OF)
    assert (flag.level, flag.reasons, flag.since) == (level, reasons, AS_OF)


def test_escalation_threshold_is_configurable_and_can_be_off() -> None:
    two = replace(RULES, escalated_cases_at_risk=2)
    assert satisfaction_flag(customer(escalated=1), two, AS_OF).level == "ok"
    assert satisfaction_flag(customer(escalated=2), two, AS_OF).level == "at_risk"
    off = replace(RULES, escalated_cases_at_risk=0)
    assert satisfaction_flag(customer(escalated=5), off, AS_OF).level == "ok"


def test_nps_detractor_on_a_ten_point_scale() -> None:
    rules = replace(RULES, scale=10, at_risk_below=5.0, watch_below=7.0)
    flag = satisfaction_flag(customer(6, scale=10, nps="detractor"), rules, AS_OF)
    assert flag.level == "watch"
    assert flag.reasons == ("Survey score 6.0/10 below 7.0", "NPS detractor (6.0/10)")
    harsh = replace(rules, nps_detractor_level="at_risk")
    assert (
        satisfaction_flag(customer(6, scale=10, nps="detractor"), harsh, AS_OF).level == "at_risk"
    )
    off = replace(rules, nps_detractor_level=None, watch_below=5.0)
    assert satisfaction_flag(customer(6, scale=10, nps="detractor"), off, AS_OF).level == "ok"
    # on a five-point scale there are no NPS categories
    assert (
        satisfaction_flag(customer(4.5), replace(RULES, nps_detractor_level="at_risk"), AS_OF).level
        == "ok"
    )


def test_falling_trend_needs_the_previous_score() -> None:
    rules = replace(RULES, falling_trend_drop=0.5)
    assert satisfaction_flag(customer(4.5), rules, AS_OF).level == "ok"
    assert satisfaction_flag(customer(4.5), rules, AS_OF, previous_score=4.9).level == "ok"
    flag = satisfaction_flag(customer(4.5), rules, AS_OF, previous_score=5.0)
    assert flag.level == "watch" and flag.reasons == ("CSAT fell from 5.0 to 4.5",)
    steep = replace(rules, falling_trend_level="at_risk")
    assert satisfaction_flag(customer(4.2), steep, AS_OF, previous_score=4.8).level == "at_risk"


def test_since_carries_over_while_the_level_holds() -> None:
    earlier = days_ago(10)
    previous = SatisfactionFlag(ACME, "at_risk", ("CSAT 3.0/5 below 3.5",), earlier)
    same = satisfaction_flag(customer(2.0), RULES, AS_OF, previous)
    assert same.since == earlier and same.reasons == ("CSAT 2.0/5 below 3.5",)
    changed = satisfaction_flag(customer(3.7), RULES, AS_OF, previous)
    assert changed.level == "watch" and changed.since == AS_OF


def test_flags_for_many_customers_in_id_order() -> None:
    previous = {GLOBEX: SatisfactionFlag(GLOBEX, "watch", (), days_ago(3))}
    flags = satisfaction_flags(
        [customer(3.9, customer_id=GLOBEX), customer(2.0, customer_id=ACME)],
        RULES,
        AS_OF,
        previous,
        {ACME: 2.1},
    )
    assert [(f.customer_id, f.level) for f in flags] == [(ACME, "at_risk"), (GLOBEX, "watch")]
    assert flags[1].since == days_ago(3)


def test_worst_level() -> None:
    assert worst_level([]) == "ok"
    assert worst_level(["watch", "ok"]) == "watch"
    assert worst_level(["watch", "at_risk", "ok"]) == "at_risk"


def pair_report(customer_id: str, health: Any) -> ProgressReport:
    numbers = dict.fromkeys(("total", "todo", "in_progress", "done", "overdue", "blocked"), 0)
    return ProgressReport(
        customer_id=customer_id,
        customer_name="x",
        project_key="APOLLO",
        project_name="Apollo",
        as_of=AS_OF,
        **numbers,
        percent_complete=0.0,
        measure="count",
        measure_note="",
        next_milestone=None,
        forecast=Forecast(None, "", 0.0, 0),
        health=health,
        health_reasons=(),
        top_risks=(),
        summary="",
        url="",
    )


def test_segment_rollups() -> None:
    customers = [
        customer(4.5, customer_id=ACME, escalated=1),
        customer(3.0, customer_id=GLOBEX),
        customer(None, customer_id=INITECH, segment=None),
    ]
    flags = satisfaction_flags(customers, RULES, AS_OF)
    reports = [
        pair_report(ACME, "green"),
        pair_report(ACME, "red"),
        pair_report(GLOBEX, "amber"),
        pair_report("001unknown", "red"),
    ]
    enterprise, unassigned = segment_rollups(customers, flags, reports)
    assert enterprise.segment == "Enterprise" and unassigned.segment == UNASSIGNED
    assert (enterprise.customers, enterprise.scored_customers) == (2, 2)
    assert enterprise.average_satisfaction == 3.75
    assert (enterprise.ok, enterprise.watch, enterprise.at_risk) == (0, 0, 2)
    assert (enterprise.green, enterprise.amber, enterprise.red) == (1, 1, 1)
    assert (enterprise.open_cases, enterprise.escalated_cases) == (1, 1)
    assert unassigned.average_satisfaction is None and unassigned.ok == 1


def test_flag_since_is_a_datetime() -> None:
    flag = satisfaction_flag(customer(), RULES, datetime(2026, 1, 1, tzinfo=AS_OF.tzinfo))
    assert flag.since.date() == date(2026, 1, 1)
