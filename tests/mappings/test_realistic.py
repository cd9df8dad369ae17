"""A generated world (seeded; Jira issues as Jira sends them, CRM records as a connector
hands them over): the merge against an independent reading of the counting rules, and
whole cycles of plans."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import pytest

from bench.merge import ACCOUNT_FIELD, CUSTOMER_IDS, RawWorld, generate
from mappings.dates import parse_date
from mappings.merge import MergeResult, merge, plan, remote_from_items
from mappings.plan import ledgers_after
from mappings.progress import progress_report
from tests.mappings.factories import RULES

REASONS = ("no value", "unknown account id ", "account deleted ", "invalid account id ")


@pytest.fixture(scope="module")
def world() -> RawWorld:
    return generate(issues=3000, accounts=600, seed=7)


@pytest.fixture(scope="module")
def result(world: RawWorld) -> MergeResult:
    return run(world)


def run(world: RawWorld, issues: list[dict[str, Any]] | None = None) -> MergeResult:
    return merge(
        world.issues if issues is None else issues,
        world.accounts,
        world.cases,
        world.surveys,
        rules=RULES,
        as_of=world.as_of,
        deleted_account_ids=world.deleted_account_ids,
        customer_ids=CUSTOMER_IDS,
    )


def expected_pairs(world: RawWorld) -> dict[tuple[str, str], Counter[str]]:
    """The default rules read independently: own value, else the parent's, else accounts
    naming the project; epics not counted; counts by category plus overdue."""
    live = {a["id"] for a in world.accounts}
    by_key = {raw["key"]: raw for raw in world.issues}
    naming: dict[str, list[str]] = defaultdict(list)
    for a in world.accounts:
        if a["project_keys"]:
            naming[a["project_keys"]].append(a["id"])

    def value_of(raw: dict[str, Any]) -> str | None:
        own = raw["fields"].get(ACCOUNT_FIELD)
        if own is not None:
            return own
        parent = raw["fields"].get("parent")
        return value_of(by_key[parent["key"]]) if parent and parent["key"] in by_key else None

    pairs: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    today = world.as_of.date()
    for raw in world.issues:
        fields = raw["fields"]
        project = fields["project"]["key"]
        value = value_of(raw)
        account = CUSTOMER_IDS(value) if value is not None else None
        customers = [account] if account is not None and account in live else naming[project]
        if fields["issuetype"]["name"] == "Epic":
            continue
        category = fields["status"]["statusCategory"]["key"]
        due = parse_date(fields["duedate"])
        for customer in customers:
            counts = pairs[(project, customer)]
            counts["total"] += 1
            counts[category] += 1
            if category != "done" and due is not None and due < today:
                counts["overdue"] += 1
    return pairs


def test_counts_match_an_independent_reading_of_the_rules(
    world: RawWorld, result: MergeResult
) -> None:
    expected = expected_pairs(world)
    got = {
        (r.project_key, r.customer_id): Counter(
            {
                "total": r.total,
                "new": r.todo,
                "indeterminate": r.in_progress,
                "done": r.done,
                "overdue": r.overdue,
            }
        )
        for r in result.reports
    }
    assert {k: +v for k, v in got.items()} == {k: +v for k, v in expected.items() if v["total"]}
    assert len(result.reports) > 50


def test_report_invariants(result: MergeResult) -> None:
    health = Counter(r.health for r in result.reports)
    assert set(health) <= {"green", "amber", "red"} and len(health) >= 2
    for r in result.reports:
        assert r.total == r.todo + r.in_progress + r.done
        assert 0.0 <= r.percent_complete <= 100.0
        assert r.overdue <= r.total - r.done and r.blocked <= r.total - r.done
        assert (r.health == "green") == (r.health_reasons == ())
        assert r.summary and len(r.top_risks) <= RULES.progress.top_risks
        assert r.external_id == f"{r.project_key}:{r.customer_id}"
        assert r.forecast.date is not None or r.forecast.note
    notes = Counter(r.forecast.note for r in result.reports)
    assert notes[""] and notes["not enough history"]


def test_a_report_worked_out_once_for_a_projects_customers_is_each_ones_own(
    result: MergeResult,
) -> None:
    """The merge works a project's report out once for the customers that share its items
    (a project-level rule) and copies it: each copy is what the pair's own report is."""
    customers = {c.id: c for c in result.customers}
    names = {p.key: p.name for p in result.projects}
    totals = {p.key: sum(1 for i in p.items if not i.is_epic) for p in result.projects}
    by_pair = {(r.project_key, r.customer_id): r for r in result.reports}
    sharing: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for link in result.links.links:
        items = result.links.items_of(link)
        own = progress_report(
            customers[link.customer_id],
            link.project_key,
            names[link.project_key],
            items,
            RULES.progress,
            result.as_of,
            project_total=totals[link.project_key],
        )
        assert by_pair[(link.project_key, link.customer_id)] == own
        sharing[(link.project_key, tuple(i.key for i in items))] += 1
    assert max(sharing.values()) > 1, "no two customers share a project's items here"


def test_problems_and_flags(world: RawWorld, result: MergeResult) -> None:
    assert result.links.problems
    assert all(p.reason.startswith(REASONS) for p in result.links.problems)
    reasons = Counter(p.reason.split(" ")[0] for p in result.links.problems)
    assert reasons["unknown"] and reasons["account"]
    levels = Counter(flag.level for flag in result.flags)
    assert set(levels) == {"ok", "watch", "at_risk"}
    assert len(result.flags) == len(result.customers) == len(world.accounts)
    assert sum(r.customers for r in result.rollups) == len(result.customers)


def test_whole_cycles(world: RawWorld, result: MergeResult) -> None:
    remote = remote_from_items(result.items)
    first = plan(result, RULES, jira_remote=remote)
    assert len(first.crm) == len(result.reports)
    at_risk = {f.customer_id for f in result.flags if f.level == "at_risk"}
    items = {item.key: item for item in result.items}
    for write in first.jira:
        assert not items[write.issue_key].is_done
        customers = {t.customer_id for t in result.links.by_item[write.issue_key]}
        assert bool(write.add_labels) == bool(customers & at_risk) or (
            "customer-at-risk" in items[write.issue_key].labels
        )
    crm_ledger, jira_ledger = ledgers_after(first, {}, {})
    again = plan(run(world), RULES, crm_ledger=crm_ledger, jira_ledger=jira_ledger)
    assert again.is_empty


def test_input_order_does_not_change_the_plan(world: RawWorld, result: MergeResult) -> None:
    shuffled = random.Random(1).sample(world.issues, len(world.issues))
    assert plan(run(world, shuffled), RULES).to_json() == plan(result, RULES).to_json()
