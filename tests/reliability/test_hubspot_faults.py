"""Faults on the HubSpot side of a whole cycle (issue 16): the engine of `run` with
``[crm] kind = "hubspot"``, the Jira sandbox and the HubSpot sandbox portal both
in-process (test_hubspot_crash.py runs the real CLI over HTTPS), the portal's faults set
through the sandbox's fault injector, rejections and limits.

The connector's sleeps are recorded, not slept (they move the clock the connector and the
portal share), so Retry-After and backoff are checked by the waits asked for, without
waiting. Every case ends where a clean cycle on an identical fresh world ends (the same
reports, associations and labels, nothing twice), through the same cycle or the next ones:

- a burst 429 with Retry-After on a search and on the batch upsert: honoured, and the
  cycle finishes;
- the portal's daily limit spent mid-pull and mid-push: the cycle stops with the budget's
  reason (side, limit, writes left queued) and no failure; the next cycle, once HubSpot
  reset the count, resumes and converges;
- 5xx, gateway timeouts and dropped connections mid-search and mid-batch: retried; past
  the attempts the cycle fails in its stage, moves no cursor, and the next converges;
- a 207 answer refusing one report: that record is parked with HubSpot's reason, the rest
  are written, and it is sent again once the portal accepts it;
- malformed answers: a company whose score is not a number is set aside with its reason
  (the rest synced) and read again once mended; an answer that is not JSON, or a search
  page without its results, fails the pull with one message naming HubSpot, not a crash.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.hubspot import HubSpotConnector
from connectors.jira import JiraConnector
from connectors.jira.client import build_client as build_jira_client
from connectors.jira.settings import jira_meter
from connectors.retry import RetryPolicy
from connectors.sandbox.faults import Fault
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot.models import Rejection
from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID
from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.stack import Sandbox
from sync.config import load_config
from sync.cycle.engine import CycleResult, Engine
from sync.exitcodes import ExitCode
from sync.remote import Remotes
from sync.store import open_store, repo
from sync.store.schema import outbox
from tests.reliability.helpers import cursor_values
from tests.reliability.hubspot_env import HubEnv, PortalState, fresh, portal_state
from tests.sync.e2e import ANCHOR, make_sandbox


@dataclass
class Sleeps:
    """The connector's sleeps, recorded and not slept: they move the clock the connector
    and the portal share (real time plus every wait asked for)."""

    asked: list[float] = field(default_factory=list)
    ahead: float = 0.0

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.ahead += seconds

    def clock(self) -> float:
        return time.time() + self.ahead


@dataclass
class Sites:
    box: Sandbox
    hub: HubSpotSandbox
    env: HubEnv
    sleeps: Sleeps
    fired_before: int = 0

    def cycle(self, attempts: int = 3) -> CycleResult:
        """One cycle of the engine, as `run` makes it, on fresh connectors."""
        config = load_config(self.env.config_path)
        jira_settings = config.jira_settings()
        meter = jira_meter()
        jira = JiraConnector(build_jira_client(jira_settings, meter), jira_settings)
        crm = HubSpotConnector(
            config.hubspot_settings(),
            transport=self.hub.in_process(),
            retry=RetryPolicy(attempts=attempts),
            sleep=self.sleeps,
            clock=self.sleeps.clock,
            wall=self.sleeps.clock,
        )
        try:
            return Engine(config, self.env.store, Remotes(jira, crm, meter)).run()
        finally:
            crm.close()

    def fault(self, **spec: Any) -> None:
        self.hub.app.faults.add(Fault.from_json(spec))

    @property
    def fired(self) -> int:
        """Faults fired since the sites were set up."""
        return self.hub.app.faults.fired - self.fired_before


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Sandbox, HubSpotSandbox]]:
    """Jira mounted in-process (``responses``), the portal answered in-process (httpx)."""
    box = make_sandbox(40, 12, seed=2, anchor=ANCHOR)
    hub = HubSpotSandbox(box.world)
    hub.in_process()  # the config points at the in-process portal
    with box.in_process() as endpoints:
        box.endpoints = endpoints
        yield box, hub


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite state store, copied for each test (migrating one costs
    more than a cycle here)."""
    path = tmp_path_factory.mktemp("hubspot-faults-store") / "state.db"
    open_store(f"sqlite:///{path}").close()
    return path


def _store_url(migrated: Path, directory: Path) -> str:
    shutil.copyfile(migrated, directory / "state.db")
    return f"sqlite:///{directory / 'state.db'}"


@pytest.fixture
def sites(
    served: tuple[Sandbox, HubSpotSandbox], migrated: Path, tmp_path: Path
) -> Iterator[Sites]:
    box, hub = served
    fresh(box, hub)
    sleeps = Sleeps()
    hub.app.__dict__.pop("handle", None)  # a test's wrapper, gone
    hub.backend.clock = sleeps.clock
    hub.app.sleep = sleeps  # the "timeout" fault's wait
    env = HubEnv(box, hub, tmp_path, _store_url(migrated, tmp_path), None)
    try:
        yield Sites(box, hub, env, sleeps, hub.app.faults.fired)
    finally:
        env.close()


