"""Reconcile's comparison on SQLite files, without the sandbox: a scratch store holding what
was "read", a state store holding the ledger, and the findings batch by batch.

The findings do not depend on how the scope is cut into batches (one issue a batch finds
what one batch of everything finds); a remote that holds what the plan writes is no drift,
and one changed field is exactly one drift; records the ledger or store knows that were
not read are deleted; a repeated flag comment is a duplicate, and ours is redundant; a
section keeps a bounded number of entries while counting and listing (--json) them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sync.reconcile.report
from connectors.crm import CrmRecord
from connectors.jira import CommentInfo
from mappings.drift import Drift
from mappings.text import flag_marker
from mappings.writes import CrmWrite
from sync.cycle.derive import Derived
from sync.cycle.rows import LEDGER_FIELD
from sync.reconcile import ReconcileReport, render_text
from sync.reconcile.compare import Compared, Derivation, JiraComments, compare, main_reports_only
from sync.reconcile.read import ReadBoth
from sync.store import Store, open_store, repo
from tests.mappings.factories import ACME, AS_OF, GLOBEX, GONE, INITECH, RULES, account, case
from tests.mappings.factories import issue as raw_issue
from tests.sync.cycle.stores import FORM

DERIVATION = Derivation(
    "https://jira.example.test", "https://crm.example.test", 30, "enforce", FORM
)
ME = "5b10-integration"


def _items() -> list[dict[str, Any]]:
    """Four projects: ALPHA's epic names ACME and BETA's stories are its children, GAMMA
    links by its own field (and names a deleted account), DELTA is named by INITECH's
    project-key field, OMEGA names nobody."""
    return [
        raw_issue("ALPHA-1", account=ACME, type_name="Epic"),
        raw_issue("ALPHA-2", parent="ALPHA-1", status="Done"),
        raw_issue("BETA-1", parent="ALPHA-1", status="In Progress"),
        raw_issue("BETA-2", account=GLOBEX, labels=["customer-at-risk"]),
        raw_issue("GAMMA-1", account=GLOBEX, status="Blocked"),
        raw_issue("GAMMA-2", account=GONE),
        raw_issue("DELTA-1"),
        raw_issue("OMEGA-1"),
    ]


def _open(path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{path}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Store]:
    """What the read put in the scratch store: issues, accounts (one deleted), cases."""
    for opened in _open(tmp_path / "scratch.sqlite3"):
        with opened.transaction() as tx:
            repo.upsert_items(
                tx,
                [
                    {
                        "key": raw["key"],
                        "project_key": raw["fields"]["project"]["key"],
                        "issue_id": raw["id"],
                        "updated": None,
                        "data": raw,
                    }
                    for raw in _items()
                ],
            )
            accounts = [
                account(ACME, "Acme Corp"),
                account(GLOBEX, "Globex", csat=2.0, segment="SMB"),
                account(INITECH, "Initech", csat=None, project_key="DELTA"),
                account(GONE, "Gone Ltd"),
                account("001000000000777AAA", "Omega Orbital"),
            ]
            repo.upsert_customers(
                tx, [{"id": a["id"], "modstamp": None, "data": a} for a in accounts]
            )
            repo.mark_customers_deleted(tx, [GONE])
            cases = [case(GLOBEX, escalated=True), case(GLOBEX, escalated=True)]
            repo.upsert_cases(
                tx,
                [
                    {
                        "id": c["id"],
                        "customer_id": c["customer_id"],
                        "is_closed": bool(c["closed"]),
                        "is_escalated": bool(c["escalated"]),
                        "modstamp": None,
                    }
                    for c in cases
                ],
            )
        yield opened


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The state store: only its ledger is read by the comparison."""
    yield from _open(tmp_path / "state.sqlite3")


class Comments:
    """Jira's comments of some issues, as the connector lists them."""

    def __init__(self, comments: dict[str, list[CommentInfo]]) -> None:
        self.comments = comments
        self.asked: list[str] = []

    def comment_infos(self, key: str) -> Iterable[CommentInfo]:
        self.asked.append(key)
        return list(self.comments.get(key, []))


