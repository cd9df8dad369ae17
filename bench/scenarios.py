"""The scenarios, each a function of a :class:`~bench.harness.BenchWorld` run in order:
a full first sync, the cycle that reads back our own writes, a cycle with no change, 1%
of issues and accounts changed, a deletes-only cycle, the report, and reconcile.

Simulated time moves ten minutes between cycles (an hour before the deletes, so the
hourly key scan is due), so no scenario waits on the Jira pull's overlap window.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable, Collection
from typing import Any

from bench.harness import BenchWorld, change_jira_1pct
from bench.model import scenario_result
from connectors.sandbox.schema import SF_ACCOUNT_CSAT_FIELD

Scenario = Callable[[BenchWorld], dict[str, Any]]


def _result(name: str, what: str, world: BenchWorld, ran: dict[str, Any]) -> dict[str, Any]:
    """One scenario's JSON: figures, calls against the minimum, targets missed."""
    return scenario_result(name, what, world.latency_ms, ran, judged_as=name)


def full_first_sync(world: BenchWorld) -> dict[str, Any]:
    """Empty state store: read everything, write every report and label."""
    ran = world.cycle()
    return _result("full_first_sync", "empty state store: read all, write all", world, ran)


def settle(world: BenchWorld, name: str = "settle") -> dict[str, Any]:
    """Ten minutes on: the cycle that reads back the issues our own writes touched."""
    world.clock.advance(minutes=10)
    ran = world.cycle()
    return _result(name, "10 min later: reads back the issues our writes touched", world, ran)


def no_change(world: BenchWorld) -> dict[str, Any]:
    """Ten minutes on, nothing changed on either side."""
    world.clock.advance(minutes=10)
    ran = world.cycle()
    return _result("no_change", "nothing changed on either side", world, ran)


def changed_1pct(world: BenchWorld, seed: int = 7) -> dict[str, Any]:
    """1% of issues (status or summary) and 1% of accounts (CSAT) changed by people."""
    rng = random.Random(seed)
    box = world.box
    changed = change_jira_1pct(box, rng)
    with box.salesforce_app.lock:
        accounts = sorted(str(a["Id"]) for a in box.salesforce.records("Account"))
        for account in rng.sample(accounts, max(1, len(accounts) // 100)):
            box.salesforce.update_record(
                "Account", account, **{SF_ACCOUNT_CSAT_FIELD: round(rng.uniform(1, 5), 1)}
            )
    world.clock.advance(minutes=10)
    ran = world.cycle()
    what = f"{changed} issues and {max(1, len(accounts) // 100)} accounts changed"
    return _result("changed_1pct", what, world, ran)


def deletes_only(world: BenchWorld, seed: int = 11) -> dict[str, Any]:
    """0.1% of issues (not epics) and of accounts deleted; an hour on, so the key scan
    that finds Jira deletes is due."""
    rng = random.Random(seed)
    box = world.box
    with box.jira_app.lock:
        keys = sorted(k for k, i in box.jira.issues.items() if i.issue_type != "Epic")
        gone = rng.sample(keys, max(1, len(keys) // 1000))
        for key in gone:
            box.jira.delete_issue(key)
    with box.salesforce_app.lock:
        accounts = sorted(str(a["Id"]) for a in box.salesforce.records("Account"))
        dropped = rng.sample(accounts, max(1, len(accounts) // 1000))
        for account in dropped:
            box.salesforce.delete_record("Account", account)
    world.clock.advance(minutes=61)
    ran = world.cycle(key_scan=True)
    what = f"{len(gone)} issues and {len(dropped)} accounts deleted; key scan due"
    return _result("deletes_only", what, world, ran)


def reconcile(world: BenchWorld) -> dict[str, Any]:
    """``reconcile`` without ``--apply`` (sync/reconcile/): both sides read in full and
    compared; when that package is absent, the result says so."""
    if importlib.util.find_spec("sync.reconcile") is None:
        return {
            "scenario": "reconcile",
            "missing": "sync/reconcile/ does not exist: no reconcile to measure",
            "targets_missed": [],
        }
    world.clock.advance(minutes=10)
    ran = world.cycle(reconcile=True)
    return _result("reconcile", "both sides read in full and compared; no --apply", world, ran)


def report(world: BenchWorld) -> dict[str, Any]:
    """``report --format html -o FILE`` of every linked customer, from the store alone (no
    call): its time and memory."""
    ran = world.cycle(report=True)
    what = "the HTML report of every linked customer, from the store; no call"
    return _result("report", what, world, ran)


#: Reconcile streams (its memory stays flat as the scope grows), so it is measured at every
#: size by default; ``--reconcile-up-to`` leaves it out of the larger worlds.
RECONCILE_UP_TO = 100_000

#: Every scenario, in the order they run; the first sync always runs (the others start
#: from the store it leaves), ``--only`` picks among the rest.
SCENARIOS = (
    "full_first_sync",
    "settle_after_full",
    "no_change",
    "changed_1pct",
    "settle_after_changes",
    "deletes_only",
    "report",
    "reconcile",
)


def run_all(
    world: BenchWorld,
    reconcile_up_to: int = RECONCILE_UP_TO,
    only: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Every scenario (``only``: the first sync and those named), in order, on one world
    (reconcile up to ``reconcile_up_to`` issues)."""

    def wanted(name: str) -> bool:
        return only is None or name in only

    results = [full_first_sync(world)]
    if wanted("settle_after_full"):
        results.append(settle(world, "settle_after_full"))
    if wanted("no_change"):
        results.append(no_change(world))
    if wanted("changed_1pct"):
        results.append(changed_1pct(world))
    if wanted("settle_after_changes"):
        results.append(settle(world, "settle_after_changes"))
    if wanted("deletes_only"):
        results.append(deletes_only(world))
    if wanted("report"):
        results.append(report(world))
    if not wanted("reconcile"):
        return results
    if world.issues <= reconcile_up_to:
        results.append(reconcile(world))
    else:
        results.append(
            {
                "scenario": "reconcile",
                "skipped": f"more than {reconcile_up_to} issues (--reconcile-up-to to include)",
                "targets_missed": [],
            }
        )
    return results
