"""Done dates and site time zones through the HTTPS sandbox (issue 14, item 2).

A project whose workflow reaches Done without a resolution still gets a forecast
(``Forecast_Date__c``): the done date is when the item entered the done category. A site
writing its times at +0800 or -0500 is pulled incrementally without missing a change. The
older Server (no ``statuscategorychangedate``) is pulled without asking for that field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from connectors.sandbox.world import CLASSIC, NO_RESOLUTION
from sync.store.schema import jira_items
from tests.sync.e2e import (
    ANCHOR,
    CATEGORY,
    EXTERNAL_ID,
    REPORT,
    Clock,
    SyncEnv,
    expected,
    in_process_env,
    labelled,
    report_counts,
    sync_env,
)


def _finish_work(env: SyncEnv, project_key: str, per_pair: int) -> dict[str, list[str]]:
    """Move ``per_pair`` open items of each of the project's pairs with more open to Done,
    hours apart, as people would; returns the keys moved by pair."""
    box = env.box
    want = expected(box, env.clock().date())
    moved: dict[str, list[str]] = {}
    done: set[str] = set()
    for pair in sorted(p for p in want.reports if p.startswith(project_key + ":")):
        open_keys = [
            key
            for key, issue in sorted(box.jira.issues.items())
            if issue.project_key == project_key
            and issue.issue_type != "Epic"
            and CATEGORY[issue.status] != "done"
            and pair in want.pairs_of(key, project_key)
            and key not in done
        ]
        if len(open_keys) <= per_pair:
            continue  # leave work open, so there is something left to forecast
        for key in open_keys[:per_pair]:
            env.clock.advance(hours=5)
            box.jira.update_issue(key, status="Done")
            done.add(key)
        moved[pair] = open_keys[:per_pair]
    env.clock.advance(minutes=10)
    assert moved, f"no pair of {project_key} has work to finish"
    return moved


def test_done_without_resolution_still_forecasts(tmp_path: Path, tls: Tls) -> None:
    with in_process_env(f"sqlite:///{tmp_path / 'state.db'}", tmp_path, tls) as env:
        world = env.box.world
        bare = next(p.key for p in world.projects if world.workflow_of(p.key) == NO_RESOLUTION)
        classic = next(p.key for p in world.projects if world.workflow_of(p.key) == CLASSIC)
        assert env.cycle().exit_code == 0
        moved = {**_finish_work(env, bare, 4), **_finish_work(env, classic, 4)}
        result = env.cycle()
        assert result.exit_code == 0, result.message
        records = {str(r[EXTERNAL_ID]): r for r in env.box.salesforce.records(REPORT)}
        today = env.clock().date()
        with env.store.read() as conn:
            stored = {
                row.key: row.data
                for row in conn.execute(sa.select(jira_items.c.key, jira_items.c.data))
            }
    for pair, keys in moved.items():
        for key in keys:
            fields = stored[key]["fields"]
            assert fields["status"]["statusCategory"]["key"] == "done"
            # Done without a resolution in the one workflow, with one in the other: both
            # are dated by when they entered the done category.
            assert (fields["resolutiondate"] is None) == pair.startswith(bare + ":")
            assert fields["statuscategorychangedate"] is not None
        forecast = records[pair]["Forecast_Date__c"]
        assert forecast is not None, (pair, records[pair])
        assert datetime.fromisoformat(str(forecast)).date() >= today


@pytest.mark.parametrize(
    ("zone", "offset"), [("Asia/Shanghai", "+0800"), ("America/New_York", "-0500")]
)
def test_a_zoned_site_is_pulled_incrementally_without_missing_a_change(
    tmp_path: Path, tls: Tls, zone: str, offset: str
) -> None:
    clock = Clock(ANCHOR + timedelta(hours=1))
    box = Sandbox(issues=150, accounts=20, seed=2, anchor=ANCHOR, jira_time_zone=zone)
    box.jira.clock = box.salesforce.clock = clock
    with sync_env(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls) as env:
        assert env.cycle().exit_code == 0
        env.settle()
        jira = box.jira
        changed: list[str] = []
        counted = sorted(k for k, i in jira.issues.items() if i.issue_type != "Epic")
        # Changes spread over the local day: across local midnight in either zone, and
        # within seconds of the cursor (the next pull's lower bound).
        for n, key in enumerate(counted[:40:4]):
            clock.advance(hours=2, seconds=7)
            status = "Done" if CATEGORY[jira.issue(key).status] != "done" else "In Progress"
            jira.update_issue(key, status=status, summary=f"changed {n}")
            changed.append(key)
        clock.advance(minutes=3)
        result = env.cycle()
        assert result.exit_code == 0, result.message
        assert result.pulled["jira_issues"] >= len(changed)
        late = counted[1]
        jira.update_issue(late, status="Blocked")  # at the moment the last cycle ran
        changed.append(late)
        clock.advance(minutes=3)
        assert env.cycle().exit_code == 0
        env.settle()

        want = expected(box, clock().date())
        assert report_counts(box) == want.reports
        assert labelled(box) == want.labelled
        with env.store.read() as conn:
            rows = {
                row.key: row
                for row in conn.execute(
                    sa.select(jira_items.c.key, jira_items.c.updated, jira_items.c.data)
                )
            }
        for key in changed:
            issue = jira.issue(key)
            fields = rows[key].data["fields"]
            assert fields["status"]["name"] == issue.status
            assert fields["updated"].endswith(offset), fields["updated"]
            held = rows[key].updated.astimezone(UTC)
            assert held == issue.updated.replace(
                microsecond=issue.updated.microsecond // 1000 * 1000
            )


def test_the_older_server_is_pulled_without_the_category_change_field(
    tmp_path: Path, tls: Tls
) -> None:
    clock = Clock(ANCHOR + timedelta(hours=1))
    box = Sandbox(issues=150, accounts=20, seed=2, anchor=ANCHOR, jira_mode="server")
    box.jira.clock = box.salesforce.clock = clock
    with sync_env(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls) as env:
        result = env.cycle()
        assert result.exit_code == 0, result.message
        with env.store.read() as conn:
            data = [row.data for row in conn.execute(sa.select(jira_items.c.data))]
        assert len(data) == 150
        assert not any("statuscategorychangedate" in d["fields"] for d in data)
        assert report_counts(box) == expected(box, clock().date()).reports
