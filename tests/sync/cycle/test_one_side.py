"""A cycle that does not need a side does not sign in to it (issue 17): ``run --only push``
signs in to the CRM only when it derives something or a CRM write is waiting."""

from __future__ import annotations

from pathlib import Path

from connectors.sandbox.server import Tls
from tests.sync.e2e import expected, in_process_env, labelled, report_counts


def test_a_push_only_cycle_signs_in_to_the_crm_only_when_it_has_work_there(
    tmp_path: Path, tls: Tls
) -> None:
    with in_process_env(f"sqlite:///{tmp_path / 'state.db'}", tmp_path, tls) as env:
        assert env.cycle().exit_code == 0
        env.settle()

        idle = env.cycle(only="push")  # nothing queued, nothing to derive
        assert idle.exit_code == 0, idle.message
        assert idle.calls["salesforce"]["total"] == 0, idle.calls
        assert idle.calls["jira"]["total"] == 0, idle.calls  # its metadata is cached

        want = expected(env.box, env.clock().date())
        env.box.jira.update_issue(min(want.labelled), status="Done")
        env.clock.advance(minutes=10)
        assert env.cycle(only="pull").exit_code == 0  # stored and marked, not derived
        busy = env.cycle(only="push")  # derives the marked project, then sends
        assert busy.exit_code == 0, busy.message
        by_endpoint = busy.calls["salesforce"]["by_endpoint"]
        assert by_endpoint.get("POST /services/oauth2/token") == 1, by_endpoint
        assert busy.written.get("salesforce_records", 0) >= 1, busy.written
        env.settle()
        after = expected(env.box, env.clock().date())
        assert report_counts(env.box) == after.reports
        assert labelled(env.box) == after.labelled
