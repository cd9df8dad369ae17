"""What the progress report people read says (SPEC section 4, ``report``): pure assembly.

Values in, values out: the merged model (:class:`~mappings.merge.MergeResult`'s reports,
customers, flags, rollups), the stored progress snapshots and satisfaction history. The
rules that make those values (progress, health, flags) stay where they are; this module
only arranges them for a reader: burn-up series, milestone table, overdue and blocked
lists, satisfaction trend, risks worst first, and a plain-language paragraph per customer.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from mappings.dates import utc_date
from mappings.model import (
    FLAG_LEVELS,
    Customer,
    FlagLevel,
    HealthLevel,
    ProgressReport,
    Satisfaction,
    SatisfactionFlag,
    SegmentRollup,
    WorkItem,
)
from mappings.progress import _blocked_sets  # the one definition of "blocked"
from mappings.rollup import UNASSIGNED
from mappings.rules import ProgressRules
from mappings.satisfaction import score_label
from mappings.text import LEVEL_WORDS, covered_items, join_reasons, number, percent, plural

__all__ = [
    "HEALTH_ORDER",
    "LEVEL_TITLES",
    "NO_DATA_BADGE",
    "BurnPoint",
    "CustomerReport",
    "ItemLine",
    "MilestoneLine",
    "PairReport",
    "ScorePoint",
    "SegmentReport",
    "Trend",
    "blocked_lines",
    "burnup_history",
    "burnup_series",
    "customer_report",
    "customer_summary",
    "listed_burnup",
    "milestone_lines",
    "overdue_lines",
    "satisfaction_badge",
    "score_series",
    "score_trend",
    "scores_by_customer",
    "segment_reports",
    "synced_from",
    "top_risks",
]

#: Health from worst to best: sorting by this index puts the worst first.
HEALTH_ORDER: tuple[HealthLevel, ...] = ("red", "amber", "green")
#: A score moving less than this (in the score's own units) is "steady".
STEADY_WITHIN = 0.1
#: Flag levels as badge titles.
LEVEL_TITLES: dict[FlagLevel, str] = {"ok": "OK", "watch": "On watch", "at_risk": "At risk"}
#: The badge of a customer flagged "ok" only because it has no score.
NO_DATA_BADGE = ("none", "No satisfaction data")
#: How far back the trend looks: the newest score against the last one this old.
TREND_DAYS = 30
#: Days between the burn-up points rebuilt from creation and done dates: daily for a
#: history of up to ``DAILY_HISTORY_DAYS`` days, weekly beyond.
HISTORY_STEP_DAYS = 7
DAILY_HISTORY_DAYS = 31
#: Burn-up points a text or Markdown report lists at most (the chart draws them all).
LISTED_BURN_POINTS = 12


@dataclass(frozen=True, slots=True)
class BurnPoint:
    """One day of a burn-up chart: work done against the total scope.

    ``rebuilt`` points come from the items' creation and done dates (days before the
    first stored snapshot), not from a snapshot.
    """

    day: date
    done: int
    total: int
    rebuilt: bool = False


@dataclass(frozen=True, slots=True)
class ScorePoint:
    """A customer's (or a group's average) satisfaction score on one day."""

    day: date
    score: float


@dataclass(frozen=True, slots=True)
class Trend:
    """Where a score is heading: ``direction`` and the words for it."""

    direction: Literal["up", "down", "steady", "new", "none"]
    delta: float | None
    since: date | None
    words: str


@dataclass(frozen=True, slots=True)
class ItemLine:
    """A work item as the overdue and blocked lists show it."""

    key: str
    summary: str
    status: str
    assignee: str | None
    priority: str | None
    due: date | None
    days_overdue: int


@dataclass(frozen=True, slots=True)
class MilestoneLine:
    """A dated fix version of the pair's items, and how done its items are."""

    name: str
    release_date: date
    released: bool
    overdue: bool
    items_total: int
    items_done: int
    percent_complete: float


@dataclass(frozen=True, slots=True)
class PairReport:
    """Everything the report shows for one linked (customer, project) pair."""

    progress: ProgressReport
    milestones: tuple[MilestoneLine, ...]
    overdue: tuple[ItemLine, ...]
    blocked: tuple[ItemLine, ...]
    burnup: tuple[BurnPoint, ...]
    #: Counted items of the whole project (None: not known); more than
    #: ``progress.total`` when the pair covers only part of the project.
    project_total: int | None = None


