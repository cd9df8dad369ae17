"""Satisfaction flags per customer: ok / watch / at_risk, with reasons (SPEC section 6).

Rules, each raising the level it names; the worst level wins:

- score below ``at_risk_below`` -> at_risk, else below ``watch_below`` -> watch;
- at least ``escalated_cases_at_risk`` open escalated cases -> at_risk (0 disables);
- on a 0-10 scale, a detractor score (0-6) -> ``nps_detractor_level`` (None disables);
- a score fallen by ``falling_trend_drop`` or more since the previous one ->
  ``falling_trend_level`` (off by default; the previous score is an input).

A customer without a score is judged on its cases alone. ``since`` is carried over from the
previous flag while the level is unchanged, else it is the run's as-of time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from mappings.model import (
    FLAG_LEVELS,
    Customer,
    FlagLevel,
    Satisfaction,
    SatisfactionFlag,
    new_flag,
)
from mappings.rules import SatisfactionRules
from mappings.text import number, plural

__all__ = ["satisfaction_flag", "satisfaction_flags", "score_label", "worst_level"]


def worst_level(levels: Iterable[FlagLevel]) -> FlagLevel:
    """The worst of some levels (ok when there are none)."""
    return max(levels, key=FLAG_LEVELS.index, default="ok")


def score_label(scale: int) -> str:
    """What a score is called in reasons: CSAT, or a 0-10 survey score."""
    return "Survey score" if scale == 10 else "CSAT"


def _score_text(satisfaction: Satisfaction) -> str:
    """A score as reasons give it: ``CSAT 2.5/5``."""
    return f"{score_label(satisfaction.scale)} {number(satisfaction.score)}/{satisfaction.scale}"


def satisfaction_flag(
    customer: Customer,
    rules: SatisfactionRules,
    as_of: datetime,
    previous: SatisfactionFlag | None = None,
    previous_score: float | None = None,
) -> SatisfactionFlag:
    """The flag of one customer by ``rules``."""
    found: list[tuple[FlagLevel, str]] = []
    satisfaction = customer.satisfaction
    if satisfaction is not None:
        score = satisfaction.score
        if score < rules.at_risk_below:
            label = _score_text(satisfaction)
            found.append(("at_risk", f"{label} below {number(rules.at_risk_below)}"))
        elif score < rules.watch_below:
            label = _score_text(satisfaction)
            found.append(("watch", f"{label} below {number(rules.watch_below)}"))
        if (
            rules.nps_detractor_level is not None
            and satisfaction.scale == 10
            and satisfaction.nps_category == "detractor"
        ):
            found.append((rules.nps_detractor_level, f"NPS detractor ({number(score)}/10)"))
        if (
            rules.falling_trend_drop is not None
            and previous_score is not None
            and previous_score - score >= rules.falling_trend_drop
        ):
            found.append(
                (
                    rules.falling_trend_level,
                    f"{score_label(satisfaction.scale)} fell from {number(previous_score)} "
                    f"to {number(score)}",
                )
            )
    threshold = rules.escalated_cases_at_risk
    if threshold and customer.escalated_cases >= threshold:
        found.append(("at_risk", plural(customer.escalated_cases, "escalated case")))
    if not found:  # most customers: nothing to say
        level: FlagLevel = "ok"
        reasons: tuple[str, ...] = ()
    else:
        level = worst_level(level for level, _ in found)
        reasons = tuple(text for lvl, text in found if lvl != "ok")
    since = previous.since if previous is not None and previous.level == level else as_of
    return new_flag(customer.id, level, reasons, since)


def satisfaction_flags(
    customers: Iterable[Customer],
    rules: SatisfactionRules,
    as_of: datetime,
    previous_flags: Mapping[str, SatisfactionFlag] | None = None,
    previous_scores: Mapping[str, float] | None = None,
) -> tuple[SatisfactionFlag, ...]:
    """Flags of every customer, in customer-id order."""
    previous_flags = previous_flags or {}
    previous_scores = previous_scores or {}
    flags = [
        satisfaction_flag(
            customer,
            rules,
            as_of,
            previous_flags.get(customer.id),
            previous_scores.get(customer.id),
        )
        for customer in customers
    ]
    flags.sort(key=lambda flag: flag.customer_id)
    return tuple(flags)
