"""Deriving in batches of projects (SPEC section 9: memory flat as data grows).

A cycle merges and records a bounded number of issues at a time. These tests hold it to
the model and plan of one merge of everything (a parent epic in another batch included),
and to crash safety: a cycle that dies between two recorded batches leaves the marks and
engine state of what it did not record, and the next cycle ends where an uninterrupted
one does. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import sync.cycle.derive
import sync.cycle.engine
from connectors.sandbox.server import Tls
from mappings.merge import MergeResult
from mappings.rules import Rules
from mappings.writes import Plan
from sync.cycle.derive import BatchedDerive, Derived
from sync.remote import build_remotes, crm_form, resolve_field_ids
from sync.store import Store, open_store, repo
from tests.mappings.factories import ACME, AS_OF, GLOBEX, INITECH
from tests.sync.cycle.stores import batched, fill, whole
from tests.sync.e2e import (
    SyncEnv,
    duplicate_comments,
    expected,
    in_process_env,
    labelled,
    remote_state,
    report_counts,
)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    fill(opened)
    try:
        yield opened
    finally:
        opened.close()


def _whole(store: Store, projects: list[str] | None) -> Derived:
    return whole(store, projects=projects)


def _batched(store: Store, projects: list[str] | None, size: int) -> BatchedDerive:
    return batched(store, size, projects=projects)


def _model(results: list[MergeResult]) -> dict[str, Any]:
    """What is recorded and written from merge results, order-free."""
    return {
        "items": sorted(item.key for r in results for item in r.items),
        "links": sorted(repr(link) for r in results for link in r.links.links),
        "by_item": sorted((k, repr(v)) for r in results for k, v in r.links.by_item.items()),
        "item_problems": sorted(repr(p) for r in results for p in r.links.problems if p.item_key),
        "reports": sorted(repr(report) for r in results for report in r.reports),
    }


def _writes(plans: list[Plan]) -> dict[str, Any]:
    return {
        "crm": sorted((w.external_id, w.digest) for p in plans for w in p.crm),
        "jira": sorted(repr(w.as_dict()) for p in plans for w in p.jira),
        "conflicts": sorted(repr(c) for p in plans for c in p.conflicts),
    }


def test_batches_derive_what_one_merge_of_everything_derives(store: Store) -> None:
    whole = _whole(store, None)
    batched = _batched(store, None, size=2)
    batches = list(batched)

    assert [b.projects for b in batches] == [("ALPHA",), ("BETA",), ("DELTA",), ("GAMMA",)]
    assert _model([b.result for b in batches]) == _model([whole.result])
    assert _writes([b.plan for b in batches]) == _writes([whole.plan])
    # BETA's stories inherit ACME from ALPHA's epic, read from the store for their batch.
    beta = {link.customer_id for link in batches[1].result.links.links}
    assert beta == {ACME, GLOBEX}
    # Customers and flags are built once, and are those of the whole merge.
    end = batched.end
    assert end.crm.customers == whole.result.customers
    assert end.crm.flags == whole.result.flags
    assert all(b.result.customers is batches[0].result.customers for b in batches)
    # Each batch clears its own projects' marks; the rest (no such project) at the end.
    assert [b.marks for b in batches] == [
        tuple(m for m in whole.marks if m.project_key == p)
        for p in ("ALPHA", "BETA", "DELTA", "GAMMA")
    ]
    assert end.everything and end.projects == ("ALPHA", "BETA", "DELTA", "GAMMA")
    assert [m.project_key for m in end.marks] == ["NOPE"]
    assert sorted(end.marks + tuple(m for b in batches for m in b.marks)) == sorted(whole.marks)


def test_accounts_an_older_version_stored_are_read_as_neutral_records(store: Store) -> None:
    """Stores written before the CRM seam hold each Account as Salesforce sent it: the
    derive reads them as the neutral records a pull stores now (no migration)."""
    neutral = _whole(store, None).result
    with store.transaction() as tx:
        legacy = [
            {
                "Id": customer.id,
                "Name": customer.name,
                "Segment__c": customer.segment,
                "CSAT__c": customer.satisfaction.score if customer.satisfaction else None,
                "OwnerId": customer.owner_id,
                "Owner": {"Name": customer.owner_name},
                "Jira_Project_Key__c": ", ".join(customer.project_keys) or None,
                "SystemModstamp": "2026-11-20T10:00:00.000+0000",
            }
            for customer in neutral.customers
        ]
        repo.upsert_customers(tx, [{"id": a["Id"], "modstamp": None, "data": a} for a in legacy])
    with store.read() as conn:
        assert all("Id" in a.data for a in repo.iter_customers(conn))  # as an older version
    assert _whole(store, None).result == neutral
    assert _model([b.result for b in _batched(store, None, size=2)]) == _model([neutral])


def test_batches_of_some_projects_cover_those_without_issues(store: Store) -> None:
    batched = _batched(store, ["NOPE", "BETA", "GAMMA"], size=100)
    batches = list(batched)

    assert [b.projects for b in batches] == [("BETA", "GAMMA", "NOPE")]
    (only,) = batches
    assert [m.project_key for m in only.marks] == ["NOPE"]
    everything = _whole(store, None).result
    assert _model([only.result]) == _model([_restricted(everything, {"BETA", "GAMMA"})])
    assert not batched.end.everything and batched.end.marks == ()


def _restricted(result: MergeResult, projects: set[str]) -> MergeResult:
    """The part of a whole merge's model that belongs to ``projects``."""
    links = result.links
    keep = {item.key for item in result.items if item.project_key in projects}
    return replace(
        result,
        items=tuple(i for i in result.items if i.key in keep),
        links=replace(
            links,
            by_item={k: v for k, v in links.by_item.items() if k in keep},
            links=tuple(link for link in links.links if link.project_key in projects),
            problems=tuple(p for p in links.problems if p.project_key in projects),
        ),
        reports=tuple(r for r in result.reports if r.project_key in projects),
    )


