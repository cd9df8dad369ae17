"""What the progress report says, from the pure assembly in mappings/report.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from mappings.merge import MergeResult, merge
from mappings.model import SatisfactionFlag
from mappings.normalise_jira import normalise_issues
from mappings.report import (
    BurnPoint,
    PairReport,
    ScorePoint,
    blocked_lines,
    burnup_history,
    burnup_series,
    customer_report,
    listed_burnup,
    milestone_lines,
    overdue_lines,
    satisfaction_badge,
    score_series,
    score_trend,
    scores_by_customer,
    segment_reports,
    synced_from,
    top_risks,
)

from .factories import (
    ACME,
    AS_OF,
    FIELDS,
    GLOBEX,
    INITECH,
    RULES,
    TODAY,
    account,
    case,
    days_ago,
    issue,
    jira_time,
)

D = TODAY


def _version(vid: str, name: str, day: date | None, released: bool = False) -> dict[str, object]:
    return {
        "id": vid,
        "name": name,
        "released": released,
        "archived": False,
        "releaseDate": day.isoformat() if day else None,
    }


def _world() -> MergeResult:
    v1 = _version("1", "Apollo 1.0", D - timedelta(days=30), released=True)
    v2 = _version("2", "Apollo 2.0", D + timedelta(days=10))
    v3 = _version("3", "Apollo 3.0", None)
    issues = [
        issue("APOLLO-1", account=ACME, type_name="Epic", due="2020-01-01"),
        issue("APOLLO-2", account=ACME, status="Done", versions=[v1]),
        issue("APOLLO-3", account=ACME, due=(D - timedelta(days=5)).isoformat(), versions=[v2]),
        issue(
            "APOLLO-4",
            account=ACME,
            status="Blocked",
            due=(D - timedelta(days=40)).isoformat(),
            priority="Highest",
            summary="Fix | the *export*",
            versions=[v2, v3],
        ),
        issue(
            "APOLLO-5", account=ACME, labels=["blocked"], due=(D + timedelta(days=3)).isoformat()
        ),
        issue("APOLLO-6", account=ACME, status="Done", due=(D - timedelta(days=9)).isoformat()),
        issue("ORION-1", account=GLOBEX, status="In Progress"),
        # An epic alone: the pair exists but counts nothing (an empty project).
        issue("VEGA-1", account=INITECH, type_name="Epic"),
    ]
    accounts = [
        account(ACME, "Acme Corp", csat=3.2, segment="Enterprise"),
        account(GLOBEX, "环球科技有限公司", csat=None, segment="大客户"),
        account(INITECH, "Initech", csat=4.6, segment="Enterprise"),
    ]
    cases = [case(ACME, escalated=True), case(ACME), case(GLOBEX, closed=True)]
    return merge(issues, accounts, cases, rules=RULES, as_of=AS_OF)


def _pairs(result: MergeResult, customer_id: str) -> list[PairReport]:
    reports = {(r.customer_id, r.project_key): r for r in result.reports}
    totals = {p.key: sum(not i.is_epic for i in p.items) for p in result.projects}
    return [
        PairReport(
            progress=reports[(link.customer_id, link.project_key)],
            milestones=milestone_lines(result.links.items_of(link), TODAY),
            overdue=overdue_lines(result.links.items_of(link), TODAY),
            blocked=blocked_lines(result.links.items_of(link), RULES.progress, TODAY),
            burnup=(),
            project_total=totals[link.project_key],
        )
        for link in result.links.links
        if link.customer_id == customer_id
    ]


def test_overdue_lists_open_counted_items_past_due_longest_first() -> None:
    result = _world()
    items = result.links.items_of(result.links.links[0])
    lines = overdue_lines(items, TODAY)
    assert [line.key for line in lines] == ["APOLLO-4", "APOLLO-3"]  # not the epic, not done
    assert [line.days_overdue for line in lines] == [40, 5]
    assert lines[0].summary == "Fix | the *export*"


def test_blocked_uses_the_configured_statuses_and_labels() -> None:
    result = _world()
    items = result.links.items_of(result.links.links[0])
    assert [line.key for line in blocked_lines(items, RULES.progress, TODAY)] == [
        "APOLLO-4",
        "APOLLO-5",
    ]
    reports = {r.project_key: r for r in result.reports}
    assert reports["APOLLO"].blocked == 2  # the same rule as the CRM record's


def test_milestones_are_dated_versions_by_date_with_completion() -> None:
    result = _world()
    lines = milestone_lines(result.links.items_of(result.links.links[0]), TODAY)
    assert [(m.name, m.released, m.overdue) for m in lines] == [
        ("Apollo 1.0", True, False),
        ("Apollo 2.0", False, False),
    ]
    assert (lines[0].items_done, lines[0].items_total, lines[0].percent_complete) == (1, 1, 100.0)
    assert (lines[1].items_done, lines[1].items_total, lines[1].percent_complete) == (0, 2, 0.0)


def test_burnup_series_is_one_point_a_day_oldest_first() -> None:
    series = burnup_series([(D, 5, 10), (D - timedelta(days=2), 1, 8), (D, 6, 10)])
    assert series == (BurnPoint(D - timedelta(days=2), 1, 8), BurnPoint(D, 6, 10))
    assert burnup_series([]) == ()


def test_burnup_history_rebuilds_scope_and_done_before_the_first_snapshot() -> None:
    raws = [
        issue("APOLLO-1", created=days_ago(70)),
        issue("APOLLO-2", status="Done", created=days_ago(60), resolved=days_ago(20)),
        # Done with no resolution: dated by when it entered the done category.
        issue(
            "APOLLO-3",
            status="Done",
            created=days_ago(50),
            resolutiondate=None,
            statuscategorychangedate=jira_time(days_ago(10)),
        ),
        # Done with neither date (an older Server): counted from its last update.
        issue(
            "APOLLO-4",
            status="Done",
            created=days_ago(40),
            resolutiondate=None,
            updated=jira_time(days_ago(3)),
        ),
        issue("APOLLO-5", status="In Progress", created=days_ago(1)),
        issue("APOLLO-6", type_name="Epic", created=days_ago(90)),  # never counted
    ]
    items = normalise_issues(raws, FIELDS)
    history = burnup_history(items, TODAY)
    assert all(p.rebuilt for p in history)
    days = [p.day for p in history]
    start = days_ago(70).date()
    # Weekly back from the day before the first snapshot, down to the first creation.
    assert days[0] == start and days[-1] == TODAY - timedelta(days=7)
    assert all(b - a == timedelta(days=7) for a, b in pairwise(days[1:]))
    by_day = {p.day: (p.done, p.total) for p in history}
    assert by_day[start] == (0, 1)
    assert by_day[TODAY - timedelta(days=7)] == (2, 4)  # APOLLO-2 and -3 done by then
    assert by_day[TODAY - timedelta(days=14)] == (1, 4)
    # A short history is daily; nothing before the first creation, none from a first day.
    young = burnup_history(items[-2:], TODAY)  # APOLLO-5 (and the epic)
    assert young == (BurnPoint(TODAY - timedelta(days=1), 0, 1, rebuilt=True),)
    assert burnup_history(items, start) == ()
    assert burnup_history((), TODAY) == ()


def test_snapshots_win_over_rebuilt_history() -> None:
    history = (
        BurnPoint(D - timedelta(days=14), 1, 5, rebuilt=True),
        BurnPoint(D - timedelta(days=7), 2, 6, rebuilt=True),
        BurnPoint(D - timedelta(days=3), 9, 9, rebuilt=True),  # after the first snapshot
    )
    series = burnup_series([(D - timedelta(days=5), 3, 7), (D, 4, 8)], history)
    assert series == (
        history[0],
        history[1],
        BurnPoint(D - timedelta(days=5), 3, 7),
        BurnPoint(D, 4, 8),
    )
    assert synced_from(series) == D - timedelta(days=5)
    assert synced_from(series[2:]) is None and synced_from(history) is None
    assert burnup_series([], history) == history


def test_a_long_burnup_lists_at_most_twelve_points() -> None:
    points = tuple(BurnPoint(D - timedelta(days=7 * n), n, 60) for n in range(52, -1, -1))
    listed = listed_burnup(points)
    assert len(listed) == 12 and listed[0] == points[0] and listed[-1] == points[-1]
    assert list(listed) == sorted(listed, key=lambda p: p.day)
    assert listed_burnup(points[:5]) == points[:5]


def test_score_trend_directions() -> None:
    assert score_trend([]).direction == "none"
    assert score_trend([ScorePoint(D, 4.0)]).words == f"first measured {D}"
    steady = score_trend([ScorePoint(D - timedelta(days=3), 4.0), ScorePoint(D, 4.05)], 5)
    assert steady.direction == "steady"
    down = score_trend(
        [
            ScorePoint(D - timedelta(days=60), 4.6),
            ScorePoint(D - timedelta(days=31), 4.2),
            ScorePoint(D - timedelta(days=10), 3.9),
            ScorePoint(D, 3.7),
        ],
        5,
    )
    # Against the last score at least 30 days old (4.2), not the oldest one.
    assert (down.direction, down.delta, down.since) == ("down", -0.5, D - timedelta(days=31))
    assert down.words == f"down 0.5 since {D - timedelta(days=31)} (from 4.2/5)"
    up = score_trend([ScorePoint(D - timedelta(days=5), 3.0), ScorePoint(D, 3.5)])
    assert (up.direction, up.since) == ("up", D - timedelta(days=5))


def test_scores_by_customer_drops_unscored_days() -> None:
    rows = [(ACME, D, 4.0), (ACME, D - timedelta(days=1), None), (GLOBEX, D, None)]
    assert scores_by_customer(rows) == {ACME: (ScorePoint(D, 4.0),)}


def test_customer_report_orders_worst_first_and_says_it_in_plain_words() -> None:
    result = _world()
    acme = next(c for c in result.customers if c.id == ACME)
    flag = next(f for f in result.flags if f.customer_id == ACME)
    scores = [ScorePoint(D - timedelta(days=40), 4.0), ScorePoint(D, 3.2)]
    report = customer_report(acme, flag, scores, _pairs(result, ACME))
    assert report.health == "red"
    assert report.trend.direction == "down"
    summary = report.summary
    assert summary.startswith("Acme Corp (Enterprise) has 1 linked project: Apollo Rollout")
    assert "is 40% complete and red (" in summary
    assert "The next milestone, Apollo 2.0, is due" in summary
    assert "Satisfaction is CSAT 3.2/5, down 0.8 since" in summary
    assert "the customer is at risk (CSAT 3.2/5 below 3.5; 1 escalated case)" in summary
    assert summary.endswith("2 support cases open, 1 of them escalated.")
    # Health reasons first, then the items most at risk.
    assert report.top_risks[0].startswith("APOLLO: ")
    assert any("APOLLO-4" in risk and "blocked" in risk for risk in report.top_risks)


def test_customer_without_satisfaction_or_projects() -> None:
    result = _world()
    globex = next(c for c in result.customers if c.id == GLOBEX)
    lonely = customer_report(globex, None, [], [])
    assert lonely.health is None and lonely.top_risks == ()
    assert lonely.summary == (
        "环球科技有限公司 (大客户) has no Jira project linked yet. There is no satisfaction "
        "score for this customer yet. No support cases are open."
    )
    assert lonely.trend.words == "no satisfaction data"


def test_an_empty_project_is_said_to_have_no_work_yet() -> None:
    result = _world()
    initech = next(c for c in result.customers if c.id == INITECH)
    report = customer_report(initech, None, [], _pairs(result, INITECH))
    (pair,) = report.projects
    assert pair.progress.total == 0 and pair.overdue == () and pair.milestones == ()
    assert "Vega Rollout (VEGA) has no work items linked yet" in report.summary


def test_top_risks_put_red_projects_before_amber_and_dedupe() -> None:
    result = _world()
    pairs = _pairs(result, ACME) + _pairs(result, GLOBEX)
    risks = top_risks(pairs, limit=10)
    assert len(risks) == len(set(risks))
    assert risks[0].startswith("APOLLO")  # red before ORION's green
    assert len(top_risks(pairs, limit=2)) == 2


def test_segment_reports_worst_first_with_projects_and_customers_worst_first() -> None:
    result = _world()
    history = {ACME: (ScorePoint(D - timedelta(days=40), 4.4), ScorePoint(D, 3.2))}
    segments = segment_reports(
        result.rollups, result.customers, result.flags, result.reports, history, 5
    )
    assert [s.rollup.segment for s in segments] == ["Enterprise", "大客户"]
    enterprise = segments[0]
    assert [r.project_key for r in enterprise.projects] == ["APOLLO", "VEGA"]
    assert [c.id for c, _flag in enterprise.customers] == [ACME, INITECH]
    assert enterprise.trend.direction == "down"
    assert segments[1].trend.direction == "none"
    assert isinstance(enterprise.customers[0][1], SatisfactionFlag)


def _shared_world() -> MergeResult:
    """ORION: two items are Acme's own (jira_field); the other three have no link value and
    go to both accounts naming ORION in their project-key field (crm_field)."""
    issues = [
        issue("ORION-1", account=ACME, status="Done"),
        issue("ORION-2", account=ACME),
        issue("ORION-3", status="Done"),
        issue("ORION-4", status="Done"),
        issue("ORION-5", status="In Progress"),
        issue("ORION-6", type_name="Epic"),  # not counted, in the pair nor in the project
    ]
    accounts = [
        account(ACME, "Acme Corp"),
        account(GLOBEX, "Globex", project_key="ORION"),
        account(INITECH, "Initech", project_key="ORION"),
    ]
    return merge(issues, accounts, rules=RULES, as_of=AS_OF)


def test_a_shared_part_of_a_project_says_what_its_numbers_cover() -> None:
    result = _shared_world()
    reports = {r.customer_id: r for r in result.reports}
    assert {cid: r.total for cid, r in reports.items()} == {ACME: 2, GLOBEX: 3, INITECH: 3}
    # The CRM summary (Summary__c) of a pair counting part of the project says which part.
    assert reports[GLOBEX].summary.startswith(
        "3 of the 5 items of Orion Rollout linked to Globex: 66.7% complete, 2 done and "
        "1 in progress."
    )
    assert reports[ACME].summary.startswith(
        "2 of the 5 items of Orion Rollout linked to Acme Corp: 50% complete, 1 done and "
        "0 in progress."
    )
    globex = next(c for c in result.customers if c.id == GLOBEX)
    report = customer_report(globex, None, [], _pairs(result, GLOBEX))
    assert report.summary.startswith(
        "Globex (Enterprise) has 1 linked project: 3 of the 5 items of Orion Rollout (ORION) "
        "linked to Globex are 66.7% complete and "
    )


def test_a_whole_project_is_named_as_the_project() -> None:
    result = _world()
    (apollo,) = (r for r in result.reports if r.project_key == "APOLLO")
    assert apollo.summary.startswith("Apollo Rollout: 40% complete, 2 of 5 items done")
    acme = next(c for c in result.customers if c.id == ACME)
    report = customer_report(acme, None, [], _pairs(result, ACME))
    assert "linked project: Apollo Rollout (APOLLO) is 40% complete" in report.summary
    assert "items of" not in report.summary


def test_no_satisfaction_data_is_no_ok_badge() -> None:
    result = _world()
    by_id = {c.id: c for c in result.customers}
    flags = {f.customer_id: f for f in result.flags}
    # Globex has no score and nothing against it: flagged "ok", shown as no data.
    assert flags[GLOBEX].level == "ok"
    assert satisfaction_badge(by_id[GLOBEX], flags[GLOBEX]) == ("none", "No satisfaction data")
    assert satisfaction_badge(by_id[INITECH], flags[INITECH]) == ("ok", "OK")
    assert satisfaction_badge(by_id[ACME], flags[ACME]) == ("at_risk", "At risk")
    at_risk = replace(flags[GLOBEX], level="at_risk", reasons=("1 escalated case",))
    assert satisfaction_badge(by_id[GLOBEX], at_risk) == ("at_risk", "At risk")
    assert satisfaction_badge(by_id[GLOBEX], None) is None
    # Nor is it counted OK in its customer group.
    segments = {
        s.rollup.segment: s
        for s in segment_reports(
            result.rollups, result.customers, result.flags, result.reports, {}, 5
        )
    }
    assert (segments["大客户"].rollup.ok, segments["大客户"].ok, segments["大客户"].no_data) == (
        1,
        0,
        1,
    )
    assert (segments["Enterprise"].ok, segments["Enterprise"].no_data) == (1, 0)


def test_the_current_score_is_dated_when_it_was_measured() -> None:
    result = _world()
    acme = next(c for c in result.customers if c.id == ACME)
    assert acme.satisfaction is not None
    measured = acme.satisfaction.measured_at
    assert measured is not None and measured.date() == D - timedelta(days=1)
    # Never stored before: the trend says when the score was measured, not the report's day.
    series = score_series((), acme.satisfaction, TODAY)
    assert series == (ScorePoint(D - timedelta(days=1), 3.2),)
    assert score_trend(series).words == f"first measured {D - timedelta(days=1)}"
    # Days a sync saw the score again (from the measured day on) are not newer scores.
    stored = [
        ScorePoint(D - timedelta(days=50), 4.2),
        ScorePoint(D - timedelta(days=20), 4.0),
        ScorePoint(D - timedelta(days=1), 3.2),
    ]
    old = replace(acme.satisfaction, measured_at=datetime(2026, 10, 22, 8, tzinfo=UTC))
    series = score_series(stored, old, TODAY)
    assert series == (ScorePoint(D - timedelta(days=50), 4.2), ScorePoint(date(2026, 10, 22), 3.2))
    trend = score_trend(series, 5)
    assert (trend.direction, trend.since) == ("down", D - timedelta(days=50))
    # A measurement dated after the report (clock skew) is dated the report's day.
    future = replace(acme.satisfaction, measured_at=AS_OF + timedelta(days=3))
    assert score_series((), future, TODAY) == (ScorePoint(TODAY, 3.2),)
    # No current score: the stored history is charted, but there is no trend to state.
    globex = next(c for c in result.customers if c.id == GLOBEX)
    assert score_series(stored, None, TODAY) == tuple(stored)
    lonely = customer_report(globex, None, stored, [])
    assert lonely.trend.words == "no satisfaction data" and lonely.scores == tuple(stored)
