"""Progress of a linked (customer, project) pair: counts, percent, milestone, forecast.

Counting rules (SPEC section 6; the CRM report fields depend on them): epics are not
counted; ``total`` = to do + in progress + done; an item is overdue when it is not done and
its due date is before the run's UTC date; blocked items are open items whose status is one
of ``blocked_statuses`` or that carry one of ``blocked_labels``.

Percent complete is done / total by count, or weighted by story points or estimates
(``[progress].measure``). Items lacking the measure are weighted at the average of those
that have it; when none has it, the count is used. Either is said in ``measure_note``.

The next milestone is the earliest-dated unreleased, unarchived fix version of the pair's
items; one whose date has passed stays the next milestone and is marked overdue. The
forecast divides the remaining item count by the items done per week over the last
``forecast_weeks`` weeks (or since the first item was created, if later); with fewer than
``forecast_min_done`` items done in that window it says "not enough history". An item is
done at the time it entered the done category (:attr:`WorkItem.resolved`), not only when a
resolution was set: many workflows reach Done with no resolution at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import lru_cache

from mappings.dates import utc_date
from mappings.health import assess_health, top_risks
from mappings.model import Customer, FixVersion, Forecast, Measure, Milestone, ProgressReport
from mappings.model import WorkItem as Item
from mappings.rules import ProgressRules
from mappings.text import plural, progress_summary

__all__ = ["for_customer", "forecast_completion", "progress_report"]

_MEASURE_NOUN = {"story_points": "story points", "estimate": "an estimate"}


@lru_cache(maxsize=32)
def _blocked_sets(rules: ProgressRules) -> tuple[frozenset[str], frozenset[str]]:
    return (
        frozenset(status.casefold() for status in rules.blocked_statuses),
        frozenset(rules.blocked_labels),
    )


def _weight(item: Item, measure: Measure) -> float | None:
    if measure == "story_points":
        return item.story_points
    estimate = item.original_estimate
    if estimate is None:
        estimate = item.remaining_estimate
    return None if estimate is None else float(estimate)


def _percent(
    items: list[Item], done: int, measure: Measure, total: int
) -> tuple[float, Measure, str]:
    """Percent complete by the configured measure, the measure used, and a note."""
    if total == 0:
        return 0.0, measure, ""
    if measure != "count":
        known_total = known_done = 0.0
        known = missing = missing_done = 0
        for item in items:
            weight = _weight(item, measure)
            if weight is None or weight < 0:
                missing += 1
                missing_done += item.status_category == "done"
            else:
                known += 1
                known_total += weight
                if item.status_category == "done":
                    known_done += weight
        noun = _MEASURE_NOUN[measure]
        if known and known_total > 0:
            average = known_total / known
            value = (known_done + missing_done * average) / (known_total + missing * average)
            note = ""
            if missing:
                note = (
                    f"{missing} of {plural(total, 'item')} have no {noun.removeprefix('an ')} "
                    f"and count at the average ({average:.3g})"
                )
            return round(value * 100, 1), measure, note
        fallback = f"no item has {noun}; measured by item count"
        return round(done * 100 / total, 1), "count", fallback
    return round(done * 100 / total, 1), "count", ""


class _Tally:
    """Items of one fix version, and how many are done."""

    __slots__ = ("done", "total", "version")

    def __init__(self, version: FixVersion) -> None:
        self.version = version
        self.total = 0
        self.done = 0


def _milestone(tallies: dict[str, _Tally], today: date) -> Milestone | None:
    """The earliest-dated unreleased version of the pair's items, and how done it is."""
    dated = [tally for tally in tallies.values() if tally.version.release_date is not None]
    if not dated:
        return None
    tally = min(dated, key=lambda t: (t.version.release_date, t.version.name, t.version.id))
    release_date = tally.version.release_date
    assert release_date is not None
    return Milestone(
        name=tally.version.name,
        release_date=release_date,
        overdue=release_date < today,
        items_total=tally.total,
        items_done=tally.done,
        percent_complete=round(tally.done * 100 / tally.total, 1) if tally.total else 0.0,
    )


def forecast_completion(
    *,
    remaining: int,
    total: int,
    resolved: Iterable[datetime],
    first_created: datetime | None,
    as_of: datetime,
    rules: ProgressRules,
) -> Forecast:
    """Forecast the completion date from the times the done items reached done."""
    if total == 0:
        return Forecast(None, "no work items", 0.0, 0)
    window_start = as_of - timedelta(weeks=rules.forecast_weeks)
    recent = sum(1 for moment in resolved if window_start < moment <= as_of)
    start = window_start if first_created is None else max(window_start, first_created)
    weeks = max(1.0, (as_of - start).total_seconds() / (7 * 86400))
    rate = round(recent / weeks, 2)
    if remaining == 0:
        return Forecast(None, "all work done", rate, 0)
    if recent < rules.forecast_min_done:
        return Forecast(None, "not enough history", rate, remaining)
    days = math.ceil(remaining / (recent / weeks) * 7)
    if days > rules.forecast_max_days:
        return Forecast(None, "throughput too low to forecast", rate, remaining)
    return Forecast(utc_date(as_of) + timedelta(days=days), "", rate, remaining)


