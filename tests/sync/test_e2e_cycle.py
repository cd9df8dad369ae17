"""End-to-end cycles over the HTTPS sandbox, on SQLite and PostgreSQL (issue 5, "Done when"):
the first full sync is correct, a no-change cycle makes no writes and at most 3 reads, and
changing one issue writes only what it affects.

The engine runs in-process with one injected clock shared with both sandbox backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.server import Tls
from sync.store import repo
from tests.sync.e2e import (
    EXTERNAL_ID,
    JIRA_COMMENT,
    JIRA_PUT,
    LABEL,
    REPORT,
    UPSERT,
    Expected,
    SyncEnv,
    calls,
    expected,
    in_process_env,
    labelled,
    remote_state,
    report_counts,
)


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    with in_process_env(store_url, tmp_path, tls) as opened:
        yield opened


@pytest.fixture
def big_env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    with in_process_env(store_url, tmp_path, tls, issues=300, accounts=60, seed=7) as opened:
        yield opened


def test_first_full_sync_is_correct(big_env: SyncEnv) -> None:
    env = big_env
    result = env.cycle()
    assert (result.status, result.exit_code, result.failed) == ("ok", 0, [])
    want = expected(env.box, env.clock().date())
    # A world worth checking: many pairs, some customers at risk, some items to label.
    assert len(want.reports) >= 10 and want.at_risk and len(want.labelled) >= 10

    got = report_counts(env.box)
    assert got == want.reports
    for external_id, fields in got.items():
        assert external_id == f"{fields['Jira_Project_Key__c']}:{fields['Account__c']}"
    state = remote_state(env.box)
    assert state.report_records == len(want.reports)  # one record per pair, no duplicate
    assert labelled(env.box) == want.labelled

    # One collection call for the reports (fewer than 200), one Jira call per labelled issue.
    made = calls(env.box)
    assert made.count(f"salesforce {UPSERT}") == 1
    assert result.written["salesforce_records"] == len(want.reports)
    with env.store.read() as conn:
        stored = {f"{link.project_key}:{link.customer_id}" for link in repo.get_links(conn)}
    assert stored == set(want.reports)


def test_no_change_cycle_makes_no_writes_and_at_most_three_reads(env: SyncEnv) -> None:
    assert env.cycle().exit_code == 0
    env.settle()  # re-reads the issues our labels and comments touched; plans nothing
    before = remote_state(env.box)

    for _ in range(2):
        result = env.cycle()
        made = calls(env.box)
        assert (result.status, result.exit_code) == ("ok", 0)
        assert made.writes == 0, made.by_endpoint
        assert made.reads <= 3, made.by_endpoint
        assert result.written == {}
        assert not any(result.planned.values())
        env.clock.advance(minutes=10)
    assert remote_state(env.box) == before


def _open_item(env: SyncEnv, want: Expected, *, at_risk: bool) -> str:
    """An open, non-epic issue linked by its own account field to one customer."""
    for key in sorted(env.box.jira.issues):
        issue = env.box.jira.issues[key]
        accounts = want.links.get(key, frozenset())
        if (
            issue.issue_type != "Epic"
            and issue.status != "Done"
            and issue.account_id is not None
            and accounts == {issue.account_id}
            and (issue.account_id in want.at_risk) == at_risk
        ):
            return key
    raise AssertionError("the world has no such issue")


@pytest.mark.parametrize("at_risk", [False, True], ids=["unflagged", "flagged"])
def test_changing_one_issue_writes_only_what_it_affects(env: SyncEnv, at_risk: bool) -> None:
    assert env.cycle().exit_code == 0
    env.settle()
    want = expected(env.box, env.clock().date())
    key = _open_item(env, want, at_risk=at_risk)
    issue = env.box.jira.issue(key)
    assert (LABEL in issue.labels) == at_risk
    pairs = want.pairs_of(key, issue.project_key)
    assert len(pairs) == 1
    before = {str(r[EXTERNAL_ID]): r for r in env.box.salesforce.records(REPORT)}
    labels_before = remote_state(env.box).labels

    env.box.jira.update_issue(key, status="Done")  # a person resolves it
    env.clock.advance(minutes=1)
    result = env.cycle()

    assert (result.status, result.exit_code) == ("ok", 0)
    made = calls(env.box)
    after = {str(r[EXTERNAL_ID]): r for r in env.box.salesforce.records(REPORT)}
    rewritten = {k for k in after if after[k]["SystemModstamp"] != before[k]["SystemModstamp"]}
    assert rewritten == pairs
    assert made.count(f"salesforce {UPSERT}") == 1
    assert result.written.get("salesforce_records") == 1
    # The report now counts the item as done, and the rest of the world is as expected.
    assert report_counts(env.box) == expected(env.box, env.clock().date()).reports

    labels_after = remote_state(env.box).labels
    changed = {k for k in labels_after if labels_after[k] != labels_before[k]}
    assert made.count(f"jira {JIRA_COMMENT}") == 0
    if at_risk:  # done now: our label comes off it, and only it
        assert changed == {key} and LABEL not in env.box.jira.issue(key).labels
        assert made.count(f"jira {JIRA_PUT}") == 1
    else:
        assert changed == set()
        assert made.count(f"jira {JIRA_PUT}") == 0
    writes = {k: n for k, n in made.by_endpoint.items() if k.startswith("jira ") and "GET" not in k}
    assert writes == ({f"jira {JIRA_PUT}": 1} if at_risk else {})