@dataclass(frozen=True, slots=True)
class CustomerReport:
    """One customer: satisfaction with its trend, cases, its projects, risks, a summary."""

    customer: Customer
    flag: SatisfactionFlag | None
    scores: tuple[ScorePoint, ...]
    trend: Trend
    projects: tuple[PairReport, ...]
    health: HealthLevel | None
    top_risks: tuple[str, ...]
    summary: str


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """One customer group: its rollup, score trend, customers and projects worst first."""

    rollup: SegmentRollup
    trend: Trend
    customers: tuple[tuple[Customer, SatisfactionFlag | None], ...]
    projects: tuple[ProgressReport, ...]
    #: Customers flagged "ok" only for want of a score (``rollup.ok`` counts them).
    no_data: int = 0

    @property
    def ok(self) -> int:
        """Customers whose score is OK: not those with no satisfaction data."""
        return self.rollup.ok - self.no_data


# -- series and trends ---------------------------------------------------------------------


def burnup_series(
    snapshots: Iterable[tuple[date, int, int]], history: Iterable[BurnPoint] = ()
) -> tuple[BurnPoint, ...]:
    """(day, done, total) snapshots as a burn-up series, oldest first, one point a day.

    ``history`` (:func:`burnup_history`) fills the days before the first snapshot:
    snapshots win wherever they exist.
    """
    by_day = {day: BurnPoint(day, done, total) for day, done, total in snapshots}
    first = min(by_day, default=None)
    for point in history:
        if first is None or point.day < first:
            by_day.setdefault(point.day, point)
    return tuple(by_day[day] for day in sorted(by_day))


def burnup_history(
    items: Iterable[WorkItem], before: date, step_days: int | None = None
) -> tuple[BurnPoint, ...]:
    """The burn-up of the counted items before ``before`` (the first snapshot's day, or the
    report's day when there is none), so a first report already has a history.

    Scope on a day is the items created by then; done, the items done by then, dated by
    when they entered the done category (:attr:`WorkItem.resolved`; a done item with no
    date counts from its last update, which is no earlier). One point every ``step_days``
    (default: a day, or a week for a history longer than :data:`DAILY_HISTORY_DAYS`) back
    from ``before``, and one on the first creation day. What is not known now is not
    shown: items deleted or moved away since, and reopened work; the stored snapshots
    refine it from the first sync on.
    """
    created: list[date] = []
    undated = 0  # items without a creation time: in scope from the start
    done: list[date] = []
    for item in items:
        if item.is_epic:
            continue
        born = utc_date(item.created) if item.created is not None else None
        if born is None:
            undated += 1
        else:
            created.append(born)
        if item.status_category == "done":
            moment = item.resolved or item.updated
            if moment is not None:
                finished = utc_date(moment)
                done.append(finished if born is None or finished >= born else born)
    if not created:
        return ()
    created.sort()
    done.sort()
    start = created[0]
    if step_days is None:
        step_days = 1 if (before - start).days <= DAILY_HISTORY_DAYS else HISTORY_STEP_DAYS
    step = timedelta(days=max(1, step_days))
    days: list[date] = []
    day = before - step
    while day > start:
        days.append(day)
        day -= step
    if start < before:
        days.append(start)
    return tuple(
        BurnPoint(
            day,
            bisect_right(done, day),
            bisect_right(created, day) + undated,
            rebuilt=True,
        )
        for day in reversed(days)
    )


def synced_from(points: Sequence[BurnPoint]) -> date | None:
    """The day the synced snapshots of a series begin, when rebuilt points precede it
    (None: the series is all snapshots, or all rebuilt)."""
    ordered = sorted(points, key=lambda p: p.day)
    if not ordered or not ordered[0].rebuilt:
        return None
    return next((p.day for p in ordered if not p.rebuilt), None)


def listed_burnup(
    points: Sequence[BurnPoint], limit: int = LISTED_BURN_POINTS
) -> tuple[BurnPoint, ...]:
    """At most ``limit`` points of a series, evenly spread, the first and last kept: what a
    text line can list of a chart that may span a year."""
    if len(points) <= limit or limit < 2:
        return tuple(points)
    last = len(points) - 1
    picked = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return tuple(points[i] for i in picked)


