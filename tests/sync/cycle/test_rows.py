"""Vendor records <-> store rows, both ways (sync.cycle.rows): what a pull writes comes
back out of the store as the merge reads it, and ledger rows as the plan judges by them.
On a SQLite file (and PostgreSQL), no sandbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from connectors.crm import SURVEY, CrmRecord
from mappings.rules import SatisfactionRules, SurveyRules
from mappings.writes import JiraLedger
from sync.cycle import rows
from sync.cycle.derive import crm_inputs
from sync.cycle.pull import store_crm_page
from sync.store import Store, repo
from tests.mappings.factories import ACME, AS_OF, GLOBEX, GONE, RULES
from tests.mappings.factories import issue as raw_issue
from tests.sync.cycle.stores import FORM, cases, customers, fill


def test_an_issue_goes_in_and_comes_out_as_jira_sent_it(store: Store) -> None:
    raw = raw_issue("ALPHA-7", account=ACME, labels=["x"])
    raw["fields"]["updated"] = "2026-11-20T08:00:00.000+0000"
    row = rows.issue_row(raw)
    assert (row["key"], row["project_key"], row["issue_id"]) == ("ALPHA-7", "ALPHA", raw["id"])
    assert row["updated"] == AS_OF.replace(day=20, hour=8, minute=0)
    with store.transaction() as tx:
        repo.upsert_items(tx, [row])
    with store.read() as conn:
        (stored,) = repo.iter_items(conn, ["ALPHA"])
    assert stored.data == raw

    # A record without its project field is filed under its key's project.
    bare = {"key": "BETA-3", "id": "3", "fields": {}}
    assert rows.issue_row(bare)["project_key"] == "BETA"
    assert rows.issue_row(bare)["updated"] is None


def test_crm_records_come_back_as_the_merge_reads_them(store: Store) -> None:
    fill(store)
    with store.read() as conn:
        read = crm_inputs(conn, RULES, AS_OF, 90, FORM)
    assert sorted(a["id"] for a in read.accounts) == sorted(
        c.id for c in customers() if c.id != GONE
    )
    assert read.deleted_accounts == [GONE]
    by_id = {a["id"]: a for a in read.accounts}
    assert all(by_id[c.id] == c.data for c in customers() if c.id != GONE)  # as pulled
    assert sorted(read.cases, key=lambda c: c["id"]) == sorted(
        (
            {"id": c.id, "customer_id": c.customer_id, "closed": False, "escalated": c.escalated}
            for c in cases()
        ),
        key=lambda c: c["id"],
    )
    assert read.surveys == []  # satisfaction does not come from surveys: none read


def test_survey_answers_come_back_in_the_neutral_form(store: Store) -> None:
    rules = replace(
        RULES, satisfaction=replace(SatisfactionRules(), source="survey", survey=SurveyRules())
    )
    answers = [
        CrmRecord("a1", AS_OF, {}, customer_id=ACME, score=9.0, answered_at=AS_OF),
        CrmRecord("a2", AS_OF, {}, customer_id=GLOBEX, score=3.0, answered_at=None),
        # outside the survey window: not read back
        CrmRecord(
            "a3", AS_OF, {}, customer_id=ACME, score=1.0, answered_at=AS_OF - timedelta(days=91)
        ),
    ]
    with store.transaction() as tx:
        store_crm_page(tx, SURVEY, answers, [], AS_OF)
    with store.read() as conn:
        read = crm_inputs(conn, rules, AS_OF, 90, FORM)
    assert {s["id"]: s for s in read.surveys}["a1"] == {
        "id": "a1",
        "customer_id": ACME,
        "score": 9.0,
        "answered_at": AS_OF.isoformat(),
    }
    assert "a3" not in {s["id"] for s in read.surveys}


def test_ledger_rows_read_back_as_the_plan_judges_by_them(store: Store) -> None:
    entry = JiraLedger("ALPHA-1", label="customer-at-risk", field_value=None, flags=())
    with store.transaction() as tx:
        repo.ledger_put_many(
            tx,
            [rows.jira_ledger_row(entry, 7), rows.crm_ledger_row("ALPHA:" + ACME, "d1g", 7)],
        )
    with store.read() as conn:
        jira = rows.jira_ledger_of(repo.ledger_get_many(conn, "jira", ["ALPHA-1", "BETA-1"]))
        crm = rows.crm_ledger_of(repo.ledger_get_many(conn, "crm", ["ALPHA:" + ACME]))
    assert jira == {"ALPHA-1": entry}
    assert crm == {"ALPHA:" + ACME: "d1g"}
    # The digest is of the value: the same entry makes the same row.
    assert (
        rows.jira_ledger_row(entry, 8)["value_hash"] == rows.jira_ledger_row(entry, 7)["value_hash"]
    )


def test_a_set_aside_record_is_stored_with_its_reason(store: Store) -> None:
    with store.transaction() as tx:
        repo.quarantine_records(
            tx,
            [rows.quarantine_row("jira", rows.JIRA_KIND, "ALPHA-9", "labels: not a list")],
            at=AS_OF,
        )
    with store.read() as conn:
        (held,) = repo.iter_quarantined(conn)
    assert (held.side, held.kind, held.record_id, held.reason) == (
        "jira",
        "issue",
        "ALPHA-9",
        "labels: not a list",
    )


def test_survivors_name_the_ids_merged_into_them_through_a_chain_of_merges() -> None:
    acme = {"id": ACME, "name": "Acme", "merged_ids": "001000000000001ZZZ"}
    globex = {"id": GLOBEX, "name": "Globex"}
    # GONE was merged into a customer that was itself merged into ACME; X's survivor is
    # no live customer (left alone).
    merged = {GONE: "001B", "001B": ACME, "001X": "001Y"}
    out = rows.name_merged([acme, globex], merged)
    assert out[0]["merged_ids"] == ["001000000000001ZZZ", "001B", GONE]
    assert out[1] is globex and "merged_ids" not in globex
    assert acme["merged_ids"] == "001000000000001ZZZ"  # the records given are not changed
    assert rows.name_merged([globex], {GONE: "001Y"}) == [globex]


def test_a_customer_merged_away_is_kept_deleted_naming_its_survivor(store: Store) -> None:
    fill(store)  # GONE is stored deleted
    never = "001000000000777AAA"  # merged away before the store saw it
    with store.transaction() as tx:
        repo.mark_customers_merged(tx, {GLOBEX: ACME, GONE: ACME, never: ACME}, at=AS_OF)
    with store.read() as conn:
        stored = repo.get_customers(conn, [ACME, GLOBEX, GONE, never], include_deleted=True)
        inputs = crm_inputs(conn, RULES, AS_OF, 30, FORM)
    assert not stored[ACME].deleted
    assert stored[GLOBEX].deleted and stored[GLOBEX].data[repo.MERGED_INTO] == ACME
    assert stored[GLOBEX].data["name"] == "Globex"  # what it held is kept
    assert stored[GONE].deleted and stored[GONE].data[repo.MERGED_INTO] == ACME
    assert stored[never].deleted and stored[never].data == {"id": never, repo.MERGED_INTO: ACME}
    assert inputs.merged_into == {GLOBEX: ACME, GONE: ACME, never: ACME}
    assert GLOBEX not in {a["id"] for a in inputs.accounts}
