"""`reconcile` over the HTTPS sandbox, on SQLite and PostgreSQL (SPEC sections 1.4, 4, 7):
no drift after a clean run; a person's edit in the CRM and a removed label are exactly the
drift, and `--apply` fixes them through the outbox; unlinked projects and customers get
ranked suggestions (Chinese names too); deleted records, orphan report records and
duplicates are reported; without `--apply` nothing is written anywhere; the lock is
respected; a rejected fix exits 1 and is listed as parked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from connectors.sandbox.server import Tls
from mappings.text import MARKER_PREFIX
from sync.exitcodes import ExitCode
from sync.reconcile import ReconcileReport, reconcile, render_rich, render_text
from sync.remote import build_remotes
from sync.store import repo, shard_lock
from tests.sync.e2e import (
    ANCHOR,
    EXTERNAL_ID,
    FIRST_SIGHT,
    JIRA_COMMENTS,
    JIRA_SEARCH,
    LABEL,
    REPORT,
    SyncEnv,
    calls,
    in_process_env,
    labelled,
    make_sandbox,
    remote_state,
    reset_calls,
    store_snapshot,
    sync_env,
)

COMPOSITE = "salesforce POST /services/data/v{version}/composite"


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    """In-process engine on the sandbox's clock, after a first sync that comments on the
    first sight of a level, so there are flag comments to check (reconcile reads all, so
    the overlap re-read of a settling cycle is not needed)."""
    with in_process_env(store_url, tmp_path, tls) as opened:
        opened.edit_config(*FIRST_SIGHT)
        assert opened.cycle().exit_code == 0
        opened.clock.advance(minutes=1)
        yield opened


@pytest.fixture
def cli_env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    """For the real CLI, on real time, after a first sync (in-process: quicker, same store)."""
    box = make_sandbox(150, 20, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, store_url, tls) as opened:
        done = opened.cycle(clock=_real_time)
        assert done.exit_code == 0, done.message
        yield opened


def _real_time() -> datetime:
    return datetime.now(UTC)


def _reconcile(
    env: SyncEnv, *, apply: bool = False, now: datetime | None = None
) -> ReconcileReport:
    reset_calls(env.box)
    when = now or env.clock()
    return reconcile(env.config, env.store, build_remotes(env.config), apply=apply, now=when)


def _report_record(env: SyncEnv, external_id: str) -> dict[str, Any]:
    return next(r for r in env.box.salesforce.records(REPORT) if r[EXTERNAL_ID] == external_id)


def _flagged_issues(env: SyncEnv) -> set[str]:
    """Issues carrying one of our flag comments (what the marker search finds)."""
    return {
        key
        for key, comments in env.box.jira.comments.items()
        if any(MARKER_PREFIX in str(c.body) for c in comments)
    }


def _person_edits(env: SyncEnv) -> tuple[str, int, str, list[str]]:
    """A person sets a report count by hand and removes our label from an issue."""
    victim = min(str(r[EXTERNAL_ID]) for r in env.box.salesforce.records(REPORT))
    record = _report_record(env, victim)
    total = int(record["Issues_Total__c"])
    env.box.salesforce.update_record(REPORT, record["Id"], Issues_Total__c=total + 900)
    key = min(labelled(env.box))
    kept = [label for label in env.box.jira.issue(key).labels if label != LABEL]
    env.box.jira.update_issue(key, labels=kept)
    return victim, total, key, sorted(kept)


def test_after_a_clean_run_there_is_no_drift_and_one_read_of_each_side(env: SyncEnv) -> None:
    remote_before, store_before = remote_state(env.box), store_snapshot(env.store)
    commented = _flagged_issues(env)
    assert commented  # the world has flagged customers: comments are checked

    report = _reconcile(env)

    counts = report.counts()
    assert (report.exit_code, report.status) == (ExitCode.OK, "ok")
    assert {k: counts[k] for k in ("drift", "conflicts", "duplicates", "parked", "deleted")} == {
        "drift": 0,
        "conflicts": 0,
        "duplicates": 0,
        "parked": 0,
        "deleted": 0,
    }
    assert report.read["jira_issues"] == len(env.box.jira.issues)
    assert report.read["report_records"] == len(env.box.salesforce.records(REPORT))
    # One search (150 issues: two pages of 100), one for our marker text (keys only: one
    # page), one Composite for every CRM object and the report object, and the comments
    # only of the issues the marker search found.
    made = calls(env.box)
    assert made.writes == 0, made.by_endpoint
    assert made.count(f"jira {JIRA_SEARCH}") == 2 + 1
    assert made.count(COMPOSITE) == 1
    assert made.count(f"jira {JIRA_COMMENTS}") == len(commented)
    assert made.reads == 2 + 1 + 1 + len(commented) + 1  # + the Salesforce login
    assert report.calls["jira"]["total"] + report.calls["salesforce"]["total"] == made.reads
    # Nothing written anywhere, not even a run record or a call count.
    assert remote_state(env.box) == remote_before
    assert store_snapshot(env.store) == store_before


def test_a_person_edit_and_a_removed_label_are_the_drift_and_apply_fixes_them(
    cli_env: SyncEnv,
) -> None:
    env = cli_env
    synced = remote_state(env.box)
    victim, total, key, kept = _person_edits(env)
    edited, store_before = remote_state(env.box), store_snapshot(env.store)
    reset_calls(env.box)

    found = env.cli("reconcile", "--json")

    assert found.returncode == 0, found.stderr
    doc = json.loads(found.stdout)  # one document, nothing else on stdout
    assert {(d["side"], d["record"], d["field"]) for d in doc["drift"]} == {
        ("crm", victim, "Issues_Total__c"),
        ("jira", key, "labels"),
    }
    by_side = {d["side"]: d for d in doc["drift"]}
    assert (by_side["crm"]["holds"], by_side["crm"]["should_hold"]) == (total + 900, total)
    assert by_side["jira"]["holds"] == kept
    assert by_side["jira"]["should_hold"] == sorted([*kept, LABEL])
    conflicts = {(c["side"], c["key"]): c for c in doc["conflicts"]}
    assert set(conflicts) == {("crm", victim), ("jira", key)}
    assert conflicts[("jira", key)]["policy"] == "enforce"
    assert doc["counts"]["drift"] == 2 and doc["counts"]["drifted_records"] == 2
    # Reading is all it did.
    assert calls(env.box).writes == 0
    assert remote_state(env.box) == edited
    assert store_snapshot(env.store) == store_before

    applied = env.cli("reconcile", "--apply", "--json")
    assert applied.returncode == 0, applied.stderr
    done = json.loads(applied.stdout)
    assert done["applied"] is True and done["run_id"] is not None
    assert done["written"]["salesforce_records"] == 1
    assert done["written"]["jira_issues"] == 1
    assert remote_state(env.box) == synced  # exactly the two fixes were written

    counts = _reconcile(env, now=_real_time()).counts()
    assert (counts["drift"], counts["conflicts"], counts["duplicates"]) == (0, 0, 0)


def test_unlinked_project_and_customer_get_ranked_suggestions(env: SyncEnv) -> None:
    jira, sf = env.box.jira, env.box.salesforce
    # APOLLO loses every link: no issue names an account, no account names the project.
    for issue in list(jira.issues.values()):
        if issue.project_key == "APOLLO" and issue.account_id is not None:
            jira.update_issue(issue.key, account_id=None)
    for account in sf.records("Account"):
        if account.get("Jira_Project_Key__c") == "APOLLO":
            sf.update_record("Account", account["Id"], Jira_Project_Key__c=None)
    jira.projects["APOLLO"].name = "星辰云平台"
    cjk = sf.create_record("Account", Name="星辰云科技有限公司（88）", Segment__c="Enterprise")
    orion = sf.create_record("Account", Name="Orion Labs 99", Segment__c="Enterprise")
    env.clock.advance(minutes=1)

    report = _reconcile(env)

    projects = {p["key"]: p for p in report.unlinked_projects}
    assert set(projects) == {"APOLLO"}
    assert projects["APOLLO"]["name"] == "星辰云平台"
    best = projects["APOLLO"]["suggestions"][0]
    assert (best["id"], best["name"]) == (cjk, "星辰云科技有限公司（88）")
    assert best["score"] >= 0.9
    customers = {c["id"]: c for c in report.unlinked_customers}
    assert customers[cjk]["suggestions"][0]["id"] == "APOLLO"
    assert customers[orion]["suggestions"][0]["id"] == "ORION"
    scores = [s["score"] for s in customers[orion]["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    text = render_text(report)
    assert "unlinked projects: 1" in text and "星辰云科技有限公司（88）" in text
    console = Console(record=True, width=200, force_terminal=True)
    render_rich(report, console)  # what a person at a terminal sees: tables
    shown = console.export_text()
    assert "unlinked projects (1)" in shown and "星辰云科技有限公司（88）" in shown


def test_a_refused_login_exits_3_without_the_secret(env: SyncEnv) -> None:
    token = env.box.credentials.jira_api_token
    env.edit_config(f'api_token = "{token}"', 'api_token = "not-the-token"')

    report = _reconcile(env)

    assert (report.exit_code, report.status) == (ExitCode.REMOTE, "failed")
    assert report.message and "not-the-token" not in json.dumps(report.as_dict())
    assert report.drift == [] and calls(env.box).writes == 0
    assert render_text(report) == ""  # the one-line error is all a person needs


def test_deleted_records_orphan_reports_and_duplicates_are_reported(env: SyncEnv) -> None:
    jira, sf = env.box.jira, env.box.salesforce
    flagged = sorted(_flagged_issues(env))
    # A flag comment posted twice on one issue (as a run without crash safety would).
    twice = flagged[0]
    ours = next(c.body for c in jira.comments[twice] if "[jira-crm-sync:flag:" in str(c.body))
    jira.add_comment(twice, ours)
    # A deleted issue we labelled and commented on.
    gone = flagged[-1]
    jira.delete_issue(gone)
    # A deleted account with report records of its own.
    reports = {str(r[EXTERNAL_ID]): r for r in sf.records(REPORT)}
    account = min(str(r["Account__c"]) for r in reports.values())
    orphans = {k for k, r in reports.items() if r["Account__c"] == account}
    sf.delete_record("Account", account)
    # A second report record for an existing pair, made by hand under another key.
    pair = min(k for k in reports if k not in orphans)
    copy = {k: v for k, v in reports[pair].items() if k.endswith("__c")}
    copy[EXTERNAL_ID] = pair + "-copy"
    extra = sf.create_record(REPORT, **copy)
    env.clock.advance(minutes=1)
    remote_before, store_before = remote_state(env.box), store_snapshot(env.store)

    report = _reconcile(env)

    assert report.exit_code == ExitCode.OK
    deleted = {(d["kind"], d["key"]): d for d in report.deleted}
    assert deleted[("jira_issue", gone)]["in_store"] and deleted[("jira_issue", gone)]["in_ledger"]
    assert ("account", account) in deleted
    for key in orphans | {pair + "-copy"}:
        assert deleted[("report_record", key)]["in_crm"] is True
    duplicates = {(d.kind, d.key) for d in report.duplicates}
    assert ("flag_comment", twice) in duplicates
    pair_dup = next(d for d in report.duplicates if d.kind == "report_pair")
    assert pair_dup.key == pair and extra in pair_dup.ids and pair_dup.count == 2
    assert calls(env.box).writes == 0
    assert remote_state(env.box) == remote_before
    assert store_snapshot(env.store) == store_before


def test_apply_while_another_holds_the_store_exits_4(cli_env: SyncEnv) -> None:
    env = cli_env
    store = env.store
    _person_edits(env)
    # A serve shard job in flight (on SQLite: the run lock it takes there).
    with shard_lock(store.engine, "serve@elsewhere:4242"):
        blocked, looked = env.cli("reconcile", "--apply"), env.cli("reconcile")

    assert blocked.returncode == 4, blocked.stderr
    assert blocked.stdout == ""
    assert len(blocked.stderr.strip().splitlines()) == 1
    assert looked.returncode == 0, looked.stderr  # reading needs no lock
    assert "drift: 2" in looked.stdout and "reconcile --apply" in looked.stdout  # plain text
    assert "\x1b[" not in looked.stdout  # not a terminal: no colours or tables
    assert _reconcile(env, apply=True, now=_real_time()).exit_code == ExitCode.OK


def test_a_rejected_fix_is_parked_and_apply_exits_1(env: SyncEnv) -> None:
    victim, _total, _key, _kept = _person_edits(env)
    env.box.salesforce.add_validation_rule(
        REPORT, lambda record: record.get(EXTERNAL_ID) == victim, "Locked for audit"
    )
    env.clock.advance(minutes=1)

    applied = _reconcile(env, apply=True)

    assert (applied.exit_code, applied.status) == (ExitCode.PARKED, "parked")
    assert "parked for retry" in applied.message
    assert [(f["side"], f["record"]) for f in applied.failed] == [("salesforce", victim)]
    assert applied.written.get("jira_issues") == 1  # the rest of the fixes went on
    parked = {(p["side"], p["record"]): p for p in applied.parked}
    assert "Locked for audit" in parked[("salesforce", victim)]["error"]
    # A later reconcile still lists it as parked, with its error, and as drift.
    looked = _reconcile(env)
    assert looked.exit_code == ExitCode.OK
    assert ("salesforce", victim) in {(p["side"], p["record"]) for p in looked.parked}
    assert {(d.side, d.record) for d in looked.drift} == {("crm", victim)}
    # Once the CRM accepts it, --apply sends it at once, though its backoff is not over.
    env.box.salesforce.clear_validation_rules()
    fixed = _reconcile(env, apply=True)
    assert (fixed.exit_code, fixed.written, fixed.parked) == (
        ExitCode.OK,
        {"salesforce_records": 1},
        [],
    )
    with env.store.read() as conn:
        assert repo.dirty_marks(conn) == []  # what it stored, it derived
    assert _reconcile(env).counts()["drift"] == 0
