"""Report records through Bulk API 2.0 jobs end to end (issue 17), the CLI in-process
against the sandbox over HTTPS with ``bulk_threshold = 1``: a record Salesforce refuses is
parked with its ``sf__Error``; a job that stops part-way leaves the rest to the next cycle,
which sends them and nothing twice; at or below the threshold collections are used."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.store.schema import crm_jobs, outbox
from tests.sync.e2e import (
    ANCHOR,
    UPSERT,
    SyncEnv,
    calls,
    cli_in_process,
    make_sandbox,
    reset_calls,
)

OBJECT = "Jira_Project_Status__c"
JOBS = "POST /services/data/v{version}/jobs/ingest"
BULK = ("bulk_threshold = 2000", "bulk_threshold = 1")


@pytest.fixture(scope="module")
def box(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = make_sandbox(60, 12, seed=6, anchor=ANCHOR)
    sandbox.serve(tmp_path_factory.mktemp("bulk-box"), tls=tls)
    yield sandbox
    sandbox.stop()


def _fresh(box: Sandbox) -> None:
    for app in (box.jira_app, box.salesforce_app):
        with app.lock:
            app.backend.reset()
    reset_calls(box)


@pytest.fixture
def env(box: Sandbox, tmp_path: Path) -> Iterator[SyncEnv]:
    _fresh(box)
    opened = SyncEnv(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls=None)
    yield opened
    opened.close()
    _fresh(box)


def _run(env: SyncEnv) -> dict[str, Any]:
    reset_calls(env.box)
    code, out, err = cli_in_process(env, "run", "--json")
    assert code in (0, 1), err
    result: dict[str, Any] = json.loads(out)
    return result


def _outbox(env: SyncEnv) -> dict[str, list[str | None]]:
    with env.store.read() as conn:
        rows = conn.execute(
            sa.select(outbox.c.state, outbox.c.last_error).where(outbox.c.target == "crm")
        ).all()
    found: dict[str, list[str | None]] = {}
    for state, error in rows:
        found.setdefault(str(state), []).append(error)
    return found


def test_a_refused_record_is_parked_with_its_sf_error(env: SyncEnv) -> None:
    env.edit_config(*BULK)
    env.box.salesforce.add_validation_rule(
        OBJECT, lambda r: str(r.get("Jira_Project_Key__c") or "").startswith("A"), "A is frozen"
    )
    result = _run(env)
    made = calls(env.box)
    assert made.count(f"salesforce {JOBS}") == 1
    assert made.count(f"salesforce {UPSERT}") == 0
    failed = [f for f in result["failed"] if f["side"] == "salesforce"]
    assert failed and all(
        "FIELD_CUSTOM_VALIDATION_EXCEPTION: A is frozen" in f["error"] for f in failed
    )
    states = _outbox(env)
    assert len(states["parked"]) == len(failed)
    assert all("A is frozen" in str(e) for e in states["parked"])
    assert len(env.box.salesforce.records(OBJECT)) == len(states["done"])
    with env.store.read() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(crm_jobs)) == 0


def test_a_job_stopped_part_way_leaves_the_rest_to_the_next_cycle(env: SyncEnv) -> None:
    env.edit_config(*BULK)
    env.box.salesforce.ingest_fail_after = 2
    first = _run(env)
    assert first["written"]["salesforce_records"] == 2
    states = _outbox(env)
    left = len(states.get("pending", []))
    assert left >= 1 and "parked" not in states
    second = _run(env)
    assert second["written"]["salesforce_records"] == left
    assert "pending" not in _outbox(env) and "inflight" not in _outbox(env)
    records = env.box.salesforce.records(OBJECT)
    keys = [r["Jira_Sync_Key__c"] for r in records]
    assert len(keys) == len(set(keys)) == 2 + left  # each record once
    assert _run(env)["written"] == {}


def test_at_or_below_the_threshold_collections_are_used(env: SyncEnv) -> None:
    result = _run(env)
    made = calls(env.box)
    assert result["written"]["salesforce_records"] >= 1
    assert made.count(f"salesforce {UPSERT}") >= 1
    assert made.count(f"salesforce {JOBS}") == 0


def test_near_the_org_daily_limit_the_cycle_stops_before_it(env: SyncEnv) -> None:
    """Sforce-Limit-Info shows the org within daily_reserve_percent (5%) of its limit: the
    run stops cleanly on the first call after that answer, saying why, nothing lost."""
    sf = env.box.salesforce
    with env.box.salesforce_app.lock:
        sf.daily_api_limit, sf.api_used = 1000, 955
    reset_calls(env.box)
    code, out, err = cli_in_process(env, "run", "--json")
    result = json.loads(out)
    assert code == 0 and result["budget"]["stopped"] is True, err
    assert result["budget"]["side"] == "salesforce" and result["budget"]["limit"] == "remote"
    assert "Sforce-Limit-Info shows 956 of the org's 1,000 daily calls used" in result["message"]
    assert "daily_reserve_percent = 5" in result["message"]
    assert calls(env.box).count("salesforce POST /services/data/v{version}/composite") == 0
