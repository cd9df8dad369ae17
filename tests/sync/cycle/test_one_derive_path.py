"""One derive path (sync.cycle.engine.derive_and_record over sync.cycle.derive's
batches): a dry run derives the same batches as a real run and records nothing, its plan
is the plan of one merge of everything (what --dry-run printed before), and a real run
queues exactly the writes of that plan. A hand-built store, no sandbox; SQLite and
PostgreSQL."""

from __future__ import annotations

import json

from sync.cycle.engine import derive_and_record
from sync.cycle.pull import Overlay
from sync.store import Store, repo
from tests.mappings.factories import ACME, AS_OF, GLOBEX
from tests.mappings.factories import issue as raw_issue
from tests.sync.cycle.stores import batched, fill, whole
from tests.sync.e2e import store_snapshot


def test_a_dry_run_in_batches_plans_what_one_merge_plans_and_records_nothing(
    store: Store,
) -> None:
    fill(store)
    before = store_snapshot(store)
    dry = derive_and_record(
        batched(store, 2), run_id=None, now=AS_OF, save=False, crm_side="salesforce"
    )
    assert store_snapshot(store) == before

    merged = whole(store)
    assert dry.plan is not None
    assert dry.plan.as_dict() == merged.plan.as_dict()
    assert dry.plan.render_text() == merged.plan.render_text()
    assert dry.plan.crm and dry.plan.jira  # the store calls for writes on both sides
    assert dry.planned == {
        "salesforce_records": len(merged.plan.crm),
        "jira_issues": len(merged.plan.jira),
    }
    assert dry.conflicts == [c.as_dict() for c in merged.plan.conflicts]
    problems = merged.result.links.problems
    assert dry.link_problems == len(problems)
    assert [(p["project"], p["item"]) for p in dry.link_problem_list] == [
        (p.project_key, p.item_key) for p in problems
    ]


def test_a_real_run_queues_the_writes_of_the_dry_runs_plan(store: Store) -> None:
    fill(store)
    dry = derive_and_record(
        batched(store, 2), run_id=None, now=AS_OF, save=False, crm_side="salesforce"
    )
    real = derive_and_record(
        batched(store, 2), run_id=None, now=AS_OF, save=True, crm_side="salesforce"
    )
    assert dry.plan is not None and real.plan is None

    assert real.planned == dry.planned
    assert real.link_problems == dry.link_problems
    assert real.link_problem_list == dry.link_problem_list
    assert sorted(map(repr, real.conflicts)) == sorted(map(repr, dry.conflicts))
    with store.read() as conn:
        queued = {
            (e.target, e.record_key): e.payload
            for target in ("crm", "jira")
            for e in repo.due(conn, target, AS_OF, 1000)
        }
    assert set(queued) == {("crm", w.external_id) for w in dry.plan.crm} | {
        ("jira", w.issue_key) for w in dry.plan.jira
    }
    for write in dry.plan.crm:
        assert queued["crm", write.external_id]["record"] == write.record()
    for jira_write in dry.plan.jira:
        sent = json.loads(json.dumps(jira_write.as_dict()))  # as the outbox keeps it
        assert sent.items() <= queued["jira", jira_write.issue_key].items()


def test_a_dry_run_plans_over_what_it_pulled_as_one_merge_does(store: Store) -> None:
    fill(store)
    overlay = Overlay()
    # Pulled in the dry run: an issue of a project the store does not hold, one more of
    # GAMMA, and GAMMA-2 deleted; GLOBEX's CSAT recovers.
    overlay.items["OMEGA-1"] = raw_issue("OMEGA-1", account=ACME)
    overlay.items["GAMMA-4"] = raw_issue("GAMMA-4", account=GLOBEX)
    overlay.deleted_items.add("GAMMA-2")
    with store.read() as conn:
        (globex,) = repo.get_customers(conn, [GLOBEX]).values()
    overlay.accounts[GLOBEX] = {**globex.data, "satisfaction": 9.0}

    dry = derive_and_record(
        batched(store, 2, overlay=overlay),
        run_id=None,
        now=AS_OF,
        save=False,
        crm_side="salesforce",
    )
    merged = whole(store, overlay=overlay)
    assert dry.plan is not None
    assert dry.plan.as_dict() == merged.plan.as_dict()
    # The pulled project is derived (its report record planned), the deleted issue is not.
    assert f"OMEGA:{ACME}" in {w.external_id for w in dry.plan.crm}
    assert dry.plan.as_dict() != whole(store).plan.as_dict()
