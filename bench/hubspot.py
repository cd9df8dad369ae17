"""The HubSpot scenarios: the same Jira world with ``[crm] kind = "hubspot"``, its CRM a
HubSpot sandbox portal of the same world (companies, tickets, the custom report object),
measured like the Salesforce ones (each cycle in its own child process over HTTPS, or
in-process) against the fewest calls HubSpot's API allows for the same work
(:class:`bench.model.HubSpotWork`: search pages of 100, batch writes of 100).

Scenarios, in order on one world: **hubspot_full_first_sync** (empty state store),
**hubspot_settle** (ten minutes on: the cycle that reads back the issues our writes
touched), **hubspot_no_change**, **hubspot_changed_1pct** (1% of issues and of companies
changed: status or summary, CSAT).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cycle import measure_cycle, run_cycle
from bench.harness import BenchWorld, Snapshot, Transport, change_jira_1pct, jira_changes
from bench.model import HubSpotWork, scenario_result
from connectors.hubspot import HubSpotConnector
from connectors.sandbox.config_file import write_hubspot_config
from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID, STANDARD_TYPES
from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.server import make_tls
from sync.config import load_config
from sync.store import open_store

COMPANIES = STANDARD_TYPES["companies"]
TICKETS = STANDARD_TYPES["tickets"]
#: Objects the product searches (their changes are what a cycle must read).
SEARCHED = {"companies": COMPANIES, "tickets": TICKETS}
#: Report properties that change on every write whatever the content.
VOLATILE = frozenset({"last_synced", "hs_lastmodifieddate", "hs_createdate", "hs_object_id"})
#: Every HubSpot scenario, in the order they run.
HUBSPOT_SCENARIOS = (
    "hubspot_full_first_sync",
    "hubspot_settle",
    "hubspot_no_change",
    "hubspot_changed_1pct",
)


@dataclass(frozen=True)
class PortalSnapshot:
    """What the portal holds, as far as the cost model needs it."""

    stamps: dict[str, dict[str, int]]  # object -> {id: updated ms}
    reports: dict[str, tuple[Any, ...]]  # sync key -> content
    owners: int


class HubSpotBenchWorld(BenchWorld):
    """A :class:`BenchWorld` whose CRM is a HubSpot portal of the same world."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub = HubSpotSandbox(
            self.box.world,
            latency_ms=self.latency_ms,
            clock=lambda: self.clock().timestamp(),
            # Not measured here (the product's pacing by the headers is, in
            # tests/connectors): a daily limit that lets the 100,000 sync run.
            daily_limit=10_000_000,
        )
        self._portal_previous: PortalSnapshot | None = None

    def start(self) -> HubSpotBenchWorld:
        """Serve (or mount) Jira and the portal, and write a HubSpot config for them."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.transport == "https":
            tls = make_tls(self.directory / "tls")
            self.box.serve(self.directory / "tls", tls=tls)
            self._stack.callback(self.box.stop)
            self.hub.serve(self.directory / "tls", tls=tls)
            self._stack.callback(self.hub.stop)
        else:
            self.box.endpoints = self._stack.enter_context(self.box.in_process())
            self.hub.in_process()
        write_hubspot_config(self.box, self.hub, self.config_path, state_url=self.state_url)
        text = self.config_path.read_text(encoding="utf-8")
        # The budget is not what is measured here (as in BenchWorld.start).
        for key in ("jira_calls_per_cycle", "crm_calls_per_cycle"):
            text = text.replace(f"{key} = 5000", f"{key} = 10000000")
        for key in ("jira_calls_per_day", "crm_calls_per_day"):
            text = text.replace(f"{key} = 100000", f"{key} = 10000000")
        self.config_path.write_text(text, encoding="utf-8")
        return self

    def _run(self, full: bool, reconcile: bool = False, report: bool = False) -> dict[str, Any]:
        if self.transport != "inprocess" or report:
            return super()._run(full, reconcile, report)
        config = load_config(self.config_path)
        store = open_store(config.state.url)
        crm = HubSpotConnector(config.hubspot_settings(), transport=self.hub.in_process())
        try:
            return measure_cycle(lambda: run_cycle(config, store, self.clock, full, crm=crm))
        finally:
            crm.close()
            store.close()

    def portal_snapshot(self) -> PortalSnapshot:
        backend = self.hub.backend
        with self.hub.app.lock:
            stamps = {
                name: {r.id: r.updated_ms for r in backend.records[type_id].values()}
                for name, type_id in SEARCHED.items()
            }
            reports = {
                str(r.properties.get("jira_sync_key")): tuple(
                    sorted((k, str(v)) for k, v in r.properties.items() if k not in VOLATILE)
                )
                for r in backend.records[CUSTOM_TYPE_ID].values()
                if r.archived_ms is None
            }
            owners = len(backend.owners)
        return PortalSnapshot(stamps, reports, owners)

    def _stats(self) -> tuple[dict[str, dict[str, int]], int, int]:
        by_endpoint: dict[str, dict[str, int]] = {}
        reads = writes = 0
        for side, app in (("jira", self.box.jira_app), ("hubspot", self.hub.app)):
            snap = app.stats.snapshot()
            by_endpoint[side] = dict(snap["by_endpoint"])
            reads += int(snap["reads"])
            writes += int(snap["writes"])
        return by_endpoint, reads, writes

    def _hub_work(
        self, jira: tuple[Snapshot, Snapshot], portal: tuple[PortalSnapshot, PortalSnapshot]
    ) -> HubSpotWork:
        before, after = jira
        p_before, p_after = portal
        previous, p_previous = self._previous, self._portal_previous
        if previous is None or p_previous is None:
            jira_read = len(before.jira_updated)
            crm_read = {name: len(stamps) for name, stamps in p_before.stamps.items()}
        else:
            jira_read = sum(
                1 for k, u in before.jira_updated.items() if previous.jira_updated.get(k) != u
            )
            crm_read = {
                name: sum(1 for i, s in stamps.items() if p_previous.stamps[name].get(i) != s)
                for name, stamps in p_before.stamps.items()
            }
        jira_written, jira_groups = jira_changes(before, after)
        written = sum(1 for k, r in p_after.reports.items() if p_before.reports.get(k) != r)
        created = sum(1 for k in p_after.reports if k not in p_before.reports)
        return HubSpotWork(
            jira_read=jira_read,
            crm_read=crm_read,
            first=previous is None,
            jira_written=jira_written,
            crm_written=written,
            crm_created=created,
            owners=p_before.owners,
            jira_groups=jira_groups,
            bulk=self.box.jira.cloud,
        )

    def hub_cycle(self) -> dict[str, Any]:
        """Run and measure one cycle against the portal."""
        before, p_before = self.snapshot(), self.portal_snapshot()
        self.box.jira_app.stats.reset()
        self.hub.app.stats.reset()
        figures = self._run(False)
        if figures.get("exit_code") != 0:
            raise RuntimeError(f"the cycle failed: {figures.get('message') or figures}")
        by_endpoint, reads, writes = self._stats()
        after, p_after = self.snapshot(), self.portal_snapshot()
        work = self._hub_work((before, after), (p_before, p_after))
        self._previous, self._portal_previous = before, p_before
        self.cycles += 1
        return {
            "figures": figures,
            "calls": by_endpoint,
            "reads": reads,
            "writes": writes,
            "work": work,
        }


@contextmanager
def hubspot_world(
    issues: int,
    accounts: int,
    directory: Path,
    *,
    transport: Transport = "https",
    latency_ms: int = 0,
    seed: int = 1,
) -> Iterator[HubSpotBenchWorld]:
    """A started :class:`HubSpotBenchWorld` for the ``with`` body."""
    world = HubSpotBenchWorld(
        issues, accounts, directory, transport=transport, latency_ms=latency_ms, seed=seed
    )
    try:
        yield world.start()
    finally:
        world.close()


def _result(name: str, what: str, world: HubSpotBenchWorld, ran: dict[str, Any]) -> dict[str, Any]:
    return scenario_result(
        name, what, world.latency_ms, ran, judged_as=name.removeprefix("hubspot_"), crm="hubspot"
    )


def change_1pct(world: HubSpotBenchWorld, seed: int = 7) -> str:
    """1% of issues (status or summary) and 1% of companies (CSAT) changed by people."""
    rng = random.Random(seed)
    box, backend = world.box, world.hub.backend
    changed = change_jira_1pct(box, rng)
    with world.hub.app.lock:
        companies = sorted(backend.records[COMPANIES], key=int)
        picked = rng.sample(companies, max(1, len(companies) // 100))
        for company in picked:
            record = backend.records[COMPANIES][company]
            backend.write(COMPANIES, record, {"csat_score": f"{rng.uniform(1, 5):.1f}"})
    return f"{changed} issues and {len(picked)} companies changed"


def run_hubspot(world: HubSpotBenchWorld, only: Collection[str] | None = None) -> list[Any]:
    """The HubSpot scenarios (``only``: the first sync and those named), in order."""

    def wanted(name: str) -> bool:
        return only is None or name in only

    results = [
        _result(
            "hubspot_full_first_sync",
            "empty state store: read all, write all",
            world,
            world.hub_cycle(),
        )
    ]
    world.clock.advance(minutes=10)
    settled = world.hub_cycle()  # always: the no-change cycle must find nothing
    if wanted("hubspot_settle"):
        what = "10 min later: reads back the issues our writes touched"
        results.append(_result("hubspot_settle", what, world, settled))
    if wanted("hubspot_no_change"):
        world.clock.advance(minutes=10)
        ran = world.hub_cycle()
        results.append(_result("hubspot_no_change", "nothing changed on either side", world, ran))
    if wanted("hubspot_changed_1pct"):
        what = change_1pct(world)
        world.clock.advance(minutes=10)
        results.append(_result("hubspot_changed_1pct", what, world, world.hub_cycle()))
    return results