def progress_report(
    customer: Customer,
    project_key: str,
    project_name: str,
    items: Iterable[Item],
    rules: ProgressRules,
    as_of: datetime,
    jira_url: str = "",
    *,
    project_total: int | None = None,
) -> ProgressReport:
    """The progress report of one (customer, project) pair from its linked work items.

    ``project_total`` (the counted items of the whole project) lets the summary say when
    the pair counts only part of the project.
    """
    today = utc_date(as_of)
    blocked_statuses, blocked_labels = _blocked_sets(rules)
    status_blocked: dict[str, bool] = {}
    counted: list[Item] = []
    keep = rules.measure != "count"
    todo = in_progress = done = 0
    overdue_items: list[Item] = []
    blocked_items: list[Item] = []
    resolved: list[datetime] = []
    versions: dict[str, _Tally] = {}
    first_created: datetime | None = None
    if not isinstance(items, tuple | list):
        items = tuple(items)
    for item in items:
        if item.is_epic:
            continue
        if keep:
            counted.append(item)
        created = item.created
        if created is not None and (first_created is None or created < first_created):
            first_created = created
        category = item.status_category
        is_done = category == "done"
        if is_done:
            done += 1
            if item.resolved is not None:
                resolved.append(item.resolved)
        else:
            if category == "todo":
                todo += 1
            else:
                in_progress += 1
            due = item.due
            if due is not None and due < today:
                overdue_items.append(item)
            status = item.status
            is_blocked = status_blocked.get(status)
            if is_blocked is None:
                is_blocked = status_blocked[status] = status.casefold() in blocked_statuses
            if is_blocked or (item.labels and not blocked_labels.isdisjoint(item.labels)):
                blocked_items.append(item)
        if item.fix_versions:
            for version in item.fix_versions:
                if version.released or version.archived or version.release_date is None:
                    continue
                tally = versions.get(version.id)
                if tally is None:
                    tally = versions[version.id] = _Tally(version)
                tally.total += 1
                tally.done += is_done
    total = todo + in_progress + done
    if done == total or len(resolved) < rules.forecast_min_done:
        # Only a forecast needs it (a young project's rate is over its age, not the window).
        first_created = None
    percent_complete, measure, note = _percent(counted, done, rules.measure, total)
    milestone = _milestone(versions, today)
    forecast = forecast_completion(
        remaining=total - done,
        total=total,
        resolved=resolved,
        first_created=first_created,
        as_of=as_of,
        rules=rules,
    )
    overdue, blocked = len(overdue_items), len(blocked_items)
    health, reasons = assess_health(
        open_items=total - done,
        overdue=overdue,
        blocked=blocked,
        milestone=milestone,
        forecast=forecast,
        rules=rules.health,
    )
    report = ProgressReport(
        customer_id=customer.id,
        customer_name=customer.name,
        project_key=project_key,
        project_name=project_name,
        as_of=as_of,
        total=total,
        todo=todo,
        in_progress=in_progress,
        done=done,
        overdue=overdue,
        blocked=blocked,
        percent_complete=percent_complete,
        measure=measure,
        measure_note=note,
        next_milestone=milestone,
        forecast=forecast,
        health=health,
        health_reasons=reasons,
        top_risks=top_risks(blocked_items, overdue_items, today, rules.top_risks),
        summary="",
        url=f"{jira_url.rstrip('/')}/browse/{project_key}" if jira_url else "",
    )
    return for_customer(report, customer, project_total)


def for_customer(
    report: ProgressReport, customer: Customer, project_total: int | None = None
) -> ProgressReport:
    """``report`` for ``customer``: the report of a pair with the same items (a project
    linked to several customers counts the same items for each), with the customer's id
    and name, and the summary naming it where it counts part of the project."""
    summary = progress_summary(
        project_name=report.project_name,
        total=report.total,
        done=report.done,
        in_progress=report.in_progress,
        overdue=report.overdue,
        blocked=report.blocked,
        percent_complete=report.percent_complete,
        milestone=report.next_milestone,
        forecast=report.forecast,
        health=report.health,
        health_reasons=report.health_reasons,
        customer_name=customer.name,
        project_total=project_total,
    )
    return replace(report, customer_id=customer.id, customer_name=customer.name, summary=summary)