def score_series(
    stored: Iterable[ScorePoint], satisfaction: Satisfaction | None, today: date
) -> tuple[ScorePoint, ...]:
    """A customer's scores for the trend and its chart, oldest first: the stored days, then
    the current score on the day it was measured (``measured_at``; the report's day when
    unknown or later), so the trend's dates agree with the score's date.

    Stored days are the days a sync saw a score, not when it was measured: those from the
    measured day on saw the current score again (or one it replaced) and are left out.
    """
    points = sorted(stored, key=lambda p: p.day)
    if satisfaction is None:
        return tuple(p for p in points if p.day <= today)
    measured = today
    if satisfaction.measured_at is not None:
        measured = min(utc_date(satisfaction.measured_at), today)
    return (*(p for p in points if p.day < measured), ScorePoint(measured, satisfaction.score))


def score_trend(
    points: Sequence[ScorePoint], scale: int | None = None, window_days: int = TREND_DAYS
) -> Trend:
    """The newest score against the last one at least ``window_days`` older (else the
    oldest), as a direction and words such as "down 0.5 since 2026-02-01"."""
    if not points:
        return Trend("none", None, None, "no satisfaction data")
    ordered = sorted(points, key=lambda p: p.day)
    latest = ordered[-1]
    if len(ordered) == 1 or ordered[0].day == latest.day:
        return Trend("new", None, latest.day, f"first measured {latest.day}")
    cutoff = latest.day - timedelta(days=window_days)
    older = [p for p in ordered[:-1] if p.day <= cutoff]
    base = older[-1] if older else ordered[0]
    delta = round(latest.score - base.score, 2)
    out_of = f"/{scale}" if scale else ""
    if abs(delta) < STEADY_WITHIN:
        return Trend("steady", delta, base.day, f"steady since {base.day}")
    direction: Literal["up", "down"] = "up" if delta > 0 else "down"
    return Trend(
        direction,
        delta,
        base.day,
        f"{direction} {number(abs(delta))} since {base.day} (from {number(base.score)}{out_of})",
    )


# -- work items ----------------------------------------------------------------------------


def _line(item: WorkItem, today: date) -> ItemLine:
    late = (today - item.due).days if item.due is not None and item.due < today else 0
    return ItemLine(
        item.key, item.summary, item.status, item.assignee, item.priority, item.due, late
    )


def overdue_lines(items: Iterable[WorkItem], today: date) -> tuple[ItemLine, ...]:
    """Open, counted items past their due date, longest overdue first (SPEC section 6)."""
    late = [
        i for i in items if not i.is_epic and not i.is_done and i.due is not None and i.due < today
    ]
    late.sort(key=lambda i: (i.due, i.number, i.key))
    return tuple(_line(i, today) for i in late)


def blocked_lines(
    items: Iterable[WorkItem], rules: ProgressRules, today: date
) -> tuple[ItemLine, ...]:
    """Open, counted items that are blocked by status or label, in key order."""
    statuses, labels = _blocked_sets(rules)
    blocked = [
        i
        for i in items
        if not i.is_epic
        and not i.is_done
        and (i.status.casefold() in statuses or not labels.isdisjoint(i.labels))
    ]
    blocked.sort(key=lambda i: (i.project_key, i.number, i.key))
    return tuple(_line(i, today) for i in blocked)


def milestone_lines(items: Iterable[WorkItem], today: date) -> tuple[MilestoneLine, ...]:
    """Every dated, unarchived fix version of the counted items, by date."""
    found: dict[str, list[int]] = {}
    versions = {}
    for item in items:
        if item.is_epic:
            continue
        for version in item.fix_versions:
            if version.archived or version.release_date is None:
                continue
            versions[version.id] = version
            tally = found.setdefault(version.id, [0, 0])
            tally[0] += 1
            tally[1] += item.is_done
    lines = []
    for version_id, (total, done) in found.items():
        version = versions[version_id]
        assert version.release_date is not None
        lines.append(
            MilestoneLine(
                name=version.name,
                release_date=version.release_date,
                released=version.released,
                overdue=not version.released and version.release_date < today,
                items_total=total,
                items_done=done,
                percent_complete=round(done * 100 / total, 1) if total else 0.0,
            )
        )
    lines.sort(key=lambda m: (m.release_date, m.name))
    return tuple(lines)


