"""The generated demo world: deterministic, consistent across the two systems, realistic."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from connectors.sandbox.schema import JIRA_STATUSES, SEGMENTS
from connectors.sandbox.world import generate_world, salesforce_id

ANCHOR = datetime(2026, 11, 21, tzinfo=UTC)


def test_same_seed_same_world_and_other_seed_other_world() -> None:
    first = generate_world(400, 80, seed=7, anchor=ANCHOR)
    assert first == generate_world(400, 80, seed=7, anchor=ANCHOR)
    assert first != generate_world(400, 80, seed=8, anchor=ANCHOR)


def test_salesforce_ids_have_a_valid_case_checksum() -> None:
    ident = salesforce_id("001", 123456)
    assert len(ident) == 18 and ident.startswith("001")
    base, suffix = ident[:15], ident[15:]
    expected = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(base[chunk * 5 : chunk * 5 + 5]) if c.isupper())
        expected += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    assert suffix == expected
    assert len({salesforce_id("001", n) for n in range(5000)}) == 5000


def test_records_are_consistent_across_both_systems() -> None:
    world = generate_world(2000, 300, seed=3, anchor=ANCHOR)
    account_ids = {a.id for a in world.accounts}
    project_keys = {p.key for p in world.projects}
    issue_keys = {i.key for i in world.issues}
    version_ids = {v.id: v for v in world.versions}
    assert len(world.issues) == 2000 and len(world.accounts) == 300
    assert len(issue_keys) == 2000
    for issue in world.issues:
        assert re.fullmatch(r"[A-Z][A-Z0-9]+-\d+", issue.key)
        assert issue.project_key in project_keys
        assert issue.status in JIRA_STATUSES
        assert issue.created <= issue.updated <= ANCHOR
        workflow = world.workflow_of(issue.project_key)
        if workflow.sets_resolution:  # reopened, a kept resolution stays on an open item
            assert issue.resolved is not None or issue.status != "Done"
        else:
            assert issue.resolved is None  # Done without resolution
        if workflow.clears_resolution:
            assert issue.resolved is None or issue.status == "Done"
        assert issue.account_id is None or issue.account_id in account_ids
        if issue.parent_key is not None:
            assert issue.parent_key in issue_keys and issue.issue_type != "Epic"
        for version_id in issue.fix_version_ids:
            assert version_ids[version_id].project_key == issue.project_key
        if issue.history:
            assert issue.history[-1].to_status == issue.status
    for case in world.cases:
        assert case.account_id in account_ids
        assert not (case.is_closed and case.is_escalated)
    assert {a.segment for a in world.accounts} <= set(SEGMENTS)
    assert all(0 <= s.score <= 10 for s in world.surveys)


def test_the_world_has_what_the_demo_needs() -> None:
    world = generate_world(3000, 400, seed=1, anchor=ANCHOR)
    issues = world.issues
    linked_directly = [i for i in issues if i.account_id is not None]
    only_via_epic = [i for i in issues if i.account_id is None and i.parent_key is not None]
    # "set on most but not all issues (some only on their epic)"
    assert 0.6 * len(issues) < len(linked_directly) < len(issues)
    assert only_via_epic
    assert any(i.issue_type == "Epic" for i in issues)
    assert {i.status for i in issues} == set(JIRA_STATUSES)
    assert any(i.due is not None and i.due < ANCHOR.date() and i.status != "Done" for i in issues)
    assert any(i.story_points for i in issues)
    assert any(v.release_date and v.release_date > ANCHOR.date() for v in world.versions)
    assert any(re.search(r"[\u4e00-\u9fff]", i.summary) for i in issues)
    assert any(re.search(r"[\u4e00-\u9fff]", a.name) for a in world.accounts)
    assert any(c.is_escalated for c in world.cases)
    assert any(a.csat is not None and a.csat < 3.5 for a in world.accounts)
    assert any(a.csat is None for a in world.accounts)
    assert any(a.jira_project_key for a in world.accounts)


def test_empty_world_is_allowed() -> None:
    world = generate_world(0, 0, seed=1, anchor=ANCHOR)
    assert world.issues == [] and world.accounts == [] and world.projects == []