@pytest.fixture(scope="module")
def clean(
    served: tuple[Sandbox, HubSpotSandbox],
    migrated: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """The portal and Jira after one clean cycle on the fresh world, and its day."""
    box, hub = served
    fresh(box, hub)
    directory = tmp_path_factory.mktemp("hubspot-clean")
    env = HubEnv(box, hub, directory, _store_url(migrated, directory), None)
    sites = Sites(box, hub, env, Sleeps())
    hub.backend.clock = sites.sleeps.clock
    try:
        result = sites.cycle()
    finally:
        env.close()
    assert result.exit_code == ExitCode.OK, result.message
    state = portal_state(box, hub)
    assert len(state.reports) >= 2 and state.labels
    return state, datetime.now(UTC).date()


def _converged(sites: Sites, clean: tuple[PortalState, Any]) -> None:
    """The portal and Jira hold what a clean cycle leaves, and one more cycle writes
    nothing."""
    state, day = clean
    if datetime.now(UTC).date() != day:
        pytest.skip("the runs crossed UTC midnight")
    assert portal_state(sites.box, sites.hub).differences(state) == []
    again = sites.cycle()
    assert again.exit_code == ExitCode.OK and again.written == {}, again.as_dict()


def _outbox(sites: Sites) -> dict[str, list[tuple[str, str | None]]]:
    """CRM outbox rows by state: (record key, last error)."""
    with sites.env.store.read() as conn:
        rows = conn.execute(
            sa.select(outbox.c.state, outbox.c.record_key, outbox.c.last_error).where(
                outbox.c.target == "crm"
            )
        ).all()
    found: dict[str, list[tuple[str, str | None]]] = {}
    for state, key, error in rows:
        found.setdefault(str(state), []).append((str(key), error))
    return found


def _answers(hub: HubSpotSandbox) -> list[SandboxResponse]:
    """Every answer the portal gives from now on (the sites' fixture resets ``handle``)."""
    seen: list[SandboxResponse] = []
    original = hub.app.handle

    def handle(request: SandboxRequest) -> SandboxResponse:
        answer = original(request)
        seen.append(answer)
        return answer

    hub.app.handle = handle  # type: ignore[method-assign]
    return seen


# --- rate limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/search", "/batch/upsert"])
def test_a_burst_429_is_waited_out_as_retry_after_says(
    sites: Sites, clean: tuple[PortalState, Any], endpoint: str
) -> None:
    sites.fault(kind="429", count=2, retry_after=7, endpoint=endpoint)
    seen = _answers(sites.hub)
    result = sites.cycle()
    refused = [a for a in seen if a.status == 429]
    assert len(refused) == 2 and all(a.headers["Retry-After"] == "7" for a in refused)
    # The injected 429 is HubSpot's burst answer, not a daily one.
    assert all(json.loads(a.body)["policyName"] == "TEN_SECONDLY_ROLLING" for a in refused)
    assert result.exit_code == ExitCode.OK, result.message
    assert sites.sleeps.asked.count(7.0) == 2
    assert sites.fired == 2
    _converged(sites, clean)


@contextmanager
def others_spend_the_day_at(hub: HubSpotSandbox, endpoint: str, nth: int) -> Iterator[None]:
    """The portal's other apps spend its daily limit just before our ``nth`` call whose
    path holds ``endpoint``: from that call on, the portal answers 429 DAILY."""
    app, original = hub.app, hub.app.handle
    seen = 0

    def handle(request: SandboxRequest) -> SandboxResponse:
        nonlocal seen
        if endpoint in request.path:
            seen += 1
            if seen == nth:
                hub.backend.daily_used = hub.backend.daily_limit
        return original(request)

    app.handle = handle  # type: ignore[method-assign]
    try:
        yield
    finally:
        app.handle = original  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("endpoint", "nth", "stage"),
    [("/search", 2, "pull"), ("/batch/upsert", 1, "push")],
    ids=["mid-pull", "mid-push"],
)
def test_a_spent_daily_limit_stops_the_cycle_and_the_next_day_resumes(
    sites: Sites, clean: tuple[PortalState, Any], endpoint: str, nth: int, stage: str
) -> None:
    backend = sites.hub.backend
    with others_spend_the_day_at(sites.hub, endpoint, nth):
        seen = _answers(sites.hub)
        stopped = sites.cycle()
    assert stopped.status == "budget", stopped.as_dict()
    assert stopped.failed == [] and stopped.failed_stage is None
    budget = stopped.budget
    assert budget["stopped"] is True and budget["side"] == "hubspot", budget
    assert budget["limit"] == "remote" and stage in budget["stage"], budget
    assert "daily API limit" in stopped.message, stopped.message
    if stage == "push":
        assert budget["queued_writes"] >= 1, budget
    assert portal_state(sites.box, sites.hub).reports == {}  # stopped before the first write
    # The call HubSpot refused was the last one sent: not retried, nothing after it.
    refused = [n for n, a in enumerate(seen) if a.status == 429]
    assert refused == [len(seen) - 1], [a.status for a in seen]
    assert json.loads(seen[-1].body)["policyName"] == "DAILY"

    backend.daily_used = 0  # HubSpot resets the count at midnight in the portal's zone
    resumed = sites.cycle()
    assert resumed.exit_code == ExitCode.OK, resumed.message
    _converged(sites, clean)


