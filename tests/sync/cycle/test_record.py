"""The record stage (sync.cycle.record) on a hand-built store, no sandbox: a derived batch
is recorded with its writes queued in one transaction, recording it again queues nothing
twice, and a queued write the new plan no longer wants is dropped. SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from mappings.writes import Plan
from sync.cycle.record import record_batch, record_end
from sync.store import Store, repo
from tests.mappings.factories import ACME, AS_OF
from tests.sync.cycle.stores import PROJECTS, batched, fill


def _queued(store: Store) -> list[tuple[str, str]]:
    with store.read() as conn:
        return sorted((e.target, e.record_key) for e in repo.iter_unfinished_refs(conn))


def test_a_recorded_derive_queues_its_plan_and_keeps_its_model(store: Store) -> None:
    fill(store)
    derived = batched(store, 2)
    wanted: list[tuple[str, str]] = []
    for batch in derived:
        queued = record_batch(store, batch, None, AS_OF)
        assert queued == {"crm": len(batch.plan.crm), "jira": len(batch.plan.jira)}
        wanted += [("crm", w.external_id) for w in batch.plan.crm]
        wanted += [("jira", w.issue_key) for w in batch.plan.jira]
    record_end(store, derived.end, AS_OF)

    assert wanted and _queued(store) == sorted(wanted)
    with store.read() as conn:
        links = repo.get_links(conn, customer_ids=[ACME])
        assert {link.project_key for link in links} == {"ALPHA", "BETA"}
        assert repo.dirty_marks(conn) == []  # every mark, NOPE's at the end
        assert set(repo.get_flags(conn)) == {c.id for c in derived.end.crm.customers}
        assert {p.project_key for p in repo.iter_link_problems(conn)} <= set(PROJECTS)


def test_recording_the_same_derive_again_queues_nothing_twice(store: Store) -> None:
    fill(store)
    for _ in range(2):
        derived = batched(store, 2)
        for batch in derived:
            record_batch(store, batch, None, AS_OF)
        record_end(store, derived.end, AS_OF)
    queued = _queued(store)
    assert queued and len(queued) == len(set(queued))
    with store.read() as conn:
        assert repo.counts(conn)["pending"] == len(queued)


def test_a_queued_write_the_new_plan_does_not_want_is_dropped(store: Store) -> None:
    fill(store)
    derived = batched(store, 100)  # one batch: every project
    (batch,) = list(derived)
    record_batch(store, batch, None, AS_OF)
    assert _queued(store)

    # The data changed: the same projects now want nothing written.
    record_batch(store, replace(batch, plan=Plan(), marks=()), None, AS_OF)
    assert _queued(store) == []
    with store.read() as conn:
        assert repo.counts(conn)["pending"] == 0