# -- customers -----------------------------------------------------------------------------


def _health_rank(health: HealthLevel) -> int:
    return HEALTH_ORDER.index(health)


def top_risks(pairs: Sequence[PairReport], limit: int = 5) -> tuple[str, ...]:
    """The customer's risks, worst project first: health reasons, then its item risks."""
    ordered = sorted(pairs, key=lambda p: (_health_rank(p.progress.health), p.progress.project_key))
    risks: list[str] = []
    for pair in ordered:
        report = pair.progress
        for reason in report.health_reasons:
            risks.append(f"{report.project_key}: {reason}")
        risks.extend(report.top_risks)
    return tuple(dict.fromkeys(risks))[:limit]


def _satisfaction_sentence(customer: Customer, flag: SatisfactionFlag | None, trend: Trend) -> str:
    sat = customer.satisfaction
    if sat is None:
        text = "There is no satisfaction score for this customer yet"
    else:
        text = f"Satisfaction is {score_label(sat.scale)} {number(sat.score)}/{sat.scale}"
        if trend.direction in ("up", "down", "steady"):
            text += f", {trend.words}"
    if flag is not None and flag.level != "ok":
        text += f"; the customer is {LEVEL_WORDS[flag.level]} ({join_reasons(flag.reasons)})"
    return text + "."


def _cases_sentence(customer: Customer) -> str:
    if customer.open_cases == 0:
        return "No support cases are open."
    escalated = (
        f", {customer.escalated_cases} of them escalated" if customer.escalated_cases else ""
    )
    return f"{plural(customer.open_cases, 'support case')} open{escalated}."


def _project_clause(pair: PairReport) -> str:
    report = pair.progress
    if report.total == 0:
        return f"{report.project_name} ({report.project_key}) has no work items linked yet"
    state = f"{percent(report.percent_complete)}% complete and {report.health}"
    covered = covered_items(
        report.total,
        pair.project_total,
        f"{report.project_name} ({report.project_key})",
        report.customer_name,
    )
    if covered is not None:
        # Only part of the project is this customer's: say whose numbers these are.
        verb = "is" if report.total == 1 else "are"
        clause = f"{covered} {verb} {state}"
    else:
        clause = f"{report.project_name} ({report.project_key}) is {state}"
    if report.health_reasons:
        clause += f" ({report.health_reasons[0]})"
    return clause


def customer_summary(
    customer: Customer, flag: SatisfactionFlag | None, trend: Trend, pairs: Sequence[PairReport]
) -> str:
    """One paragraph in plain language, the first thing a reader of the report sees."""
    segment = f" ({customer.segment})" if customer.segment else ""
    if not pairs:
        opening = f"{customer.name}{segment} has no Jira project linked yet."
    else:
        clauses = [
            _project_clause(p)
            for p in sorted(
                pairs, key=lambda p: (_health_rank(p.progress.health), p.progress.project_key)
            )
        ]
        opening = (
            f"{customer.name}{segment} has {plural(len(pairs), 'linked project')}: "
            + "; ".join(clauses)
            + "."
        )
    parts = [opening]
    milestones = [p.progress.next_milestone for p in pairs if p.progress.next_milestone]
    if milestones:
        nearest = min(milestones, key=lambda m: (m.release_date, m.name))
        due = "was due" if nearest.overdue else "is due"
        parts.append(
            f"The next milestone, {nearest.name}, {due} {nearest.release_date} and is "
            f"{percent(nearest.percent_complete)}% done."
        )
    parts.append(_satisfaction_sentence(customer, flag, trend))
    parts.append(_cases_sentence(customer))
    return " ".join(parts)


def satisfaction_badge(customer: Customer, flag: SatisfactionFlag | None) -> tuple[str, str] | None:
    """The badge of a customer's flag as (CSS class suffix, title), or None for no flag.

    A customer without a satisfaction score is flagged "ok" when nothing else (escalated
    cases) counts against it: that is no data, not good news, so its badge says
    "No satisfaction data" (class ``none``, not the green ``ok``).
    """
    if flag is None:
        return None
    if flag.level == "ok" and customer.satisfaction is None:
        return NO_DATA_BADGE
    return flag.level, LEVEL_TITLES[flag.level]


