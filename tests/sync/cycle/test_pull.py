"""No silent loss in the pull (issue 13, items 1 and 2), through the sandbox's fault API.

- A search page that breaks the paging contract (no ``isLast``, no ``nextPageToken``) is
  an error: the run exits 3, nothing of the search is taken for complete, no cursor moves,
  and the next clean run pulls everything.
- A record with a value of the wrong type (a CSAT of "high", labels that are not a list) is
  set aside with its reason: the rest of the page is stored, the run exits 1 and says so,
  `status` lists it, and the next cycle reads it again; once it reads cleanly the sync
  converges on what SPEC section 6 says.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from connectors.sandbox.server import Tls
from sync import status as status_view
from sync.cycle.pull import retry_due
from sync.exitcodes import ExitCode
from sync.reconcile import reconcile, render_text
from sync.remote import build_remotes
from sync.store import repo
from sync.store.schema import crm_accounts, jira_items
from tests.reliability.helpers import cursor_values
from tests.sync.e2e import SyncEnv, calls, expected, in_process_env, labelled, report_counts

SEARCH = "/search/jql"
COMPOSITE = "/composite"
#: The first Account of the first query answer gets a CSAT of "high".
CSAT_HIGH = {
    "kind": "rewrite",
    "endpoint": COMPOSITE,
    "count": 1,
    "set": {"compositeResponse.0.body.records.0.CSAT__c": "high"},
}


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    """A sandbox of 250 issues (three search pages) and 20 accounts, nothing synced yet."""
    with in_process_env(store_url, tmp_path, tls, issues=250, accounts=20) as opened:
        yield opened


def inject(env: SyncEnv, side: str, fault: dict[str, Any]) -> None:
    """One fault through the sandbox's documented control API, over HTTPS."""
    endpoints = env.box.endpoints
    assert endpoints is not None and endpoints.ca_bundle is not None
    base = endpoints.jira_url if side == "jira" else endpoints.salesforce_url
    answer = requests.post(
        f"{base}/_sandbox/faults", json=fault, verify=str(endpoints.ca_bundle), timeout=10
    )
    assert answer.status_code == 201, answer.text


def stored_issues(env: SyncEnv) -> int:
    with env.store.read() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(jira_items)) or 0)


def converged(env: SyncEnv) -> None:
    want = expected(env.box, env.clock().date())
    assert report_counts(env.box) == want.reports
    assert labelled(env.box) == want.labelled


def test_a_page_without_paging_fields_stops_the_pull_and_moves_no_cursor(env: SyncEnv) -> None:
    inject(
        env,
        "jira",
        {"kind": "rewrite", "endpoint": SEARCH, "remove": ["isLast", "nextPageToken"], "count": 1},
    )

    failed = env.cycle()

    assert failed.exit_code == ExitCode.REMOTE, failed.message
    assert "isLast" in failed.message and "no nextPageToken" in failed.message
    assert cursor_values(env.store, "jira") == {}, "a cursor moved past unread pages"
    assert stored_issues(env) == 0
    env.clock.advance(minutes=10)
    clean = env.cycle()
    assert clean.exit_code == ExitCode.OK, clean.message
    assert stored_issues(env) == len(env.box.jira.issues) == 250
    converged(env)


def test_is_last_false_without_a_token_is_refused(env: SyncEnv) -> None:
    inject(env, "jira", {"kind": "rewrite", "endpoint": SEARCH, "remove": ["nextPageToken"],
                         "set": {"isLast": False}, "count": 1})  # fmt: skip
    failed = env.cycle()
    assert failed.exit_code == ExitCode.REMOTE, failed.message
    assert cursor_values(env.store, "jira") == {}


