"""Health (green/amber/red) of a (customer, project) pair, with reasons, and its top risks."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import date
from operator import attrgetter

from mappings.model import Forecast, HealthLevel, Milestone, WorkItem
from mappings.rules import HealthRules
from mappings.text import percent, plural

__all__ = ["assess_health", "top_risks"]

_PRIORITY_RANK = {"highest": 0, "blocker": 0, "critical": 1, "high": 1, "major": 2, "medium": 2}


def _ratio_check(
    count: int, open_items: int, what: str, amber: float, red: float
) -> tuple[HealthLevel, str] | None:
    if count == 0 or open_items == 0:
        return None
    ratio = count / open_items
    if ratio < amber:
        return None
    level: HealthLevel = "red" if ratio >= red else "amber"
    share = percent(ratio * 100)
    return level, f"{count} of {plural(open_items, 'open item')} {what} ({share}%)"


def assess_health(
    *,
    open_items: int,
    overdue: int,
    blocked: int,
    milestone: Milestone | None,
    forecast: Forecast,
    rules: HealthRules,
) -> tuple[HealthLevel, tuple[str, ...]]:
    """The health level and the reasons for it (empty when green), worst reasons first."""
    found: list[tuple[HealthLevel, str]] = []
    for check in (
        _ratio_check(
            overdue, open_items, "overdue", rules.amber_overdue_ratio, rules.red_overdue_ratio
        ),
        _ratio_check(
            blocked, open_items, "blocked", rules.amber_blocked_ratio, rules.red_blocked_ratio
        ),
    ):
        if check is not None:
            found.append(check)
    if milestone is not None:
        if milestone.overdue and rules.milestone_overdue_amber:
            found.append(
                (
                    "amber",
                    f"milestone {milestone.name} was due {milestone.release_date} "
                    "and is not released",
                )
            )
        slip = (forecast.date - milestone.release_date).days if forecast.date else 0
        # Only a forecast after the milestone slips: at least a day, whatever the thresholds.
        if slip >= max(1, min(rules.amber_forecast_slip_days, rules.red_forecast_slip_days)):
            level: HealthLevel = "red" if slip >= rules.red_forecast_slip_days else "amber"
            found.append(
                (
                    level,
                    f"forecast {forecast.date} is {plural(slip, 'day')} after "
                    f"milestone {milestone.name} ({milestone.release_date})",
                )
            )
    if not found:
        return "green", ()
    worst: HealthLevel = "red" if any(level == "red" for level, _ in found) else "amber"
    reasons = [text for level, text in found if level == "red"]
    reasons += [text for level, text in found if level == "amber"]
    return worst, tuple(reasons)


_by_due = attrgetter("due", "number", "key")


def _priority_rank(item: WorkItem) -> int:
    if item.priority is None:
        return 3
    return _PRIORITY_RANK.get(item.priority.lower(), 3)


def top_risks(
    blocked: Sequence[WorkItem], overdue: Sequence[WorkItem], today: date, limit: int
) -> tuple[str, ...]:
    """The work most at risk: blocked items by priority, then the longest-overdue items."""
    if limit <= 0:
        return ()
    risks: list[str] = []
    named: set[str] = set()
    for item in heapq.nsmallest(limit, blocked, key=lambda i: (_priority_rank(i), i.key)):
        late = (
            f", {plural((today - item.due).days, 'day')} overdue"
            if item.due and item.due < today
            else ""
        )
        risks.append(f"{item.key} \u201c{item.summary}\u201d is blocked{late}")
        named.add(item.key)
    for item in heapq.nsmallest(limit + len(named), overdue, key=_by_due):
        if len(risks) >= limit:
            break
        if item.key in named or item.due is None:
            continue
        days = (today - item.due).days
        risks.append(
            f"{item.key} \u201c{item.summary}\u201d was due {item.due} "
            f"({plural(days, 'day')} overdue)"
        )
    return tuple(risks[:limit])
