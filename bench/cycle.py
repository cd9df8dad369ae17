"""One sync cycle under measurement: ``python -m bench.cycle --config PATH [--full]
[--reconcile] [--clock-delta SECONDS]``.

Runs what ``jira-crm-sync run`` runs (the run lock, then :meth:`sync.cycle.engine.Engine.run`:
pull, merge, plan, record, push), or ``reconcile`` without ``--apply``, on the bench's
simulated clock, and prints one JSON object on stdout with its own wall time, CPU time,
peak RSS and the time spent in the merge step. It runs as its own process so that these
figures are the product's alone: the sandbox it talks to lives in the bench process.

:func:`measure_cycle` is the same measurement for the in-process transport, where the
sandbox shares the process and the RSS figure is the growth over the level before the
cycle (see :func:`rss_growth`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sync.cycle.derive
import sync.cycle.engine
from connectors.crm import CrmConnector
from connectors.jira import JiraConnector, build_client, jira_meter
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.auth import new_meter
from sync import collector
from sync.config import Config, load_config
from sync.cycle.engine import CycleOptions, CycleResult, Engine
from sync.cycle.ownership import ownership, worker_name
from sync.remote import Remotes, build_crm
from sync.store import Store, open_store


@dataclass
class MergeTimer:
    """Time spent in :func:`mappings.merge.merge` and :func:`~mappings.merge.plan` and the
    issues they covered, across every derive of a cycle."""

    merge_seconds: float = 0.0
    plan_seconds: float = 0.0
    derive_seconds: float = 0.0
    issues: int = 0
    calls: int = 0
    stages: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: seconds, issues and issues per second of the merge step."""
        rate = self.issues / self.merge_seconds if self.merge_seconds > 0 else None
        return {
            "merges": self.calls,
            "issues_merged": self.issues,
            "merge_seconds": round(self.merge_seconds, 4),
            "plan_seconds": round(self.plan_seconds, 4),
            "derive_seconds": round(self.derive_seconds, 4),
            "merge_issues_per_second": round(rate) if rate else None,
        }


