"""Benchmark of the merge step (SPEC section 9): normalise, link, progress, flags, plan.

    python -m bench.merge [--issues 100000] [--accounts 20000] [--seed 1] [--repeat 3]

Generates raw records in the vendors' shapes in memory (Jira issue dicts as the REST API
returns them, Salesforce records without ``attributes``), then times
:func:`mappings.merge.merge` plus :func:`mappings.merge.plan` and prints one JSON object:
once over every issue, and (``in_cycle_*``) in a cycle's batches of projects
(:func:`batched`), where the customers are built once and shared by the batches.
The generator is also what tests use for realistic data (``tests/mappings/factories.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from connectors.salesforce.ids import canonical_id, checksum
from mappings.ids import IdForm
from mappings.merge import CrmSide, MergeResult, merge, plan
from mappings.plan import ledgers_after
from mappings.rules import FieldIds, Rules

__all__ = [
    "ACCOUNT_FIELD",
    "EPIC_LINK_FIELD",
    "FIELDS",
    "STORY_POINTS_FIELD",
    "RawWorld",
    "generate",
]

ACCOUNT_FIELD = "customfield_10100"
STORY_POINTS_FIELD = "customfield_10016"
EPIC_LINK_FIELD = "customfield_10014"
FIELDS = FieldIds(account_link=ACCOUNT_FIELD, story_points=STORY_POINTS_FIELD)

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_STATUSES = (
    ("To Do", "new"),
    ("In Progress", "indeterminate"),
    ("Blocked", "indeterminate"),
    ("In Review", "indeterminate"),
    ("Done", "done"),
)
_SEGMENTS = ("Enterprise", "Mid-Market", "SMB", "Public Sector", "大客户", None)
_WORDS = ("Migrate", "Configure", "Fix", "Review", "Document", "迁移", "Integrate", "Test")
_THINGS = ("login flow", "billing export", "SSO", "dashboard", "数据同步", "API limits", "reports")
_LABELS = ("backend", "frontend", "customer", "urgent", "tech-debt")
_PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
_PLUS8 = timezone(timedelta(hours=8))


def sf_id(prefix: str, number: int, *, short: bool = False) -> str:
    """A Salesforce Id (18 characters, or the 15-character form)."""
    digits = ""
    while True:
        number, rem = divmod(number, 62)
        digits = _BASE62[rem] + digits
        if number == 0:
            break
    base = (prefix + "Dn" + digits.rjust(10, "0"))[:15]
    return base if short else base + checksum(base)


def _jira_time(moment: datetime, rng: random.Random) -> str:
    if rng.random() < 0.2:
        local = moment.astimezone(_PLUS8)
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{rng.randrange(1000):03d}+08:00"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{rng.randrange(1000):03d}+0000"


def _sf_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


#: The world's customer ids are Salesforce's (15 or 18 characters): how they compare.
CUSTOMER_IDS: IdForm = canonical_id


@dataclass(slots=True)
class RawWorld:
    """Records of a generated world (raw Jira issues, CRM records in the neutral form the
    connector hands over), and the as-of time they are meant for."""

    as_of: datetime
    issues: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    surveys: list[dict[str, Any]] = field(default_factory=list)
    deleted_account_ids: list[str] = field(default_factory=list)


def _adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def generate(
    issues: int = 500, accounts: int = 100, seed: int = 1, as_of: datetime | None = None
) -> RawWorld:
    """A deterministic world of raw records: accounts with cases and surveys, Jira projects
    with epics, stories, sub-tasks and versions; link values in every form the field takes
    (18- and 15-character Ids, whitespace, missing, inherited, unknown, deleted)."""
    rng = random.Random(seed)
    now = as_of or datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    world = RawWorld(as_of=now)
    n_projects = max(1, issues // 250)
    keys = [f"P{i:03d}" if i else "APOLLO" for i in range(n_projects)]
    account_ids: list[str] = []
    for i in range(accounts):
        account_id = sf_id("001", i + 1)
        account_ids.append(account_id)
        modstamp = now - timedelta(days=rng.uniform(0, 200))
        names_project = rng.random() < 0.1
        world.accounts.append(
            {
                "id": account_id,
                "name": f"Customer {i + 1} {'有限公司' if i % 4 == 0 else 'Ltd'}",
                "segment": _SEGMENTS[rng.randrange(len(_SEGMENTS))],
                "satisfaction": (
                    None if rng.random() < 0.05 else round(rng.triangular(1, 5, 4.2), 1)
                ),
                "owner_id": sf_id("005", 1 + i % 9),
                "owner_name": f"Owner {1 + i % 9}",
                "project_keys": rng.choice(keys) if names_project else None,
                "changed_at": _sf_time(modstamp),
                "deleted": False,
            }
        )
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            closed = rng.random() < 0.6
            world.cases.append(
                {
                    "id": sf_id("500", len(world.cases) + 1),
                    "customer_id": account_id if rng.random() < 0.9 else account_id[:15],
                    "closed": closed,
                    "escalated": not closed and rng.random() < 0.15,
                    "deleted": False,
                }
            )
        for _ in range(rng.choice((0, 1, 2))):
            world.surveys.append(
                {
                    "id": sf_id("a01", len(world.surveys) + 1),
                    "customer_id": account_id,
                    "score": min(10, max(0, round(rng.gauss(7.5, 2.2)))),
                    "answered_at": _sf_time(now - timedelta(days=rng.uniform(0, 200))),
                }
            )
    deleted = [sf_id("001", accounts + 1 + i) for i in range(max(1, accounts // 500))]
    world.deleted_account_ids = deleted
    _issues(world, rng, keys, account_ids, deleted, issues)
    return world


def _issues(
    world: RawWorld,
    rng: random.Random,
    keys: list[str],
    account_ids: list[str],
    deleted: list[str],
    count: int,
) -> None:
    now = world.as_of
    versions: dict[str, list[dict[str, Any]]] = {}
    served: dict[str, list[str]] = {}
    for p, key in enumerate(keys):
        versions[key] = [
            {
                "id": str(10000 + p * 10 + v),
                "name": f"{key.title()} {v + 1}.0",
                "released": v < 2,
                "archived": v == 0 and rng.random() < 0.3,
                **(
                    {"releaseDate": (now + timedelta(days=-60 + 30 * v)).date().isoformat()}
                    if rng.random() < 0.9
                    else {}
                ),
            }
            for v in range(5)
        ]
        served[key] = rng.sample(account_ids, k=min(len(account_ids), rng.randint(1, 3)))
    counters = dict.fromkeys(keys, 0)
    parents: dict[str, list[tuple[str, str]]] = {key: [] for key in keys}  # (key, type)
    for n in range(count):
        key = keys[n % len(keys)] if n < len(keys) else keys[rng.randrange(len(keys))]
        counters[key] += 1
        issue_key = f"{key}-{counters[key]}"
        pool = parents[key]
        epics = [p for p in pool if p[1] == "Epic"]
        roll = rng.random()
        if not epics or roll < 0.05:
            issue_type = "Epic"
        elif roll < 0.12 and len(pool) > len(epics):
            issue_type = "Sub-task"
        else:
            issue_type = rng.choice(("Story", "Story", "Task", "Bug"))
        parent: tuple[str, str] | None = None
        if issue_type == "Sub-task":
            parent = rng.choice([p for p in pool if p[1] != "Epic"][-20:])
        elif issue_type != "Epic":
            parent = rng.choice(epics[-10:])
        link = rng.random()
        customers = served[key]
        value: Any
        if parent is not None and link < 0.35:
            value = None  # inherits from its parent
        elif link < 0.85:
            value = rng.choice(customers)
            if link < 0.45:
                value = value[:15]
            elif link < 0.5:
                value = f"  {value} "
        elif link < 0.88:
            value = rng.choice(deleted)
        elif link < 0.9:
            value = sf_id("001", 900_000 + n)
        else:
            value = None
        created = now - timedelta(days=rng.uniform(1, 300))
        status_name, category = _STATUSES[
            0 if rng.random() < 0.3 else rng.choice((1, 1, 1, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2))
        ]
        resolved = (
            min(now, created + timedelta(days=rng.uniform(0.5, 120)))
            if category == "done"
            else None
        )
        fields: dict[str, Any] = {
            "summary": f"{rng.choice(_WORDS)} {rng.choice(_THINGS)} #{n}",
            "issuetype": {"name": issue_type, "subtask": issue_type == "Sub-task"},
            "project": {"id": str(10000 + keys.index(key)), "key": key, "name": f"{key} rollout"},
            "status": {"name": status_name, "statusCategory": {"key": category}},
            "priority": None if rng.random() < 0.1 else {"name": rng.choice(_PRIORITIES)},
            "assignee": None
            if rng.random() < 0.2
            else {"accountId": f"5b10ac{n % 50:02d}", "displayName": f"Dev {n % 50}"},
            "created": _jira_time(created, rng),
            "updated": _jira_time(resolved or created, rng),
            "resolutiondate": _jira_time(resolved, rng) if resolved else None,
            "duedate": (
                (created + timedelta(days=rng.randint(7, 150)))
                if category == "done"
                else now + timedelta(days=rng.randint(-20, 120))
            )
            .date()
            .isoformat()
            if rng.random() < 0.5
            else None,
            "labels": rng.sample(_LABELS, k=rng.choice((0, 0, 0, 1, 2)))
            + (["blocked"] if rng.random() < 0.02 else []),
            "fixVersions": [dict(rng.choice(versions[key]))] if rng.random() < 0.6 else [],
            ACCOUNT_FIELD: value,
            STORY_POINTS_FIELD: rng.choice((1.0, 2.0, 3.0, 5.0, 8.0, None)),
            "timeoriginalestimate": rng.choice((3600, 7200, 28800, None)),
            "timeestimate": None,
            "description": _adf(f"Details {n}") if n % 3 == 0 else f"Details {n}",
            "customfield_19999": {"unknown": True},
        }
        # Cloud writes when the status category last changed (for a done item: when it
        # reached done); drawn from no generator, so the world stays as it was.
        fields["statuscategorychangedate"] = fields["resolutiondate"] or fields["created"]
        if parent is not None:
            fields["parent"] = {"key": parent[0], "fields": {"issuetype": {"name": parent[1]}}}
        world.issues.append({"id": str(10000 + n), "key": issue_key, "fields": fields})
        pool.append((issue_key, issue_type))


def run(issues: int, accounts: int, seed: int, repeat: int) -> dict[str, Any]:
    """Generate, then time the merge and plan ``repeat`` times; the best time counts."""
    world = generate(issues, accounts, seed)
    rules = Rules(fields=FIELDS)
    # The raw records stand for what the engine streams from its store: keep the collector
    # from walking them (merge and plan pause it for their own allocations).
    gc.collect()
    gc.freeze()
    input_rss = _rss_mb()
    best = float("inf")
    stages: dict[str, float] = {}
    result = None
    writes = (0, 0)
    gc_seconds = 0.0
    the_plan = None

    def merge_world() -> MergeResult:
        return merge(
            world.issues,
            world.accounts,
            world.cases,
            world.surveys,
            rules=rules,
            as_of=world.as_of,
            deleted_account_ids=world.deleted_account_ids,
            jira_url="https://jira.example",
            instance_url="https://example.my.salesforce.com",
            customer_ids=CUSTOMER_IDS,
        )

    for _ in range(repeat):
        result = the_plan = None
        gc.collect()
        start = time.perf_counter()
        result = merge_world()
        merged = time.perf_counter()
        the_plan = plan(result, rules)
        end = time.perf_counter()
        collected = time.perf_counter()
        gc.collect()  # what the paused collector would have done, for the record
        collected = time.perf_counter() - collected
        if end - start < best:
            gc_seconds = collected
            best = end - start
            stages = {
                "merge_seconds": round(merged - start, 3),
                "plan_seconds": round(end - merged, 3),
            }
            writes = (len(the_plan.crm), len(the_plan.jira))
    assert result is not None and the_plan is not None
    # The next cycle, nothing changed: the ledgers hold what the first plan wrote.
    crm_ledger, jira_ledger = ledgers_after(the_plan, {}, {})
    start = time.perf_counter()
    again = merge_world()
    steady = plan(again, rules, crm_ledger=crm_ledger, jira_ledger=jira_ledger)
    steady_seconds = time.perf_counter() - start
    in_cycle = batched(world, rules, repeat)
    return {
        "issues": issues,
        "accounts": accounts,
        "cases": len(world.cases),
        "surveys": len(world.surveys),
        "seconds": round(best, 3),
        "issues_per_second": round(issues / best) if best else None,
        **stages,
        "deferred_gc_seconds": round(gc_seconds, 3),
        "links": len(result.links.links),
        "link_problems": len(result.links.problems),
        "reports": len(result.reports),
        "crm_writes": writes[0],
        "jira_writes": writes[1],
        "no_change_cycle_seconds": round(steady_seconds, 3),
        "no_change_cycle_writes": len(steady.crm) + len(steady.jira),
        **in_cycle,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "raw_input_rss_mb": input_rss,
        "merge_result_mb": _result_mb(world, rules),
        "python": sys.version.split()[0],
    }


def batched(world: RawWorld, rules: Rules, repeat: int = 1) -> dict[str, Any]:
    """The merge as a cycle runs it (sync.cycle.derive.BatchedDerive): whole projects in
    batches of about :data:`~sync.cycle.derive.BATCH_ISSUES` issues, the first batch
    building the customers and flags (:class:`~mappings.merge.CrmSide`) the others share,
    parents and epics of other batches looked up by key; the best of ``repeat`` runs."""
    from sync.cycle.derive import BATCH_ISSUES

    by_project: dict[str, list[dict[str, Any]]] = {}
    by_key: dict[str, dict[str, Any]] = {}
    for issue in world.issues:
        by_project.setdefault(issue["fields"]["project"]["key"], []).append(issue)
        by_key[issue["key"]] = issue
    batches: list[list[dict[str, Any]]] = [[]]
    for key in sorted(by_project):
        if len(batches[-1]) >= BATCH_ISSUES:
            batches.append([])
        batches[-1].extend(by_project[key])

    def ancestors(keys: Any) -> list[dict[str, Any]]:
        return [by_key[k] for k in keys if k in by_key]

    best = best_cpu = float("inf")
    for _ in range(repeat):
        gc.collect()
        spent = cpu = 0.0
        side = None
        for batch in batches:
            start, start_cpu = time.perf_counter(), time.thread_time()
            result = merge(
                batch,
                world.accounts if side is None else (),
                world.cases if side is None else (),
                world.surveys if side is None else (),
                rules=rules,
                as_of=world.as_of,
                deleted_account_ids=world.deleted_account_ids,
                jira_url="https://jira.example",
                instance_url="https://example.my.salesforce.com",
                crm=side,
                ancestors=ancestors,
                customer_ids=CUSTOMER_IDS,
            )
            spent += time.perf_counter() - start
            cpu += time.thread_time() - start_cpu
            if side is None:
                side = CrmSide.of(result)
            del result
        best, best_cpu = min(best, spent), min(best_cpu, cpu)
    issues = len(world.issues)
    return {
        "in_cycle_batches": len(batches),
        "in_cycle_merge_seconds": round(best, 3),
        "in_cycle_issues_per_second": round(issues / best) if best else None,
        # CPU time: what the merge costs when other processes share the cores.
        "in_cycle_cpu_seconds": round(best_cpu, 3),
        "in_cycle_issues_per_cpu_second": round(issues / best_cpu) if best_cpu else None,
    }


def _rss_mb() -> float:
    """Resident set size now, from /proc (the peak is in ``getrusage``)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return 0.0
    return round(pages * resource.getpagesize() / 2**20, 1)


def _result_mb(world: RawWorld, rules: Rules) -> float:
    """Memory the merge result and plan hold, measured by tracemalloc on a fresh run."""
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    result = merge(
        world.issues,
        world.accounts,
        world.cases,
        world.surveys,
        rules=rules,
        as_of=world.as_of,
        deleted_account_ids=world.deleted_account_ids,
        customer_ids=CUSTOMER_IDS,
    )
    the_plan = plan(result, rules)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result, the_plan
    return round(held / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print one JSON result."""
    parser = argparse.ArgumentParser(prog="python -m bench.merge", description=__doc__)
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.issues, args.accounts, args.seed, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
