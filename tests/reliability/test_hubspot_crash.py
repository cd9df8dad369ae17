"""Crash matrix of a HubSpot run (SPEC section 7; issue 16): `jira-crm-sync run` with
``[crm] kind = "hubspot"`` and ``[report] upload = true`` is SIGKILLed from inside the
HubSpot sandbox portal at the points only the HubSpot push and pull have, on a SQLite file
and on PostgreSQL (skipped without JIRA_CRM_SYNC_TEST_POSTGRES_URL); the rerun must
converge with nothing lost or doubled.

The Jira-side points (and the store's own) are those of test_crash_matrix.py, which the
CRM does not change; the points here are the portal's:

- mid-pull, after a search page: the second companies page served and not received (the
  first page's records may be stored, the cursor must not have moved past the lost one);
- after the batch upsert was applied and before the outbox marked it: the rerun upserts
  the same records again by their unique property (no second record) and must still
  associate each to its company (the first run died before associating them);
- mid-note upload: a file uploaded and its note not posted, then (on the rerun) a note
  posted and not recorded: the next run finds that note (no second one) and posts the
  missing ones.

"Converged": the portal and Jira hold what uninterrupted runs on an identical fresh
sandbox hold (each report once, associated to its company, one note per company; labels
and comments), the outbox holds nothing pending or in flight, and one more run writes
nothing. The uninterrupted runs are the CLI in this process; only the killed ones are
children.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.store.locks import pg_lock_holders
from sync.store.schema import outbox
from tests.reliability.hubspot_env import (
    ASSOCIATE,
    NOTE,
    SEARCH,
    UPLOAD,
    UPLOAD_REPORTS,
    UPSERT,
    HubEnv,
    HubKillPoint,
    PortalState,
    fresh,
    hub_calls,
    hub_kill_switch,
    portal_state,
)
from tests.sync.e2e import ANCHOR, FIRST_SIGHT, duplicate_comments, make_sandbox

#: A note's create call (the other ``POST /crm/v3/objects/{type}`` calls are not notes).
NOTE_BODY = b"hs_note_body"

#: Each case: the kills of successive runs of a first sync, then one run that finishes.
CASES: tuple[tuple[HubKillPoint, ...], ...] = (
    (HubKillPoint("mid pull: the companies page served", "hubspot", 1, SEARCH, when="after"),),
    (HubKillPoint("report upsert applied, not recorded", "hubspot", 1, UPSERT, when="after"),),
    (
        HubKillPoint(
            "third file uploaded, its note not posted", "hubspot", 3, UPLOAD, when="after"
        ),
        HubKillPoint(
            "a note posted, not recorded", "hubspot", 2, NOTE, when="after", needle=NOTE_BODY
        ),
    ),
)
PARAMS = [
    pytest.param(
        backend,
        case,
        marks=[pytest.mark.postgres] if backend == "postgresql" else [],
        id=f"{backend}-{', then '.join(str(k) for k in case)}",
    )
    for backend in ("sqlite", "postgresql")
    for case in CASES
]


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class Reference:
    state: PortalState
    calls: dict[str, int]
    day: str


@pytest.fixture(scope="module")
def sites(
    tmp_path_factory: pytest.TempPathFactory, tls: Tls
) -> Iterator[tuple[Sandbox, HubSpotSandbox]]:
    """One served world for the reference and every case: over 100 companies and
    tickets (two search pages each), reports, notes, labels and flag comments."""
    box = make_sandbox(60, 30, seed=2, anchor=ANCHOR)
    hub = HubSpotSandbox(box.world)
    directory = tmp_path_factory.mktemp("hubspot-matrix")
    box.serve(directory, tls=tls)
    hub.serve(directory, tls=tls)
    try:
        yield box, hub
    finally:
        hub.stop()
        box.stop()


def _env(sites: tuple[Sandbox, HubSpotSandbox], directory: Path, store_url: str) -> HubEnv:
    box, hub = sites
    fresh(box, hub)
    env = HubEnv(box, hub, directory, store_url, None)
    env.edit_config(*FIRST_SIGHT)
    env.edit_config(*UPLOAD_REPORTS)
    return env


def _run(env: HubEnv) -> dict[str, Any]:
    code, out, err = env.cli("run", "--json")
    assert code == 0, err + out
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, sites: tuple[Sandbox, HubSpotSandbox]
) -> Reference:
    directory = tmp_path_factory.mktemp("hubspot-reference")
    day = _today()
    env = _env(sites, directory, f"sqlite:///{directory / 'state.db'}")
    try:
        _run(env)
    finally:
        env.close()
    return Reference(portal_state(*sites), hub_calls(sites[1]), day)


def test_the_reference_run_reaches_every_kill_point(reference: Reference) -> None:
    made, state = reference.calls, reference.state
    assert made.get(SEARCH, 0) >= 2  # companies, then tickets
    assert made.get(UPSERT) == 1 and made.get(ASSOCIATE) == 1
    assert made.get(UPLOAD, 0) >= 3
    assert len(state.reports) >= 3 and set(state.report_copies.values()) == {1}
    assert all(len(companies) == 1 for companies in state.report_companies.values())
    assert len(state.notes) >= 3 and all(len(n) == 1 for n in state.notes.values())
    assert state.comments, "no flag comment: the Jira side is not compared"


def _unfinished(env: HubEnv) -> dict[str, int]:
    with env.store.read() as conn:
        rows = conn.execute(
            sa.select(outbox.c.state, sa.func.count())
            .where(outbox.c.state != "done")
            .group_by(outbox.c.state)
        ).all()
    return {str(state): int(n) for state, n in rows}


def _wait_unlocked(env: HubEnv, seconds: float = 15) -> None:
    """PostgreSQL: wait until the killed run's session, which held the store's lock, is
    ended by the server (tests/sync/e2e.py ``wait_unlocked``); SQLite's lock went with
    the process."""
    if env.store.dialect != "postgresql":
        return
    deadline = time.monotonic() + seconds
    while True:
        with env.store.read() as conn:
            if not pg_lock_holders(conn):
                return
        assert time.monotonic() < deadline, "the store's lock is still held"
        time.sleep(0.02)


@pytest.mark.parametrize(("store_url", "case"), PARAMS, indirect=["store_url"])
def test_a_hubspot_run_killed_at_each_point_converges_on_the_rerun(
    sites: tuple[Sandbox, HubSpotSandbox],
    store_url: str,
    tmp_path: Path,
    reference: Reference,
    case: tuple[HubKillPoint, ...],
) -> None:
    box, hub = sites
    env = _env(sites, tmp_path, store_url)
    switch = hub_kill_switch(box, hub)
    switch.install()
    try:
        for kill in case:
            switch.arm(kill)
            code, _out, err = switch.run(env, "run")
            assert switch.fired, f"the run ended (exit {code}) before {kill}: {err}"
            assert code == -9
            switch.arm(None)
            _wait_unlocked(env)
        rerun = _run(env)
        assert rerun["status"] == "ok", rerun
        if _today() != reference.day:
            pytest.skip("the runs crossed UTC midnight; the reference is of the day before")
        state = portal_state(box, hub)
        assert state.differences(reference.state) == []
        assert duplicate_comments(box) == {}
        assert _unfinished(env) == {}
        again = _run(env)
        assert again["written"] == {}, again
        assert portal_state(box, hub).differences(reference.state) == []
    finally:
        switch.uninstall()
        env.close()