# --- server errors and timeouts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "endpoint"),
    [
        ("503", "/search"),
        ("timeout", "/search"),
        ("timeout", "/batch/upsert"),
        ("drop_after", "/batch/upsert"),  # applied, the answer lost: sent again, not doubled
        ("drop", "/associate"),
    ],
)
def test_server_errors_and_timeouts_are_retried(
    sites: Sites, clean: tuple[PortalState, Any], kind: str, endpoint: str
) -> None:
    sites.fault(kind=kind, count=2, endpoint=endpoint)
    result = sites.cycle()
    assert result.exit_code == ExitCode.OK, result.message
    assert sites.fired == 2
    assert len(sites.sleeps.asked) >= 2  # backed off between the attempts
    _converged(sites, clean)


@pytest.mark.parametrize("endpoint", ["/search", "/batch/upsert"])
def test_past_the_attempts_the_cycle_fails_and_the_next_converges(
    sites: Sites, clean: tuple[PortalState, Any], endpoint: str
) -> None:
    sites.fault(kind="503", count=3, endpoint=endpoint)
    failed = sites.cycle()
    assert failed.status == "failed" and failed.exit_code != ExitCode.OK, failed.as_dict()
    assert "HubSpot" in failed.message or "hubspot" in failed.message, failed.message
    assert "3 attempts" in failed.message, failed.message
    if endpoint == "/search":
        assert failed.failed_stage == "pull"
        assert cursor_values(sites.env.store, "hubspot") == {}
    else:
        assert failed.failed_stage == "push"
        left = _outbox(sites)  # in flight: the next push sends them again
        assert "done" not in left and left.get("pending", []) + left.get("inflight", []), left
    result = sites.cycle()
    assert result.exit_code == ExitCode.OK, result.message
    _converged(sites, clean)


# --- per-record errors -----------------------------------------------------------------------


def test_a_record_refused_in_a_207_is_parked_with_its_reason_and_the_rest_go_on(
    sites: Sites, clean: tuple[PortalState, Any]
) -> None:
    state, _day = clean
    refused = min(state.reports)
    backend = sites.hub.backend
    backend.rejections.append(
        Rejection(
            CUSTOM_TYPE_ID,
            lambda values: values.get("jira_sync_key") == refused,
            "Property values were not valid: health is locked by a workflow",
        )
    )
    result = sites.cycle()
    assert result.exit_code == ExitCode.PARKED, result.as_dict()
    assert [f["record"] for f in result.failed] == [refused], result.failed
    assert "locked by a workflow" in result.failed[0]["error"]
    written = portal_state(sites.box, sites.hub)
    assert set(written.reports) == set(state.reports) - {refused}
    parked = _outbox(sites)
    assert [k for k, _e in parked.get("parked", [])] == [refused], parked
    assert "locked by a workflow" in str(parked["parked"][0][1])

    backend.rejections.clear()
    # A parked write is sent again when due (its backoff), or when its report changes.
    with sites.env.store.transaction() as tx:
        assert repo.retry_parked(tx) == 1
    result = sites.cycle()
    assert result.exit_code == ExitCode.OK, result.message
    _converged(sites, clean)


# --- malformed answers -----------------------------------------------------------------------


def test_a_company_with_a_score_that_is_not_a_number_is_set_aside(
    sites: Sites, clean: tuple[PortalState, Any]
) -> None:
    sites.fault(
        kind="rewrite",
        count=1,
        endpoint="/search",
        set={"results.0.properties.csat_score": "n/a"},
    )
    result = sites.cycle()
    assert result.exit_code == ExitCode.PARKED, result.as_dict()
    assert result.quarantined_count == 1, result.quarantined
    assert "csat_score" in str(result.quarantined), result.quarantined
    # Read again next cycle: the record is set aside, its cursor does not skip it.
    result = sites.cycle()
    assert result.released == 1, result.as_dict()
    _converged(sites, clean)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"kind": "html", "status": 200}, "not JSON"),
        ({"kind": "truncated"}, "not JSON"),
        ({"kind": "rewrite", "set": {"results": {"id": 1}}}, "without a results list"),
    ],
    ids=["html-200", "truncated", "results-not-a-list"],
)
def test_a_malformed_search_answer_fails_the_pull_with_one_message(
    sites: Sites, clean: tuple[PortalState, Any], fault: dict[str, Any], says: str
) -> None:
    sites.fault(count=1, endpoint="/search", **fault)
    failed = sites.cycle()
    assert failed.status == "failed" and failed.failed_stage == "pull", failed.as_dict()
    assert says in failed.message and "HubSpot" in failed.message, failed.message
    assert "\n" not in failed.message and "Traceback" not in failed.message
    assert cursor_values(sites.env.store, "hubspot") == {}
    result = sites.cycle()
    assert result.exit_code == ExitCode.OK, result.message
    _converged(sites, clean)
