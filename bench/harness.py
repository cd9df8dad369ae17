"""One benchmark world: a seeded sandbox, a config and state store for it, a simulated
clock shared by both, and cycles measured with the work they had to do.

Transport ``https``: the sandbox serves over HTTPS on loopback from this (the bench)
process and every cycle runs in a child process (``python -m bench.cycle``), so its wall
time, CPU time and peak RSS are the product's alone, start-up included, as a cron ``run``
costs. Transport ``inprocess``: the sandbox is mounted with ``responses`` and cycles run
in this process; RSS is then the growth during the cycle (the sandbox shares the process)
and CPU time includes the sandbox answering.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from bench.cycle import measure_cycle, run_cycle, run_reconcile, run_report
from bench.model import Work
from connectors.sandbox.config_file import write_sandbox_config
from connectors.sandbox.schema import SF_REPORT_EXTERNAL_ID, SF_REPORT_OBJECT
from connectors.sandbox.stack import Sandbox
from mappings.text import MARKER_PREFIX
from sync.config import load_config
from sync.store import open_store

Transport = Literal["https", "inprocess"]
#: Objects the product queries (their changes are what a cycle must read).
QUERIED = ("Account", "Case")
#: Report fields that change on every write whatever the content.
VOLATILE = frozenset({"Last_Synced__c", "SystemModstamp", "LastModifiedDate"})
ROOT = Path(__file__).resolve().parent.parent


class SimClock:
    """Real time plus a shift the bench moves forward ("ten minutes later")."""

    def __init__(self, start: datetime) -> None:
        self.delta = start - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.delta

    def advance(self, **delta: float) -> None:
        """Let simulated time pass."""
        self.delta += timedelta(**delta)


@dataclass(frozen=True)
class Snapshot:
    """What the sandbox holds, as far as the cost model needs it."""

    jira_updated: dict[str, datetime]
    jira_owned: dict[str, tuple[Any, ...]]  # labels, comment count, custom values
    crm_stamps: dict[str, dict[str, Any]]  # object -> {Id: SystemModstamp}
    reports: dict[str, tuple[Any, ...]]
    crm_live: dict[str, int]  # object -> records not deleted


STATUSES = ("To Do", "In Progress", "Blocked", "Done")


def change_jira_1pct(box: Sandbox, rng: random.Random) -> int:
    """1% of the issues changed as people would: every other one's status moved, the rest's
    summary edited (the Jira half of the changed_1pct scenarios of both CRMs). Returns how
    many."""
    with box.jira_app.lock:
        keys = sorted(box.jira.issues)
        chosen = rng.sample(keys, max(1, len(keys) // 100))
        for n, key in enumerate(chosen):
            issue = box.jira.issue(key)
            if n % 2:
                box.jira.update_issue(key, summary=f"{issue.summary} (edited)")
            else:
                other = [s for s in STATUSES if s != issue.status]
                box.jira.update_issue(key, status=rng.choice(other))
    return len(chosen)


def jira_changes(before: Snapshot, after: Snapshot) -> tuple[int, tuple[int, ...]]:
    """The issues whose labels, flag field or comments had to change between ``before``
    and ``after``, and the sizes of the groups of them that share one identical label and
    field change without a comment (what one Jira Cloud bulk edit can carry), largest first."""
    changed = {
        k: owned for k, owned in after.jira_owned.items() if before.jira_owned.get(k) != owned
    }
    groups: dict[tuple[Any, ...], int] = {}
    for key, (labels, comments, custom) in changed.items():
        old_labels, old_comments, old_custom = before.jira_owned.get(key, ((), 0, ()))
        added = tuple(sorted(set(labels) - set(old_labels)))
        removed = tuple(sorted(set(old_labels) - set(labels)))
        if comments != old_comments or (added and removed):
            continue  # a PUT of its own: comments cannot be added in bulk
        fields = tuple(sorted(set(custom) - set(old_custom)))
        cleared = tuple(sorted({f for f, _ in old_custom} - {f for f, _ in custom}))
        group = (added, removed, fields, cleared)
        groups[group] = groups.get(group, 0) + 1
    return len(changed), tuple(sorted(groups.values(), reverse=True))


class BenchWorld:
    """A sandbox of ``issues`` issues and ``accounts`` accounts, with a config and state
    store in ``directory``; :meth:`cycle` runs and measures one sync cycle."""

    def __init__(
        self,
        issues: int,
        accounts: int,
        directory: Path,
        *,
        transport: Transport = "https",
        latency_ms: int = 0,
        seed: int = 1,
    ) -> None:
        self.issues = issues
        self.accounts = accounts
        self.directory = directory
        self.transport = transport
        self.latency_ms = latency_ms
        today = datetime.now(UTC).date()
        anchor = datetime(today.year, today.month, today.day, tzinfo=UTC)
        # Simulated time starts at 02:00 of the world's day: hours can pass in a run
        # without crossing midnight (which would re-derive everything).
        self.clock = SimClock(anchor + timedelta(hours=2))
        self.box = Sandbox(
            issues=issues, accounts=accounts, seed=seed, anchor=anchor, latency_ms=latency_ms
        )
        self.box.jira.clock = self.clock
        self.box.salesforce.clock = self.clock
        self.config_path = directory / "jira-crm-sync.toml"
        self.state_url = f"sqlite:///{directory / 'state.db'}"
        self._stack = ExitStack()
        self._previous: Snapshot | None = None
        self.cycles = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> BenchWorld:
        """Serve (or mount) the sandbox and write the config."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.transport == "https":
            self.box.serve(self.directory / "tls")
            self._stack.callback(self.box.stop)
        else:
            self.box.endpoints = self._stack.enter_context(self.box.in_process())
        write_sandbox_config(self.box, self.config_path, state_url=self.state_url)
        text = self.config_path.read_text(encoding="utf-8")
        # The budget is not what is measured here: let the full sync of 100,000 issues run.
        for key in ("jira_calls_per_cycle", "crm_calls_per_cycle"):
            text = text.replace(f"{key} = 5000", f"{key} = 10000000")
        for key in ("jira_calls_per_day", "crm_calls_per_day"):
            text = text.replace(f"{key} = 100000", f"{key} = 10000000")
        self.config_path.write_text(text, encoding="utf-8")
        self.box.salesforce.daily_api_limit = 10_000_000
        return self

    def close(self) -> None:
        """Stop the sandbox."""
        self._stack.close()

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The sandbox's records, under the apps' locks."""
        jira, sf = self.box.jira, self.box.salesforce
        with self.box.jira_app.lock:
            updated = {key: issue.updated for key, issue in jira.issues.items()}
            owned = {
                key: (
                    tuple(sorted(issue.labels)),
                    len(jira.comments.get(key, ())),
                    tuple(sorted(jira.custom_values.get(key, {}).items())),
                )
                for key, issue in jira.issues.items()
            }
        with self.box.salesforce_app.lock:
            stamps = {
                name: {
                    str(r["Id"]): r.get("SystemModstamp")
                    for r in sf.records(name, include_deleted=True)
                }
                for name in QUERIED
            }
            reports = {
                str(r[SF_REPORT_EXTERNAL_ID]): tuple(
                    sorted(
                        (k, str(v)) for k, v in r.items() if k.endswith("__c") and k not in VOLATILE
                    )
                )
                for r in sf.records(SF_REPORT_OBJECT)
            }
            live = {name: len(sf.records(name)) for name in QUERIED}
        return Snapshot(updated, owned, stamps, reports, live)

    def _carrying_markers(self, keys: set[str]) -> int:
        """Issues of ``keys`` (those still in Jira) with a comment carrying our flag marker:
        what reconcile's one marker search finds, and whose comments it must read back."""
        with self.box.jira_app.lock:
            return sum(
                1
                for key, comments in self.box.jira.comments.items()
                if key in keys and any(MARKER_PREFIX in str(c.body) for c in comments)
            )

    def _work(
        self,
        before: Snapshot,
        after: Snapshot,
        *,
        key_scan: bool,
        reconcile: bool,
        report: bool = False,
    ) -> Work:
        """What the cycle between ``before`` and ``after`` had to do (``report``: call
        nothing)."""
        previous = self._previous
        if report:
            return Work(0, {}, len(before.jira_updated), False, False, 0, 0, signs_in=False)
        commented = 0
        if reconcile:
            # Everything, once: every issue, every live account and case, every report
            # record; one marker search, and the comments of each issue it finds.
            jira_read = len(before.jira_updated)
            crm_read = {**before.crm_live, "reports": len(before.reports)}
            commented = self._carrying_markers(set(before.jira_updated))
        elif previous is None:
            jira_read = len(before.jira_updated)
            crm_read = {name: len(stamps) for name, stamps in before.crm_stamps.items()}
        else:
            # Changed since the previous cycle started reading: our own writes of that
            # cycle too (they move `updated`), which it could not have read.
            jira_read = sum(
                1 for k, u in before.jira_updated.items() if previous.jira_updated.get(k) != u
            )
            crm_read = {
                name: sum(1 for i, s in stamps.items() if previous.crm_stamps[name].get(i) != s)
                for name, stamps in before.crm_stamps.items()
            }
        jira_written, jira_groups = jira_changes(before, after)
        crm_written = sum(1 for k, r in after.reports.items() if before.reports.get(k) != r)
        return Work(
            jira_read=jira_read,
            crm_read=crm_read,
            scope=len(before.jira_updated),
            key_scan=key_scan,
            first=previous is None,
            jira_written=jira_written,
            crm_written=crm_written,
            jira_groups=jira_groups,
            bulk=self.box.jira.cloud,
            jira_comment_reads=commented,
            marker_search=reconcile,
        )

    # -- cycles ---------------------------------------------------------------------------

    def _stats(self) -> tuple[dict[str, dict[str, int]], int, int]:
        by_endpoint: dict[str, dict[str, int]] = {}
        reads = writes = 0
        for side, app in (("jira", self.box.jira_app), ("salesforce", self.box.salesforce_app)):
            snap = app.stats.snapshot()
            by_endpoint[side] = dict(snap["by_endpoint"])
            reads += int(snap["reads"])
            writes += int(snap["writes"])
        return by_endpoint, reads, writes

    def cycle(
        self,
        *,
        key_scan: bool = False,
        full: bool = False,
        reconcile: bool = False,
        report: bool = False,
    ) -> dict[str, Any]:
        """Run and measure one cycle (``reconcile``: reconcile without --apply instead;
        ``report``: the HTML report of every customer, from the store alone); returns its
        figures, the sandbox's call counts and the work it had to do (``key_scan``:
        whether finding Jira deletes is part of it)."""
        before = self.snapshot()
        self.box.jira_app.stats.reset()
        self.box.salesforce_app.stats.reset()
        figures = self._run(full, reconcile, report)
        if figures.get("exit_code") != 0:
            raise RuntimeError(f"the cycle failed: {figures.get('message') or figures}")
        by_endpoint, reads, writes = self._stats()
        after = self.snapshot()
        work = self._work(before, after, key_scan=key_scan, reconcile=reconcile, report=report)
        if not (reconcile or report):  # they move no cursor
            self._previous = before
        self.cycles += 1
        return {
            "figures": figures,
            "calls": by_endpoint,
            "reads": reads,
            "writes": writes,
            "work": work,
        }

    def _run(self, full: bool, reconcile: bool = False, report: bool = False) -> dict[str, Any]:
        delta = self.clock.delta.total_seconds()
        if self.transport == "inprocess":
            config = load_config(self.config_path)
            store = open_store(config.state.url)
            try:
                if reconcile:
                    return measure_cycle(lambda: run_reconcile(config, store, self.clock))
                if report:
                    return measure_cycle(lambda: run_report(config, store, self.clock))
                return measure_cycle(lambda: run_cycle(config, store, self.clock, full))
            finally:
                store.close()
        args = [sys.executable, "-m", "bench.cycle", "--config", str(self.config_path)]
        args += ["--clock-delta", repr(delta), *(["--full"] if full else [])]
        args += ["--reconcile"] if reconcile else []
        args += ["--report"] if report else []
        env = {
            k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
        }
        done = subprocess.run(
            args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
        if done.returncode != 0 or not done.stdout.strip():
            tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"bench.cycle exited {done.returncode}: {tail[0]}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures


@contextmanager
def bench_world(
    issues: int,
    accounts: int,
    directory: Path,
    *,
    transport: Transport = "https",
    latency_ms: int = 0,
    seed: int = 1,
) -> Iterator[BenchWorld]:
    """A started :class:`BenchWorld` for the ``with`` body."""
    world = BenchWorld(
        issues, accounts, directory, transport=transport, latency_ms=latency_ms, seed=seed
    )
    try:
        yield world.start()
    finally:
        world.close()