def _read(reports: list[dict[str, Any]] | None = None) -> ReadBoth:
    records = [CrmRecord(str(r["Id"]), AS_OF, r) for r in reports or []]
    return ReadBoth(keys={raw["key"] for raw in _items()}, reports=records)


def _compare(
    store: Store,
    scratch: Store,
    read: ReadBoth,
    *,
    batch_issues: int | None = None,
    comments: Comments | None = None,
) -> tuple[ReconcileReport, Compared, list[Derived]]:
    report = ReconcileReport(applied=False, as_of=AS_OF)
    reader = comments or Comments({})
    batches: list[Derived] = []
    compared = compare(
        store,
        scratch,
        RULES,
        read,
        report,
        AS_OF,
        derivation=DERIVATION,
        comments=JiraComments(reader, read, None, marked=set(reader.comments), me=ME),
        on_batch=batches.append,
        batch_issues=batch_issues,
    )
    return report, compared, batches


def _findings(report: ReconcileReport) -> dict[str, Any]:
    """Every section of the --json document, each as a sorted list of its entries."""
    doc = report.as_dict()
    return {
        name: sorted(repr(entry) for entry in doc[name])
        for name in (
            "drift",
            "conflicts",
            "duplicates",
            "unlinked_projects",
            "unlinked_customers",
            "link_problems",
            "deleted",
        )
    } | {"counts": doc["counts"]}


def test_findings_do_not_depend_on_the_batches(store: Store, scratch: Store) -> None:
    whole, _compared, one = _compare(store, scratch, _read())
    cut, _compared, many = _compare(store, scratch, _read(), batch_issues=1)

    assert len(one) == 1 and len(many) == 5  # projects, whole: ALPHA BETA DELTA GAMMA OMEGA
    assert _findings(cut) == _findings(whole)
    counts = whole.counts()
    # Nothing read of the report object: every pair's record is missing in the CRM.
    pairs = sum(len(batch.result.reports) for batch in one)
    assert pairs >= 3
    assert {(d.record, d.field) for d in whole.drift if d.side == "crm"} == {
        (r.external_id, "record") for r in one[0].plan.crm
    }
    assert counts["drifted_records"] == len({(d.side, d.record) for d in whole.drift})
    assert {p["key"] for p in whole.unlinked_projects} == {"OMEGA"}
    omega = whole.unlinked_projects[0]["suggestions"]
    assert omega and omega[0]["name"] == "Omega Orbital"
    # Unlinked in every batch, not in one: Omega Orbital alone (ACME, GLOBEX, INITECH link).
    assert [c["name"] for c in whole.unlinked_customers] == ["Omega Orbital"]
    assert whole.unlinked_customers[0]["suggestions"][0]["id"] == "OMEGA"
    assert any(GONE in p["reason"] for p in whole.link_problems)


def test_a_remote_that_holds_the_plan_is_no_drift_and_one_edit_is_one(
    store: Store, scratch: Store
) -> None:
    _report, _compared, batches = _compare(store, scratch, _read())
    writes = [w for batch in batches for w in batch.plan.crm]
    held = [{"Id": f"a0X{i:015d}", **w.record()} for i, w in enumerate(writes)]
    for record in held:
        record.pop("attributes")

    clean, _compared, _batches = _compare(store, scratch, _read(held), batch_issues=1)
    assert [d for d in clean.drift if d.side == "crm"] == []
    assert clean.deleted == [] and clean.duplicates == []

    victim = held[0]
    field = next(name for name in victim if name.endswith("__c") and isinstance(victim[name], int))
    edited = [{**victim, field: victim[field] + 900}, *held[1:]]
    found, _compared, _batches = _compare(store, scratch, _read(edited), batch_issues=1)
    crm = [d for d in found.drift if d.side == "crm"]
    ext = RULES.crm_push.external_id_field
    assert crm == [Drift("crm", victim[ext], field, victim[field] + 900, victim[field])]
    # A record for a pair that is not linked (any more) is reported, by its CRM id.
    orphan = {**victim, ext: "ZETA:" + ACME, "Id": "a0X999999999999999"}
    orphaned, _compared, _batches = _compare(store, scratch, _read([*held, orphan]))
    assert orphaned.deleted == [
        {
            "kind": "report_record",
            "key": "ZETA:" + ACME,
            "in_crm": True,
            "in_ledger": False,
            "id": "a0X999999999999999",
        }
    ]


