"""``python -m bench`` (``make bench``): the cost of a sync, measured (SPEC section 9).

    python -m bench [--sizes 1000,10000,100000] [--transport https|inprocess]
                    [--latency-ms N] [--json-out FILE] [--seed S]
                    [--reconcile-up-to ISSUES] [--only SCENARIO,...]
                    [--crm salesforce,hubspot]
    python -m bench --workers 1,2,4 [--connections 8] [--issues-per-connection N]
                    [--latency-ms N] [--postgres URL] [--json-out FILE]

For each size (issues; accounts are a fifth of that) it builds a sandbox world and runs
the scenarios of :mod:`bench.scenarios` (``--only reconcile``: the first sync, which
every other scenario starts from, and reconcile); then, on a world of the same size whose
CRM is a HubSpot portal, the scenarios of :mod:`bench.hubspot` (``--crm`` picks the
CRMs). One JSON document goes to stdout (and to
``--json-out``), a short table to stderr. The document's ``figures`` key says what each
figure means. ``--workers`` measures instead one round of shard jobs of a world of
several connections on that many `serve` workers (:mod:`bench.workers`).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import bench_world
from bench.hubspot import HUBSPOT_SCENARIOS, hubspot_world, run_hubspot
from bench.model import MERGE_MIN_RATE, RSS_LIMIT_MB
from bench.report import table
from bench.scenarios import RECONCILE_UP_TO, SCENARIOS, run_all

DEFAULT_SIZES = (1_000, 10_000, 100_000)
#: HubSpot scenarios run on worlds up to this size by default: with them at 100,000 issues
#: too, `make bench` would take well over its 10 minutes (--hubspot-up-to to include).
HUBSPOT_UP_TO = 10_000
#: The CRMs measured by default, each on its own world of the same size.
CRMS = ("salesforce", "hubspot")

FIGURES = {
    "total_actual": "API calls the sandbox answered during the cycle, both sides",
    "total_minimum": (
        "fewest calls the APIs allow for the same work: Jira search pages of 100 issues "
        "(5000 keys when listing keys for deletes), one Composite call for every object's "
        "first SOQL page then 2000 records a page, one Salesforce login, metadata "
        "(serverInfo, /myself, /field, one describe per object) only when not cached, one "
        "PUT per Jira issue whose comments change (its labels and field ride along), for the "
        "issues sharing one identical label/field change and no comment ceil(n/1000) Jira "
        "Cloud bulk edits with one progress read each (or a PUT each when fewer), one "
        "collection call per 200 CRM records whose content changes or, where fewer, one "
        "Salesforce Bulk API 2.0 job (create, upload, close, one status read, three result "
        "reads: 7 calls)"
    ),
    "total_minimum (hubspot_*)": (
        "HubSpot scenarios: one search page per 100 changed companies and tickets (at least "
        "one each), one associations read per 100 tickets read, the owners when companies "
        "are read, one batch upsert per 100 reports whose content changes and one "
        "association call per 100 new ones; schemas, properties and pipelines only when "
        "not cached; Jira as above"
    ),
    "ratio": "total_actual / total_minimum",
    "jira_emails_avoided": (
        "issues whose labels/flag field changed in a Jira Cloud bulk edit without "
        "notifications instead of a PUT of their own (each PUT e-mails the issue's watchers)"
    ),
    "by_bucket": "actual and minimum per kind of call",
    "by_endpoint": "calls per endpoint template, per side, as the sandbox counted them",
    "reads / writes": "calls that read / change remote data (the login counts as a read)",
    "work": "what the cycle had to do, counted from the sandbox before and after it",
    "wall_seconds": "the cycle's wall time (engine.run), in the process that ran it",
    "cpu_seconds": "user + system CPU of that process during the cycle",
    "peak_rss_mb": (
        "https: the child process's RSS high-water mark during the cycle, imports "
        "included (the sandbox is in another process). inprocess: the process's peak, "
        "sandbox included; see rss_growth_mb"
    ),
    "rss_growth_mb": "peak RSS during the cycle minus RSS just before it",
    "process_peak_rss_mb": "https only: ru_maxrss of the whole `python -m bench.cycle` run",
    "baseline_rss_mb": "https only: RSS after imports, before the cycle",
    "merge_issues_per_second": (
        "issues given to mappings.merge.merge divided by the time spent in it (the merge "
        "step: normalise, link, progress, flags); plan_seconds and derive_seconds "
        "(store reads + merge + plan) are beside it"
    ),
    "latency_bound_seconds": "with --latency-ms: total calls x latency, a floor for wall time",
    "wall_over_latency_bound": "wall_seconds / latency_bound_seconds",
    "targets_missed": "SPEC section 9 targets this scenario misses",
}

PROCESS_MODEL = (
    "transport https: the sandbox is served over HTTPS on loopback by the bench process "
    "and each cycle runs in its own child process (`python -m bench.cycle`, what "
    "`jira-crm-sync run` does), which reports its own wall, CPU, peak RSS and merge "
    "time. transport inprocess: the sandbox is mounted with `responses` and cycles run "
    "in the bench process. Simulated time (shared by sandbox and product) moves 10 "
    "minutes between cycles, 61 before the deletes so the hourly key scan is due."
)


def run_size(
    issues: int,
    transport: str,
    latency_ms: int,
    seed: int,
    root: Path,
    reconcile_up_to: int = RECONCILE_UP_TO,
    only: list[str] | None = None,
    crms: tuple[str, ...] = CRMS,
    hubspot_up_to: int = HUBSPOT_UP_TO,
) -> dict[str, Any]:
    """Every scenario on one world of ``issues`` issues, for each CRM of ``crms``."""
    accounts = max(1, issues // 5)
    started = time.perf_counter()
    scenarios: list[dict[str, Any]] = []
    built = 0.0
    if "salesforce" in crms:
        with bench_world(
            issues,
            accounts,
            root / f"size-{issues}",
            transport=transport,  # type: ignore[arg-type]
            latency_ms=latency_ms,
            seed=seed,
        ) as world:
            built = time.perf_counter() - started
            scenarios += run_all(world, reconcile_up_to, only)
    hub_wanted = only is None or any(name in HUBSPOT_SCENARIOS for name in only)
    if "hubspot" in crms and hub_wanted and issues > hubspot_up_to:
        scenarios += [
            {
                "scenario": name,
                "crm": "hubspot",
                "skipped": f"more than {hubspot_up_to} issues (--hubspot-up-to to include)",
                "targets_missed": [],
            }
            for name in HUBSPOT_SCENARIOS
            if only is None or name in only
        ]
    elif "hubspot" in crms and hub_wanted:
        with hubspot_world(
            issues,
            accounts,
            root / f"hubspot-{issues}",
            transport=transport,  # type: ignore[arg-type]
            latency_ms=latency_ms,
            seed=seed,
        ) as hub:
            scenarios += run_hubspot(hub, only)
    return {
        "issues": issues,
        "accounts": accounts,
        "sandbox_build_seconds": round(built, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "scenarios": scenarios,
    }


def targets(sizes: list[dict[str, Any]]) -> list[str]:
    """Every target missed, across sizes: call targets per scenario, merge rate and RSS."""
    missed: list[str] = []
    for size in sizes:
        n = size["issues"]
        for scenario in size["scenarios"]:
            missed += [
                f"{n} issues, {scenario['scenario']}: {m}" for m in scenario["targets_missed"]
            ]
        full = next((s for s in size["scenarios"] if s["scenario"] == "full_first_sync"), None)
        if n >= 100_000 and full is not None:
            rate = full.get("merge_issues_per_second") or 0
            if rate < MERGE_MIN_RATE:
                missed.append(f"{n} issues: merge {rate} issues/s < {MERGE_MIN_RATE}")
            peak = max(s.get("peak_rss_mb") or 0 for s in size["scenarios"])
            if peak >= RSS_LIMIT_MB:
                missed.append(f"{n} issues: peak RSS {peak} MB >= {RSS_LIMIT_MB}")
    return missed


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES))
    parser.add_argument("--transport", choices=("https", "inprocess"), default="https")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--reconcile-up-to",
        type=int,
        default=RECONCILE_UP_TO,
        help=f"measure reconcile on worlds up to this many issues (default {RECONCILE_UP_TO})",
    )
    parser.add_argument(
        "--only",
        help=(
            "run only these scenarios (comma-separated), after the first sync they start "
            f"from: {', '.join(SCENARIOS[1:])}"
        ),
    )
    parser.add_argument(
        "--hubspot-up-to",
        type=int,
        default=HUBSPOT_UP_TO,
        help=f"HubSpot scenarios on worlds up to this many issues (default {HUBSPOT_UP_TO})",
    )
    parser.add_argument(
        "--crm",
        default=",".join(CRMS),
        help="the CRMs to measure, each on its own world (default: salesforce,hubspot)",
    )
    parser.add_argument(
        "--workers",
        help="instead of the scenarios: one round of shard jobs on each of these numbers "
        "of serve workers (comma-separated, e.g. 1,2,4), on PostgreSQL",
    )
    parser.add_argument("--connections", type=int, default=8, help="with --workers")
    parser.add_argument("--issues-per-connection", type=int, default=200, help="with --workers")
    parser.add_argument("--postgres", help="with --workers: postgresql+psycopg://...")
    args = parser.parse_args(argv)
    if args.workers is not None:
        return _workers(parser, args)
    crms = tuple(part.strip() for part in args.crm.split(",") if part.strip())
    if not crms or set(crms) - set(CRMS):
        parser.error(f"--crm takes {' and/or '.join(CRMS)}, separated by a comma")
    only = None
    if args.only is not None:
        only = [part.strip() for part in args.only.split(",") if part.strip()]
        known = (*SCENARIOS, *HUBSPOT_SCENARIOS)
        unknown = sorted(set(only) - set(known))
        if unknown:
            parser.error(f"--only: no scenario {', '.join(unknown)} (choose from {known})")
    try:
        sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    except ValueError:
        parser.error("--sizes takes issue counts separated by commas, e.g. 1000,10000")
    if not sizes or min(sizes) < 10:
        parser.error("--sizes needs at least one size of 10 issues or more")
    if args.latency_ms < 0:
        parser.error("--latency-ms must be 0 or more")
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="jira-crm-sync-bench-") as tmp:
        for issues in sizes:
            print(f"bench: {issues} issues ...", file=sys.stderr, flush=True)
            results.append(
                run_size(
                    issues,
                    args.transport,
                    args.latency_ms,
                    args.seed,
                    Path(tmp),
                    args.reconcile_up_to,
                    only,
                    crms,
                    args.hubspot_up_to,
                )
            )
    document = {
        "bench": "jira-crm-sync",
        "transport": args.transport,
        "latency_ms": args.latency_ms,
        "seed": args.seed,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "process_model": PROCESS_MODEL,
        "figures": FIGURES,
        "sizes": results,
        "targets_missed": targets(results),
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(document, ensure_ascii=False)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(table(document), file=sys.stderr)
    print(text)
    return 0


def _workers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from bench import workers

    try:
        counts = [int(part) for part in args.workers.split(",") if part.strip()]
    except ValueError:
        parser.error("--workers takes worker counts separated by commas, e.g. 1,2,4")
    if not counts or min(counts) < 1 or args.connections < 1 or args.issues_per_connection < 10:
        parser.error("--workers, --connections need 1 or more, --issues-per-connection 10")
    try:
        workers.postgres_url(args.postgres)
    except ValueError as exc:
        parser.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="jira-crm-sync-bench-") as tmp:
        document = workers.run(
            counts,
            args.connections,
            args.issues_per_connection,
            args.latency_ms,
            args.seed,
            args.postgres,
            Path(tmp),
        )
    text = json.dumps(document, ensure_ascii=False)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(workers.table(document), file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