def customer_report(
    customer: Customer,
    flag: SatisfactionFlag | None,
    scores: Sequence[ScorePoint],
    pairs: Sequence[PairReport],
    risk_limit: int = 5,
) -> CustomerReport:
    """The report of one customer from its pairs (any order: worst first here)."""
    ordered = tuple(
        sorted(pairs, key=lambda p: (_health_rank(p.progress.health), p.progress.project_key))
    )
    scale = customer.satisfaction.scale if customer.satisfaction else None
    # Without a current score there is no newest score to trend (history stays charted).
    trend = score_trend(scores, scale) if customer.satisfaction else score_trend(())
    health = ordered[0].progress.health if ordered else None
    return CustomerReport(
        customer=customer,
        flag=flag,
        scores=tuple(sorted(scores, key=lambda p: p.day)),
        trend=trend,
        projects=ordered,
        health=health,
        top_risks=top_risks(ordered, risk_limit),
        summary=customer_summary(customer, flag, trend, ordered),
    )


# -- customer groups -----------------------------------------------------------------------


def _segment_scores(
    members: Sequence[Customer], history: Mapping[str, Sequence[ScorePoint]]
) -> tuple[ScorePoint, ...]:
    """The group's average score per day, over the members scored that day."""
    days: dict[date, list[float]] = defaultdict(list)
    for customer in members:
        for point in history.get(customer.id, ()):
            days[point.day].append(point.score)
    return tuple(ScorePoint(day, round(sum(v) / len(v), 2)) for day, v in sorted(days.items()))


def _segment_badness(segment: SegmentReport) -> tuple[float, ...]:
    r = segment.rollup
    average = r.average_satisfaction if r.average_satisfaction is not None else float("inf")
    return (-r.red, -r.at_risk, -r.amber, -r.watch, average)


def segment_reports(
    rollups: Iterable[SegmentRollup],
    customers: Iterable[Customer],
    flags: Iterable[SatisfactionFlag],
    reports: Iterable[ProgressReport],
    history: Mapping[str, Sequence[ScorePoint]],
    scale: int | None = None,
) -> tuple[SegmentReport, ...]:
    """One entry per customer group, worst first (red projects, at-risk customers, amber,
    on watch, then lowest average satisfaction); projects and customers worst first too."""
    flag_of = {f.customer_id: f for f in flags}
    members: dict[str, list[Customer]] = defaultdict(list)
    segment_of: dict[str, str] = {}
    for customer in customers:
        segment = customer.segment or UNASSIGNED
        members[segment].append(customer)
        segment_of[customer.id] = segment
    projects: dict[str, list[ProgressReport]] = defaultdict(list)
    for report in reports:
        if report.customer_id in segment_of:
            projects[segment_of[report.customer_id]].append(report)

    def customer_key(customer: Customer) -> tuple[int, float, str]:
        flag = flag_of.get(customer.id)
        level = FLAG_LEVELS.index(flag.level) if flag else 0
        score = customer.satisfaction.score if customer.satisfaction else float("inf")
        return (-level, score, customer.name)

    out = [
        SegmentReport(
            rollup=rollup,
            trend=score_trend(_segment_scores(members[rollup.segment], history), scale),
            customers=tuple(
                (c, flag_of.get(c.id)) for c in sorted(members[rollup.segment], key=customer_key)
            ),
            projects=tuple(
                sorted(
                    projects[rollup.segment],
                    key=lambda r: (
                        _health_rank(r.health),
                        -r.overdue,
                        r.project_key,
                        r.customer_name,
                    ),
                )
            ),
            no_data=sum(
                satisfaction_badge(c, flag_of.get(c.id)) == NO_DATA_BADGE
                for c in members[rollup.segment]
            ),
        )
        for rollup in rollups
    ]
    out.sort(key=lambda s: (*_segment_badness(s), s.rollup.segment))
    return tuple(out)


def scores_by_customer(
    rows: Iterable[tuple[str, date, float | None]],
) -> dict[str, tuple[ScorePoint, ...]]:
    """Stored satisfaction days (customer id, day, score) as series; unscored days dropped."""
    series: dict[str, list[ScorePoint]] = defaultdict(list)
    for customer_id, day, score in rows:
        if score is not None:
            series[customer_id].append(ScorePoint(day, score))
    return {cid: tuple(sorted(points, key=lambda p: p.day)) for cid, points in series.items()}
