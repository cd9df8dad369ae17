"""Progress of a (customer, project) pair: the counting rules the CRM fields depend on,
percent by measure, milestone, forecast, health, risks and the summary."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from mappings.model import Customer, Forecast, Milestone, ProgressReport
from mappings.normalise_jira import normalise_issues
from mappings.progress import forecast_completion, progress_report
from mappings.rules import HealthRules, ProgressRules
from tests.mappings.factories import ACME, AS_OF, FIELDS, TODAY, days_ago, issue, jira_time

CUSTOMER = Customer(ACME, "Acme Corp", "Enterprise", None, None, None, 0, 0, "")
RULES = ProgressRules()


def report(raws: list[dict[str, Any]], rules: ProgressRules = RULES, **kw: Any) -> ProgressReport:
    items = normalise_issues(raws, FIELDS)
    return progress_report(CUSTOMER, "APOLLO", "Apollo", items, rules, AS_OF, **kw)


def version(
    name: str,
    release: str | None,
    released: bool = False,
    archived: bool = False,
    id_: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id_ or name,
        "name": name,
        "released": released,
        "archived": archived,
    }
    if release:
        out["releaseDate"] = release
    return out


def test_counts_by_status_category_epics_excluded() -> None:
    result = report(
        [
            issue("APOLLO-1", type_name="Epic", status="In Progress"),
            issue("APOLLO-2", status="To Do"),
            issue("APOLLO-3", status="In Progress"),
            issue("APOLLO-4", status="Blocked"),
            issue("APOLLO-5", status="Done"),
            issue(
                "APOLLO-6",
                type_name="Sub-task",
                status="Done",
                parent="APOLLO-3",
                parent_type="Story",
            ),
        ]
    )
    assert (result.total, result.todo, result.in_progress, result.done) == (5, 1, 2, 2)
    assert result.percent_complete == 40.0 and result.measure == "count"
    assert result.external_id == f"APOLLO:{ACME}"


def test_overdue_is_not_done_and_due_before_the_utc_date() -> None:
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    result = report(
        [
            issue("APOLLO-1", due=yesterday),
            issue("APOLLO-2", due=TODAY.isoformat()),  # due today: not overdue
            issue("APOLLO-3", due=yesterday, status="Done"),
            issue("APOLLO-4", due="2020-01-01", status="In Progress"),
            issue("APOLLO-5"),
        ]
    )
    assert result.overdue == 2


def test_blocked_by_status_or_label_and_only_when_open() -> None:
    result = report(
        [
            issue("APOLLO-1", status="Blocked"),
            issue("APOLLO-2", labels=["blocked"]),
            issue("APOLLO-3", status="Done", labels=["blocked"]),
            issue("APOLLO-4", category="indeterminate", status="BLOCKED"),
            issue("APOLLO-5", labels=["Blocked-ish"]),
        ]
    )
    assert result.blocked == 3
    custom = report(
        [issue("APOLLO-1", category="indeterminate", status="Waiting for customer")],
        ProgressRules(blocked_statuses=("Waiting for customer",), blocked_labels=()),
    )
    assert custom.blocked == 1


def test_percent_by_story_points_with_missing_points_at_the_average() -> None:
    rules = ProgressRules(measure="story_points")
    result = report(
        [
            issue("APOLLO-1", points=8, status="Done"),
            issue("APOLLO-2", points=2),
            issue("APOLLO-3", points=None, status="Done"),  # counts at the average, 5
        ],
        rules,
    )
    assert result.percent_complete == pytest.approx(round(13 / 15 * 100, 1))
    assert result.measure == "story_points"
    assert result.measure_note == "1 of 3 items have no story points and count at the average (5)"
    full = report([issue("APOLLO-1", points=3, status="Done"), issue("APOLLO-2", points=1)], rules)
    assert full.percent_complete == 75.0 and full.measure_note == ""


def test_percent_falls_back_to_count_when_nothing_has_the_measure() -> None:
    result = report(
        [issue("APOLLO-1", status="Done"), issue("APOLLO-2"), issue("APOLLO-3")],
        ProgressRules(measure="estimate"),
    )
    assert result.percent_complete == 33.3 and result.measure == "count"
    assert result.measure_note == "no item has an estimate; measured by item count"


def test_percent_by_estimate() -> None:
    result = report(
        [issue("APOLLO-1", estimate=3600, status="Done"), issue("APOLLO-2", estimate=10800)],
        ProgressRules(measure="estimate"),
    )
    assert result.percent_complete == 25.0 and result.measure == "estimate"


def test_empty_pair() -> None:
    result = report([issue("APOLLO-1", type_name="Epic")])
    assert result.total == 0 and result.percent_complete == 0.0
    assert result.forecast == Forecast(None, "no work items", 0.0, 0)
    assert result.health == "green"
    assert result.summary == "Apollo: no work items are linked yet."


def test_next_milestone_is_the_earliest_dated_unreleased_version() -> None:
    v1 = version("Apollo 1.0", "2026-10-01", released=True)
    v2 = version("Apollo 2.0", "2026-12-15")
    v3 = version("Apollo 3.0", "2027-02-01")
    old = version("Apollo 0.9", "2026-01-01", archived=True)
    undated = version("Apollo Later", None)
    result = report(
        [
            issue("APOLLO-1", versions=[v1, v2], status="Done"),
            issue("APOLLO-2", versions=[v2]),
            issue("APOLLO-3", versions=[v3, old, undated]),
            issue("APOLLO-4", versions=[v2], type_name="Epic"),  # epics do not count
        ]
    )
    assert result.next_milestone == Milestone("Apollo 2.0", date(2026, 12, 15), False, 2, 1, 50.0)
    assert report([issue("APOLLO-1", versions=[v1, old, undated])]).next_milestone is None


def test_an_overdue_unreleased_version_stays_the_next_milestone() -> None:
    late = version("Apollo 1.5", "2026-11-01")
    later = version("Apollo 2.0", "2026-12-15")
    result = report([issue("APOLLO-1", versions=[later]), issue("APOLLO-2", versions=[late])])
    assert result.next_milestone is not None
    assert result.next_milestone.name == "Apollo 1.5" and result.next_milestone.overdue
    assert result.health == "amber"
    assert "milestone Apollo 1.5 was due 2026-11-01 and is not released" in result.health_reasons


def done_items(count: int, days: float, prefix: int = 100) -> list[dict[str, Any]]:
    return [
        issue(
            f"APOLLO-{prefix + n}",
            status="Done",
            created=days_ago(120),
            resolved=days_ago(days + n * 0.1),
        )
        for n in range(count)
    ]


def test_forecast_from_recent_throughput() -> None:
    # 12 done in the last 6 weeks = 2 a week; 6 open -> 3 weeks.
    raws = done_items(12, days=3) + [issue(f"APOLLO-{n}", created=days_ago(120)) for n in range(6)]
    result = report(raws)
    assert result.forecast.weekly_throughput == 2.0 and result.forecast.remaining == 6
    assert result.forecast.date == TODAY + timedelta(days=21) and result.forecast.note == ""


def test_forecast_counts_only_the_window_and_a_young_project_by_its_age() -> None:
    old_done = done_items(10, days=60, prefix=200)  # before the 6-week window
    raws = old_done + done_items(2, days=1) + [issue("APOLLO-1", created=days_ago(120))]
    assert report(raws).forecast.note == "not enough history"
    # Created two weeks ago, 4 done since: 2 a week, not 4/6.
    young = [
        issue(f"APOLLO-{n}", status="Done", created=days_ago(14), resolved=days_ago(n + 1))
        for n in range(4)
    ] + [issue("APOLLO-9", created=days_ago(14)), issue("APOLLO-10", created=days_ago(14))]
    forecast = report(young).forecast
    assert forecast.weekly_throughput == 2.0 and forecast.date == TODAY + timedelta(days=7)


def test_forecast_edge_cases() -> None:
    assert report(done_items(3, days=2)).forecast.note == "all work done"
    forecast = forecast_completion(
        remaining=10_000,
        total=10_003,
        resolved=[days_ago(1)] * 3,
        first_created=None,
        as_of=AS_OF,
        rules=RULES,
    )
    assert forecast.date is None and forecast.note == "throughput too low to forecast"
    assert (
        forecast_completion(
            remaining=1,
            total=4,
            resolved=[days_ago(1)] * 3,
            first_created=None,
            as_of=AS_OF,
            rules=replace(RULES, forecast_min_done=4),
        ).note
        == "not enough history"
    )


def ratio_items(open_count: int, overdue: int = 0, blocked: int = 0) -> list[dict[str, Any]]:
    raws = []
    for n in range(open_count):
        raws.append(
            issue(
                f"APOLLO-{n + 1}",
                due="2026-01-01" if n < overdue else None,
                status="Blocked" if overdue <= n < overdue + blocked else "In Progress",
            )
        )
    return raws


@pytest.mark.parametrize(
    ("overdue", "blocked", "health"),
    [
        (0, 0, "green"),
        (1, 0, "amber"),
        (2, 0, "amber"),
        (3, 0, "red"),
        (0, 1, "amber"),
        (0, 3, "red"),
        (1, 3, "red"),
    ],
)
def test_health_from_overdue_and_blocked_shares(overdue: int, blocked: int, health: str) -> None:
    assert report(ratio_items(10, overdue, blocked)).health == health


def test_health_reasons_read_well_and_worst_first() -> None:
    result = report(ratio_items(10, overdue=1, blocked=3))
    assert result.health_reasons == (
        "3 of 10 open items blocked (30%)",
        "1 of 10 open items overdue (10%)",
    )


def test_health_thresholds_are_configurable() -> None:
    strict = ProgressRules(
        health=HealthRules(
            amber_overdue_ratio=0.5,
            red_overdue_ratio=0.9,
            amber_blocked_ratio=0.5,
            red_blocked_ratio=0.9,
        )
    )
    assert report(ratio_items(10, overdue=3, blocked=3), strict).health == "green"


def test_forecast_slip_against_the_next_milestone() -> None:
    milestone = version("Apollo 2.0", (TODAY + timedelta(days=7)).isoformat())
    # 2 a week, 6 open -> 21 days, 14 days after the milestone: red.
    raws = done_items(12, days=3) + [
        issue(f"APOLLO-{n}", created=days_ago(120), versions=[milestone]) for n in range(6)
    ]
    result = report(raws)
    assert result.health == "red"
    slip = f"forecast {TODAY + timedelta(days=21)} is 14 days after milestone Apollo 2.0"
    assert result.health_reasons[0].startswith(slip)
    gentle = ProgressRules(health=HealthRules(red_forecast_slip_days=30))
    assert report(raws, gentle).health == "amber"


def test_done_without_a_resolution_still_forecasts_and_slips() -> None:
    """Workflows that reach Done with no resolution: the done date is when the item entered
    the done category (``statuscategorychangedate``), so throughput, the forecast and the
    forecast-slip health work as with resolved items."""
    milestone = version("Apollo 2.0", (TODAY + timedelta(days=7)).isoformat())
    done = [
        issue(
            f"APOLLO-{100 + n}",
            status="Done",
            created=days_ago(120),
            resolutiondate=None,
            resolution=None,
            statuscategorychangedate=jira_time(days_ago(3 + n * 0.1)),
        )
        for n in range(12)
    ]
    raws = done + [
        issue(f"APOLLO-{n}", created=days_ago(120), versions=[milestone]) for n in range(6)
    ]
    result = report(raws)
    assert result.forecast.weekly_throughput == 2.0
    assert result.forecast.date == TODAY + timedelta(days=21)
    assert result.health == "red"
    slip = f"forecast {TODAY + timedelta(days=21)} is 14 days after milestone Apollo 2.0"
    assert result.health_reasons[0].startswith(slip)


def test_top_risks_name_blocked_then_longest_overdue() -> None:
    result = report(
        [
            issue("APOLLO-1", due="2026-11-01", summary="Export"),
            issue("APOLLO-2", due="2026-10-01", summary="Login"),
            issue("APOLLO-3", status="Blocked", priority="Low", summary="SSO"),
            issue(
                "APOLLO-4", status="Blocked", priority="Highest", due="2026-11-20", summary="API"
            ),
            issue("APOLLO-5", summary="Fine"),
        ]
    )
    assert result.top_risks == (
        "APOLLO-4 \u201cAPI\u201d is blocked, 1 day overdue",
        "APOLLO-3 \u201cSSO\u201d is blocked",
        "APOLLO-2 \u201cLogin\u201d was due 2026-10-01 (51 days overdue)",
    )
    assert report(ratio_items(3, overdue=3), replace(RULES, top_risks=0)).top_risks == ()


def test_summary_is_plain_english() -> None:
    milestone = version("Apollo 2.0", "2026-12-15")
    raws = [
        *done_items(6, days=3),
        issue("APOLLO-1", versions=[milestone], status="In Progress"),
        issue("APOLLO-2", due="2026-11-01"),
    ]
    result = report(raws, jira_url="https://jira.example/")
    assert result.summary == (
        "Apollo: 75% complete, 6 of 8 items done and 1 in progress. Open items: 1 overdue. "
        "Next milestone Apollo 2.0 is due 2026-12-15; 0 of 1 item done (0%). "
        "At the recent pace the remaining work should be done by 2026-12-05. "
        "Status Red: 1 of 2 open items overdue (50%)."
    )
    assert result.url == "https://jira.example/browse/APOLLO"
    assert report(done_items(3, days=1)).summary.endswith(
        "All work is done. Status Green: on track."
    )
    assert "No completion forecast yet (not enough history)." in report([issue("APOLLO-1")]).summary