@contextmanager
def timed_merge() -> Iterator[MergeTimer]:
    """Wrap the merge and plan functions ``sync.cycle.derive`` calls, and the batches it
    derives (a dry run's as a real run's), with timers for the ``with`` body (restored
    after)."""
    timer = MergeTimer()
    real_merge, real_plan = sync.cycle.derive.merge, sync.cycle.derive.plan

    def merge(issues: Any, *args: Any, **kwargs: Any) -> Any:
        items = issues if isinstance(issues, list) else list(issues)
        start = time.perf_counter()
        try:
            return real_merge(items, *args, **kwargs)
        finally:
            timer.merge_seconds += time.perf_counter() - start
            timer.issues += len(items)
            timer.calls += 1

    def plan(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real_plan(*args, **kwargs)
        finally:
            timer.plan_seconds += time.perf_counter() - start

    real_batches = sync.cycle.derive.BatchedDerive.__iter__

    def batches(self: sync.cycle.derive.BatchedDerive) -> Iterator[Any]:
        """A cycle derives in batches: time producing each one, not recording it."""
        produced = real_batches(self)
        while True:
            start = time.perf_counter()
            try:
                batch = next(produced)
            except StopIteration:
                return
            finally:
                timer.derive_seconds += time.perf_counter() - start
            yield batch

    sync.cycle.derive.merge = merge
    sync.cycle.derive.plan = plan
    sync.cycle.derive.BatchedDerive.__iter__ = batches  # type: ignore[method-assign]
    try:
        yield timer
    finally:
        sync.cycle.derive.merge, sync.cycle.derive.plan = real_merge, real_plan
        sync.cycle.derive.BatchedDerive.__iter__ = real_batches  # type: ignore[method-assign]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_status_kb(name: str) -> int | None:
    """A ``kB`` figure of /proc/self/status (VmRSS, VmHWM), or None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` 5); False if not
    possible, in which case the peak is the process's lifetime peak."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def rss_growth() -> Callable[[], dict[str, float | None]]:
    """Start measuring; the returned function gives the RSS before, the peak since, and
    their difference, in MB."""
    reset = reset_peak_rss()
    before = _proc_status_kb("VmRSS")

    def done() -> dict[str, float | None]:
        peak = _proc_status_kb("VmHWM") if reset else None
        if peak is None or before is None:
            return {"rss_before_mb": None, "peak_rss_mb": None, "rss_growth_mb": None}
        return {
            "rss_before_mb": round(before / 1024, 1),
            "peak_rss_mb": round(peak / 1024, 1),
            "rss_growth_mb": round((peak - before) / 1024, 1),
        }

    return done


def measure_cycle(run: Callable[[], Any]) -> dict[str, Any]:
    """Run one cycle (or reconcile: any result with an exit code, status, message, written,
    failed and calls) and return its figures (in whatever process this is)."""
    rss = rss_growth()
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    with timed_merge() as timer:
        result = run()
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    return {
        "exit_code": int(result.exit_code),
        "status": result.status,
        "message": result.message,
        "pulled": getattr(result, "pulled", None) or getattr(result, "read", {}),
        "planned": getattr(result, "planned", {}),
        "written": result.written,
        "failed": len(result.failed),
        "product_calls": result.calls,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        **rss(),
        **timer.as_dict(),
    }


def shifted_clock(delta_seconds: float) -> Callable[[], datetime]:
    """Real time moved by ``delta_seconds``: the bench's simulated time, shared with the
    sandbox, so that "ten minutes later" costs no waiting."""
    delta = timedelta(seconds=delta_seconds)
    return lambda: datetime.now(UTC) + delta


def run_cycle(
    config: Config,
    store: Store,
    clock: Callable[[], datetime],
    full: bool = False,
    crm: CrmConnector | None = None,
) -> CycleResult:
    """What ``jira-crm-sync run`` does (:func:`sync.cycle.ownership.one_cycle`: what this
    worker owns, the run lock on SQLite, then one engine cycle), with ``clock`` given to
    the engine and the Jira connector (``one_cycle`` uses the real clock); ``crm``: the
    configured CRM's connector unless given (an in-process HubSpot portal's)."""
    settings = config.jira_settings()
    meter = jira_meter()
    jira = JiraConnector(build_client(settings, meter), settings, clock=clock)
    crm = crm if crm is not None else build_crm(config)
    remotes = Remotes(jira=jira, crm=crm, jira_meter=meter)
    owner = worker_name("bench")
    engine = Engine(config, store, remotes, clock=clock, worker=owner)
    try:
        with ownership(store, config, owner) as held:
            return engine.run(CycleOptions(full=full), held.work)
    finally:
        jira.close()


def run_reconcile(config: Config, store: Store, clock: Callable[[], datetime]) -> Any:
    """``jira-crm-sync reconcile`` (the comparison, without ``--apply``) on ``clock``."""
    from sync.reconcile import reconcile

    settings = config.jira_settings()
    meter = jira_meter()
    jira = JiraConnector(build_client(settings, meter), settings, clock=clock)
    crm = SalesforceConnector(config.salesforce_settings(), meter=new_meter())
    try:
        return reconcile(
            config, store, Remotes(jira=jira, crm=crm, jira_meter=meter), apply=False, now=clock()
        )
    finally:
        jira.close()


@dataclass
class ReportRun:
    """What ``report`` did, in the shape :func:`measure_cycle` reads."""

    pulled: dict[str, int]
    exit_code: int = 0
    status: str = "ok"
    message: str = ""
    written: dict[str, int] = field(default_factory=dict)
    failed: list[Any] = field(default_factory=list)
    calls: dict[str, Any] = field(default_factory=dict)


def run_report(config: Config, store: Store, clock: Callable[[], datetime]) -> ReportRun:
    """``jira-crm-sync report --format html -o FILE`` (every linked customer) as of
    ``clock``, into a temporary file; no remote is called."""
    from sync.report import report_parts

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        path = Path(tmp) / "report.html"
        with path.open("w", encoding="utf-8") as file:
            file.writelines(report_parts(store, config, fmt="html", now=clock()))
        size = path.stat().st_size
    return ReportRun(pulled={"html_bytes": size})


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: one cycle, one JSON object on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.cycle", description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--reconcile", action="store_true", help="reconcile instead of run")
    parser.add_argument("--report", action="store_true", help="report (html) instead of run")
    parser.add_argument("--clock-delta", type=float, default=0.0, help="simulated time shift (s)")
    args = parser.parse_args(argv)
    collector.tune()  # as jira-crm-sync's entry point does
    started = time.perf_counter()
    config = load_config(args.config)
    store = open_store(config.state.url)
    imported_rss = _proc_status_kb("VmRSS")
    try:
        clock = shifted_clock(args.clock_delta)
        if args.reconcile:
            figures = measure_cycle(lambda: run_reconcile(config, store, clock))
        elif args.report:
            figures = measure_cycle(lambda: run_report(config, store, clock))
        else:
            figures = measure_cycle(lambda: run_cycle(config, store, clock, args.full))
    finally:
        store.close()
    # The whole process, start-up and imports included, as a cron `run` would cost.
    figures["process_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    figures["baseline_rss_mb"] = round(imported_rss / 1024, 1) if imported_rss else None
    figures["process_seconds"] = round(time.perf_counter() - started, 3)
    json.dump(figures, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
