"""Deletes and conflicts over the HTTPS sandbox, on SQLite and PostgreSQL (SPEC section 7):
a deleted Account leaves the plan with its links and reports, a deleted Jira issue leaves
the counts once the key scan runs, and a person removing our label is a conflict handled
by the configured policy and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.server import Tls
from sync.store import repo
from tests.sync.e2e import (
    EXTERNAL_ID,
    JIRA_PUT,
    LABEL,
    REPORT,
    SyncEnv,
    calls,
    expected,
    in_process_env,
    labelled,
    report_counts,
)


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    with in_process_env(store_url, tmp_path, tls) as opened:
        assert opened.cycle().exit_code == 0
        opened.settle()
        yield opened


def _stamps(env: SyncEnv) -> dict[str, object]:
    return {str(r[EXTERNAL_ID]): r["SystemModstamp"] for r in env.box.salesforce.records(REPORT)}


def test_a_deleted_account_leaves_the_plan_with_its_links_and_reports(env: SyncEnv) -> None:
    today = env.clock().date()
    before = expected(env.box, today)
    # An at-risk customer linked by the Jira field: its items carry our label.
    account = min(
        a
        for a in before.at_risk
        if any(a in accounts for key, accounts in before.links.items() if key in before.labelled)
    )
    its_reports = {k for k in before.reports if k.endswith(":" + account)}
    assert its_reports
    stamps = _stamps(env)

    env.box.salesforce.delete_record("Account", account)
    env.clock.advance(minutes=1)
    result = env.cycle()
    assert (result.status, int(result.exit_code)) == ("ok", 0)

    after = expected(env.box, today)
    assert account not in {a for accounts in after.links.values() for a in accounts}
    with env.store.read() as conn:
        assert repo.get_links(conn, customer_ids=[account]) == []
    # Its reports are no longer written (they stay in the CRM as last written) ...
    now = _stamps(env)
    assert all(now[k] == stamps[k] for k in its_reports)
    # ... every other report is what the world now implies, and only changed ones were
    # written (its items may fall to customers naming the project); labels follow.
    counts = report_counts(env.box)
    assert {k: counts[k] for k in after.reports} == after.reports
    rewritten = {k for k in now if now[k] != stamps[k]}
    assert rewritten == {k for k in after.reports if after.reports[k] != before.reports.get(k)}
    assert labelled(env.box) == after.labelled
    assert labelled(env.box) != before.labelled

    env.settle()  # and no later cycle writes anything for it


@pytest.mark.parametrize("how", ["key scan due", "full run"])
def test_a_deleted_issue_leaves_the_counts_after_the_key_scan(env: SyncEnv, how: str) -> None:
    today = env.clock().date()
    before = expected(env.box, today)
    key = min(
        k
        for k, issue in env.box.jira.issues.items()
        if issue.issue_type != "Epic" and before.links.get(k)
    )
    pairs = before.pairs_of(key, env.box.jira.issue(key).project_key)
    env.box.jira.delete_issue(key)

    env.clock.advance(minutes=1)
    env.cycle()  # the hourly key scan is not due: the counts still hold the issue
    assert {k: report_counts(env.box)[k] for k in pairs} == {k: before.reports[k] for k in pairs}

    if how == "full run":
        result = env.cycle(full=True)
    else:
        env.clock.advance(minutes=61)
        result = env.cycle()
    assert result.pulled.get("jira_deleted") == 1
    after = expected(env.box, today)
    assert report_counts(env.box) == after.reports
    for pair in pairs:
        assert after.reports[pair]["Issues_Total__c"] == before.reports[pair]["Issues_Total__c"] - 1


@pytest.mark.parametrize("policy", ["enforce", "respect"])
def test_a_person_removing_our_label_is_a_conflict_handled_by_policy(
    env: SyncEnv, policy: str
) -> None:
    if policy == "respect":
        env.edit_config('policy = "enforce"', 'policy = "respect"')
        env.settle()
    key = min(labelled(env.box))
    issue = env.box.jira.issue(key)
    env.box.jira.update_issue(key, labels=[label for label in issue.labels if label != LABEL])

    env.clock.advance(minutes=1)
    result = env.cycle()
    assert (result.status, int(result.exit_code)) == ("ok", 0)
    action = "enforced" if policy == "enforce" else "respected"
    assert [c for c in result.conflicts if c["key"] == key] == [
        {
            "side": "jira",
            "key": key,
            "what": "label",
            "ours": LABEL,
            "theirs": None,
            "action": action,
        }
    ]
    made = calls(env.box)
    if policy == "enforce":
        assert LABEL in env.box.jira.issue(key).labels
        assert made.count(f"jira {JIRA_PUT}") == 1
    else:
        assert LABEL not in env.box.jira.issue(key).labels
        assert made.count(f"jira {JIRA_PUT}") == 0
    env.settle()  # either way, later cycles leave it as it is
    assert (LABEL in env.box.jira.issue(key).labels) == (policy == "enforce")