def test_a_wrong_typed_csat_is_set_aside_and_the_rest_goes_on(env: SyncEnv) -> None:
    account_ids = sorted(str(a["Id"]) for a in env.box.salesforce.records("Account"))
    inject(env, "salesforce", CSAT_HIGH)

    first = env.cycle()

    assert first.exit_code == ExitCode.PARKED, first.message
    assert "set aside" in first.message
    aside = first.as_dict()["quarantined"]
    assert aside["count"] == 1
    [record] = aside["records"]
    assert record["side"] == "salesforce" and record["kind"] == "Account"
    bad = record["record"]
    assert bad in account_ids
    assert "CSAT__c" in record["reason"] and "'high'" in record["reason"]
    with env.store.read() as conn:
        stored = set(conn.scalars(sa.select(crm_accounts.c.id)))
    assert stored == set(account_ids) - {bad}, "the rest of the page was not stored"
    shown = status_view.collect(env.store, env.config).as_dict()
    assert shown["quarantined_total"] == 1
    assert shown["quarantined"][0]["record"] == bad
    assert "CSAT__c" in status_view.render_text(status_view.collect(env.store, env.config))

    env.clock.advance(minutes=10)
    second = env.cycle()

    assert second.exit_code == ExitCode.OK, second.message
    assert second.as_dict()["quarantined"]["released"] == 1
    with env.store.read() as conn:
        assert repo.count_quarantined(conn) == 0
        stored = set(conn.scalars(sa.select(crm_accounts.c.id)))
    assert stored == set(account_ids)
    converged(env)


def test_a_wrong_typed_issue_field_is_set_aside_and_read_again_by_key(env: SyncEnv) -> None:
    inject(env, "jira", {"kind": "rewrite", "endpoint": SEARCH, "count": 1,
                         "set": {"issues.0.fields.labels": "blocked"}})  # fmt: skip

    first = env.cycle()

    assert first.exit_code == ExitCode.PARKED, first.message
    [record] = first.as_dict()["quarantined"]["records"]
    assert (record["side"], record["kind"]) == ("jira", "issue")
    assert record["record"] in env.box.jira.issues
    assert "fields.labels" in record["reason"] and "not a list" in record["reason"]
    assert stored_issues(env) == 249
    with env.store.read() as conn:
        assert repo.count_quarantined(conn) == 1

    env.clock.advance(minutes=10)
    second = env.cycle()

    assert second.exit_code == ExitCode.OK, second.message
    assert calls(env.box).count("jira GET /rest/api/2/issue/{key}") == 1
    assert stored_issues(env) == 250
    with env.store.read() as conn:
        assert repo.count_quarantined(conn) == 0
    converged(env)


def test_a_hidden_field_is_no_value_not_a_refusal(env: SyncEnv) -> None:
    """A key absent from an issue's fields (hidden by a field configuration) reads as no
    value: the page is stored whole."""
    hidden = ["issues.*.fields.fixVersions", "issues.*.fields.labels"]
    inject(env, "jira", {"kind": "rewrite", "endpoint": SEARCH, "count": 1, "remove": hidden})
    result = env.cycle()
    assert result.exit_code == ExitCode.OK, result.message
    assert stored_issues(env) == 250


def test_set_aside_records_are_retried_less_often_when_they_stay_bad(env: SyncEnv) -> None:
    """A record set aside twice waits an hour: a cycle in between makes no call for it."""
    inject(env, "salesforce", CSAT_HIGH)
    assert env.cycle().exit_code == ExitCode.PARKED
    with env.store.read() as conn:
        [held] = repo.iter_quarantined(conn)
    row: repo.QuarantineRow = {
        "side": held.side,
        "kind": held.kind,
        "record_id": held.record_id,
        "reason": held.reason,
    }
    with env.store.transaction() as tx:  # as a retry that found it bad again leaves it
        repo.quarantine_records(tx, [row], at=env.clock())
    env.clock.advance(minutes=10)
    quiet = env.cycle()
    assert quiet.exit_code == ExitCode.OK, quiet.message
    assert calls(env.box).count("salesforce POST /services/data/v{version}/composite") == 1
    env.clock.advance(hours=1)
    healed = env.cycle()
    assert healed.exit_code == ExitCode.OK and healed.released == 1, healed.message
    assert calls(env.box).count("salesforce POST /services/data/v{version}/composite") == 2
    converged(env)


