"""Real Jira sites (issue 14, items 1, 3 and 5), end to end over the HTTPS sandbox: a site in
Chinese (localised and repeated field names), an older Server (no ``parent`` in /field nor
on stories, no ``hierarchyLevel``; epics only through the Epic Link field), one in German
on Server (the Epic Link found by type alone), and a Cloud site whose team-managed
projects keep story points in "Story point estimate". Each world also has sub-task ->
story -> epic chains and a project whose field configuration hides fields.

The engine runs in-process on the sandbox's clock; SQLite only (the store is not the point).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from tests.sync.e2e import (
    ANCHOR,
    CATEGORY,
    Clock,
    SyncEnv,
    expected,
    labelled,
    report_counts,
    sync_env,
)

EPIC_LINK = "customfield_10014"


@contextmanager
def site_env(tmp_path: Path, tls: Tls, mode: str, locale: str) -> Iterator[SyncEnv]:
    """A 150-issue world on a site of that deployment and language, with its own config
    (``sandbox --write-config``: the names that site uses)."""
    clock = Clock(ANCHOR + timedelta(hours=1))
    box = Sandbox(issues=150, accounts=20, seed=2, anchor=ANCHOR, jira_mode=mode, locale=locale)
    box.jira.clock = box.salesforce.clock = clock
    with sync_env(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls) as env:
        yield env


def _linked_through_epic_link_only(env: SyncEnv) -> set[str]:
    """Issues whose customer comes from an epic reached only by the Epic Link field (an
    older Server: stories carry no parent)."""
    issues = env.box.jira.issues
    return {
        key
        for key, issue in issues.items()
        if issue.issue_type not in ("Epic", "Sub-task")
        and issue.account_id is None
        and issue.parent_key in issues
        and issues[issue.parent_key].account_id is not None
    }


@pytest.mark.parametrize(
    ("mode", "locale"),
    [("cloud", "zh"), ("server", "en"), ("server", "de")],
    ids=["cloud-zh", "server-en", "server-de"],
)
def test_a_run_on_a_localised_or_older_site_is_correct(
    tmp_path: Path, tls: Tls, mode: str, locale: str
) -> None:
    with site_env(tmp_path, tls, mode, locale) as env:
        result = env.cycle()
        assert (result.status, result.exit_code, result.failed) == ("ok", 0, []), result.message
        assert result.quarantined_count == 0  # hidden fields are absent keys, not bad ones
        want = expected(env.box, env.clock().date())
        assert len(want.reports) >= 5 and want.labelled
        assert report_counts(env.box) == want.reports
        assert labelled(env.box) == want.labelled
        issues = env.box.jira.issues
        # The chains count: sub-tasks that inherit their story's (or its epic's) customer.
        inheriting = [
            k for k, i in issues.items() if i.issue_type == "Sub-task" and i.account_id is None
        ]
        assert inheriting and all(want.links.get(k) for k in inheriting[:10])
        if mode == "server":
            assert _linked_through_epic_link_only(env) & set(want.links)


def test_the_default_story_points_name_does_not_refuse_a_count_config(
    tmp_path: Path, tls: Tls
) -> None:
    """Item 1: with ``measure = "count"`` the story-points field is not resolved, so a site
    that has no "Story Points" (here, in Chinese) runs with the default name."""
    with site_env(tmp_path, tls, "cloud", "zh") as env:
        env.edit_config('story_points_field = "故事点数"', 'story_points_field = "Story Points"')
        result = env.cycle()
        assert (result.status, result.exit_code) == ("ok", 0), result.message
        assert report_counts(env.box) == expected(env.box, env.clock().date()).reports

        env.edit_config('measure = "count"', 'measure = "story_points"')
        refused = env.cycle()
        assert refused.exit_code == 2
        assert 'no field named "Story Points" (set in [progress] story_points_field)' in (
            refused.message
        )
        assert '"故事点数" (customfield_10016, number)' in refused.message


def _percent_by_points(env: SyncEnv, items: list[str]) -> float:
    """SPEC's percent complete by story points, from the sandbox's records: done points over
    all points, an item without points counting at the average of those with some."""
    issues = env.box.jira.issues
    points = [(issues[k].story_points, CATEGORY[issues[k].status] == "done") for k in items]
    known = [(p, done) for p, done in points if p is not None]
    if not known or not sum(p for p, _ in known):
        return round(sum(done for _, done in points) * 100 / len(points), 1)
    average = sum(p for p, _ in known) / len(known)
    missing = len(points) - len(known)
    missing_done = sum(done for p, done in points if p is None)
    done_points = sum(p for p, done in known if done) + missing_done * average
    return round(done_points * 100 / (sum(p for p, _ in known) + missing * average), 1)


def test_story_points_are_read_from_both_project_styles(tmp_path: Path, tls: Tls) -> None:
    """A Cloud site with team-managed projects ("Story point estimate") beside
    company-managed ones ("Story Points", the configured name): each issue's points come
    from whichever field it has."""
    with site_env(tmp_path, tls, "cloud", "en") as env:
        env.edit_config('measure = "count"', 'measure = "story_points"')
        result = env.cycle()
        assert (result.status, result.exit_code) == ("ok", 0), result.message
        want = expected(env.box, env.clock().date())
        got = {
            str(r["Jira_Sync_Key__c"]): r
            for r in env.box.salesforce.records("Jira_Project_Status__c")
        }
        issues = env.box.jira.issues
        team = {p.key for p in env.box.world.projects if p.team_managed}
        checked = 0
        for external_id in want.reports:
            project, account = external_id.split(":")
            items = [
                k
                for k, i in issues.items()
                if i.project_key == project
                and i.issue_type != "Epic"
                and account in want.links.get(k, ())
            ]
            if not items:
                continue
            assert got[external_id]["Percent_Complete__c"] == _percent_by_points(env, items), (
                external_id
            )
            checked += project in team
        assert checked  # team-managed pairs were measured by their estimates