# --- cycles over the sandbox -------------------------------------------------------------------


def _rules(env: SyncEnv) -> Rules:
    remotes = build_remotes(env.config)
    try:
        field_ids = resolve_field_ids(remotes.jira, env.config)
    finally:
        remotes.jira.close()
    return env.config.mapping_rules(field_ids)


def test_a_cycle_in_batches_writes_what_one_batch_writes(
    store_url: str, tmp_path: Path, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process_env(_sqlite(tmp_path / "one"), tmp_path / "one", tls) as env:
        assert env.cycle().exit_code == 0
        reference, reference_flags = remote_state(env.box), _flags(env.store)
    monkeypatch.setattr(sync.cycle.derive, "BATCH_ISSUES", 15)
    with in_process_env(store_url, tmp_path / "many", tls) as env:
        assert env.cycle(only="pull").exit_code == 0
        batches = list(
            BatchedDerive(
                env.store,
                _rules(env),
                None,
                env.clock(),
                jira_url=env.config.jira.url,
                instance_url=env.config.crm.salesforce.instance_url,
                survey_window_days=env.config.satisfaction.survey.window_days,
                form=crm_form(env.config),
            )
        )
        # The world's two projects hold more than 15 issues each: one batch each.
        assert [len(b.projects) for b in batches] == [1, 1]
        assert all(len(b.result.items) >= 15 for b in batches)

        result = env.cycle()
        assert (result.status, int(result.exit_code)) == ("ok", 0), result.message
        assert remote_state(env.box).differences(reference) == []
        assert _flags(env.store) == reference_flags
        want = expected(env.box, env.clock().date())
        assert report_counts(env.box) == want.reports
        assert labelled(env.box) == want.labelled
        env.settle()


def _sqlite(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'reference.db'}"


def _flags(store: Store) -> dict[str, str]:
    with store.read() as conn:
        return {customer: flag.level for customer, flag in repo.get_flags(conn).items()}


def _engine_state(store: Store) -> Any:
    with store.read() as conn:
        return repo.derive_states(conn, [repo.EVERY_PROJECT]).get(repo.EVERY_PROJECT)


class Crash(Exception):
    """Stands for the process dying: the engine does not catch it."""


def test_a_crash_between_batches_converges_on_the_next_cycle(
    store_url: str, tmp_path: Path, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync.cycle.derive, "BATCH_ISSUES", 15)
    with in_process_env(_sqlite(tmp_path / "reference"), tmp_path / "reference", tls) as env:
        assert env.cycle().exit_code == 0
        reference = remote_state(env.box)

    with in_process_env(store_url, tmp_path / "crash", tls) as env:
        real = sync.cycle.engine.record_batch
        recorded: list[tuple[str, ...]] = []

        def dies_on_the_second(store: Store, derived: Derived, *args: Any) -> Any:
            if recorded:
                raise Crash
            recorded.append(derived.projects)
            return real(store, derived, *args)

        monkeypatch.setattr(sync.cycle.engine, "record_batch", dies_on_the_second)
        with pytest.raises(Crash):
            env.cycle()
        monkeypatch.setattr(sync.cycle.engine, "record_batch", real)

        done = {p for projects in recorded for p in projects}
        with env.store.read() as conn:
            marked = {mark.project_key for mark in repo.dirty_marks(conn)}
            linked = {link.project_key for link in repo.get_links(conn)}
            queued = {e.shard for e in repo.iter_unfinished_refs(conn)}
        assert done and marked and not marked & done  # recorded batches cleared theirs
        assert linked <= done and queued <= {f"jira:{p}" for p in done}
        assert _engine_state(env.store) is None  # not derived: the rerun derives it all
        assert _flags(env.store) == {}  # flags wait for the last batch

        result = env.cycle()
        assert (result.status, int(result.exit_code)) == ("ok", 0), result.message
        with env.store.read() as conn:
            assert repo.dirty_marks(conn) == []
        assert _engine_state(env.store) is not None
        assert remote_state(env.box).differences(reference) == []
        assert duplicate_comments(env.box) == {}
        env.settle()


def test_previous_scores_are_each_customers_latest_scored_day_before_today(store: Store) -> None:
    today = AS_OF.date()
    rows: list[repo.SatisfactionRow] = [
        {
            "customer_id": ACME,
            "day": today - timedelta(days=3),
            "score": 4.0,
            "scale": 5,
            "level": "ok",
        },
        {
            "customer_id": ACME,
            "day": today - timedelta(days=2),
            "score": 3.5,
            "scale": 5,
            "level": "ok",
        },
        {
            "customer_id": ACME,
            "day": today - timedelta(days=1),
            "score": None,
            "scale": None,
            "level": "ok",
        },
        {"customer_id": ACME, "day": today, "score": 1.0, "scale": 5, "level": "ok"},
        {"customer_id": GLOBEX, "day": today, "score": 2.0, "scale": 5, "level": "ok"},
        {
            "customer_id": INITECH,
            "day": today - timedelta(days=9),
            "score": 5.0,
            "scale": 5,
            "level": "ok",
        },
    ]
    with store.transaction() as tx:
        repo.put_satisfaction(tx, rows)
    with store.read() as conn:
        assert repo.latest_scores(conn, today) == {ACME: 3.5, INITECH: 5.0}