@pytest.mark.parametrize(
    ("attempts", "waited", "due"),
    [(1, timedelta(0), True), (2, timedelta(minutes=59), False), (2, timedelta(hours=1), True),
     (3, timedelta(hours=3), False), (3, timedelta(hours=4), True),
     (9, timedelta(hours=23), False), (9, timedelta(days=1), True)],
)  # fmt: skip
def test_retry_waits_grow_with_attempts(attempts: int, waited: timedelta, due: bool) -> None:
    seen = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    record = repo.QuarantineRecord("jira", "issue", "A-1", "r", seen, seen, attempts)
    assert retry_due(record, seen + waited) is due


def test_reconcile_leaves_an_unreadable_record_out_and_does_not_call_it_deleted(
    env: SyncEnv,
) -> None:
    assert env.cycle().exit_code == ExitCode.OK
    env.clock.advance(minutes=10)
    inject(env, "salesforce", CSAT_HIGH)
    report = reconcile(
        env.config, env.store, build_remotes(env.config), apply=False, now=env.clock()
    )
    assert report.exit_code == ExitCode.OK, report.message
    [unreadable] = report.as_dict()["unreadable"]
    assert unreadable["kind"] == "Account" and "'high'" in unreadable["reason"]
    assert not [d for d in report.deleted if d["key"] == unreadable["record"]]
    assert "could not be read" in render_text(report)


def _searches(result: Any) -> int:
    """Jira search calls (issue pages and key-scan pages) of one cycle."""
    by_endpoint = result.calls["jira"]["by_endpoint"]
    return sum(n for endpoint, n in by_endpoint.items() if endpoint.endswith(SEARCH))


def test_a_whole_scope_pull_lists_no_keys_again_and_still_finds_deletes(env: SyncEnv) -> None:
    first = env.cycle()  # 250 issues: three pages of 100, and no keys-only scan after them
    assert first.exit_code == ExitCode.OK, first.message
    assert _searches(first) == 3
    with env.store.read() as conn:
        scanned = repo.get_cursor(conn, "jira", "key_scan:*")
    assert scanned is not None, "a first pull stands for the key scan: its stamp is set"

    key = min(k for k, issue in env.box.jira.issues.items() if issue.issue_type != "Epic")
    env.box.jira.delete_issue(key)
    env.clock.advance(minutes=1)
    full = env.cycle(full=True)  # the scan is not due; a full pull finds the delete anyway
    assert full.exit_code == ExitCode.OK, full.message
    assert full.pulled.get("jira_deleted") == 1
    assert _searches(full) == 3  # 249 issues: three pages, nothing listed twice
    with env.store.read() as conn:
        deleted = conn.scalar(sa.select(jira_items.c.deleted).where(jira_items.c.key == key))
    assert deleted is True


def test_only_a_kind_with_nothing_stored_is_read_as_a_first_read(
    env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Read.first`` (no deletions to look for: HubSpot then lists no archived records)
    goes with a kind of which the store holds nothing; not after, nor on a ``--full``."""
    from connectors.salesforce.connector import SalesforceConnector

    seen: list[list[tuple[str, bool, bool]]] = []
    changes = SalesforceConnector.changes

    def recording(self: SalesforceConnector, needs: Any, reads: Any) -> Any:
        seen.append([(r.kind, r.first, r.cursor is None) for r in reads if r.ids is None])
        return changes(self, needs, reads)

    monkeypatch.setattr(SalesforceConnector, "changes", recording)
    assert env.cycle().exit_code == ExitCode.OK
    assert seen[0] and all(first and fresh for _kind, first, fresh in seen[0])
    env.clock.advance(minutes=1)
    assert env.cycle().exit_code == ExitCode.OK
    assert not any(first for _kind, first, _fresh in seen[-1])
    assert env.cycle(full=True).exit_code == ExitCode.OK
    assert all(fresh and not first for _kind, first, fresh in seen[-1])
