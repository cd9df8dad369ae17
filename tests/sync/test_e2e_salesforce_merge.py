"""Salesforce account merges, end to end over the in-process sandbox: the record merged
away goes to the recycle bin naming its survivor (``MasterRecordId``), and the issues
whose account field still names it link to the survivor: its reports count them, their
flags follow its satisfaction, and no link problem calls the account deleted.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from connectors.sandbox.schema import SF_ACCOUNT_CSAT_FIELD
from connectors.sandbox.server import Tls
from sync.store import repo
from tests.sync.e2e import Expected, SyncEnv, expected, in_process_env, labelled, report_counts


def _expected_with(env: SyncEnv, loser: str, master: str) -> Expected:
    """What the sync should show once ``loser`` is merged into ``master``: each issue
    naming the loser read as naming the master."""
    issues = env.box.jira.issues
    renamed = [key for key, issue in issues.items() if issue.account_id == loser]
    for key in renamed:
        issues[key].account_id = master
    try:
        return expected(env.box, env.clock().date())
    finally:
        for key in renamed:
            issues[key].account_id = loser


def test_issues_naming_an_account_merged_away_link_to_the_survivor(
    store_url: str, tmp_path: Path, tls: Tls
) -> None:
    with in_process_env(store_url, tmp_path, tls) as env:
        box = env.box
        named = Counter(i.account_id for i in box.jira.issues.values() if i.account_id)
        loser = named.most_common(1)[0][0]
        master = next(
            str(a["Id"]) for a in box.salesforce.records("Account") if str(a["Id"]) not in named
        )
        # The survivor is unhappy: the issues that named the loser must now be flagged.
        box.salesforce.update_record("Account", master, **{SF_ACCOUNT_CSAT_FIELD: 2.0})
        assert env.cycle().exit_code == 0

        box.salesforce.merge_records("Account", master, loser)
        env.clock.advance(minutes=10)
        merged = env.cycle()
        assert merged.exit_code == 0, merged.message
        env.settle()

        want = _expected_with(env, loser, master)
        counts = report_counts(box)
        survivor_pairs = {k for k in want.reports if k.endswith(f":{master}")}
        assert survivor_pairs, "no report of the survivor: the test would prove nothing"
        for key in want.reports:
            assert counts[key] == want.reports[key], key
        assert labelled(box) == want.labelled
        with env.store.read() as conn:
            problems = [p.reason for p in repo.iter_link_problems(conn)]
            gone = repo.get_customers(conn, [loser], include_deleted=True)[loser]
        assert not [p for p in problems if loser in p or loser[:15] in p]
        assert gone.deleted and gone.data[repo.MERGED_INTO] == master