def test_what_the_store_or_ledger_knows_and_was_not_read_is_deleted(
    store: Store, scratch: Store
) -> None:
    with store.transaction() as tx:
        repo.ledger_put_many(
            tx,
            [
                {"target": "jira", "record_key": key, "field": LEDGER_FIELD}
                | {"value_hash": "x", "value": {"issue_key": key}}
                for key in ("ALPHA-1", "ZETA-9")
            ]
            + [
                {
                    "target": "crm",
                    "record_key": "ZETA:" + ACME,
                    "field": LEDGER_FIELD,
                    "value_hash": "x",
                    "value": "x",
                }
            ],
        )
    read = _read()
    read.gone_items = {"ZETA-8"}
    read.gone_accounts = {GONE: "Gone Ltd"}

    report, _compared, _batches = _compare(store, scratch, read)

    assert report.deleted == [
        {"kind": "jira_issue", "key": "ZETA-8", "in_store": True, "in_ledger": False},
        {"kind": "jira_issue", "key": "ZETA-9", "in_store": False, "in_ledger": True},
        {"kind": "account", "key": GONE, "name": "Gone Ltd", "in_store": True},
        {
            "kind": "report_record",
            "key": "ZETA:" + ACME,
            "in_crm": False,
            "in_ledger": True,
            "id": None,
        },
    ]


def test_a_repeated_flag_comment_is_a_duplicate_and_ours_is_redundant(
    store: Store, scratch: Store
) -> None:
    marker = flag_marker(GLOBEX, "at_risk")
    comments = Comments(
        {
            "BETA-2": [
                CommentInfo("10", f"at risk {marker}", ME),
                CommentInfo("11", "a person's note", "someone"),
                CommentInfo("12", f"again {marker}", ME),
                CommentInfo("13", f"a person's copy {marker}", "someone"),
            ]
        }
    )
    read = _read()

    report, compared, _batches = _compare(store, scratch, read, batch_issues=1, comments=comments)

    assert comments.asked == ["BETA-2"]  # only the marked issue's comments are read
    assert read.counts["jira_comment_checks"] == 1
    flagged = [d for d in report.duplicates if d.kind == "flag_comment"]
    assert [(d.key, d.count, d.ids) for d in flagged] == [("BETA-2", 3, ("12", "13"))]
    assert compared.redundant == {"BETA-2": ("12",)}  # the person's copy is not ours


def test_a_section_keeps_a_bounded_number_and_lists_every_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sync.reconcile.report, "EXAMPLES", 3)
    report = ReconcileReport(applied=False, as_of=AS_OF)
    drift = [Drift("jira", f"ALPHA-{i}", "labels", [], ["x"]) for i in range(5)]
    for entry in drift:
        report.add("drift", entry)
    report.drifted_records = 5

    assert report.drift == drift[:3]
    assert report.counts()["drift"] == 5 and report.counts()["drifted_records"] == 5
    assert report.as_dict()["drift"] == [d.as_dict() for d in drift]
    text = render_text(report, limit=2)
    assert "drift: 5" in text and "... and 3 more (--json lists every one)" in text
    assert "read nothing; 5 drift in 5 record(s)" in text
    report.spill.close()


def test_where_a_customer_holds_one_report_only_its_main_projects_is_expected() -> None:
    """Company properties: a customer holds its main project's report (the lowest key it
    is linked to, in this batch or another): only that write is compared."""

    def write(key: str) -> CrmWrite:
        return CrmWrite("companies", "sync_key", key, (("issues_total", 1),), "digest")

    writes = [write("ABC:1"), write("XYZ:1"), write("XYZ:2"), write("DEF:3"), write("MNO:4")]
    linked = ["ABC:1", "XYZ:1", "XYZ:2", "DEF:3", "ABC:3", "MNO:4"]  # ABC:3 in another batch
    kept = main_reports_only(writes, linked)
    assert [w.external_id for w in kept] == ["ABC:1", "XYZ:2", "MNO:4"]
