"""Helpers of the end-to-end tests: the HTTPS sandbox, a config pointing at it, the engine
in-process (with an injected clock) or the real CLI in a subprocess, call counts from the
sandbox's own stats, the remote state as a comparable value, what SPEC section 6 says the
reports and labels must be (computed here from the sandbox's records, independently of
mappings/), a snapshot of the state store, and a kill switch that SIGKILLs the CLI from
inside the sandbox at a chosen call.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from typer.testing import CliRunner

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.config_file import write_sandbox_config
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.schema import (
    SF_ACCOUNT_CSAT_FIELD,
    SF_ACCOUNT_PROJECT_KEY_FIELD,
    SF_REPORT_EXTERNAL_ID,
    SF_REPORT_OBJECT,
)
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from mappings.text import parse_marker
from sync.cli import app as cli_app
from sync.config import Config, load_config
from sync.cycle.engine import CycleOptions, CycleResult, Engine
from sync.remote import build_remotes
from sync.store import Store, open_store
from sync.store.locks import pg_lock_holders
from sync.store.schema import metadata

#: The world's "now" for in-process tests (their clocks start an hour later).
ANCHOR = datetime(2026, 3, 2, tzinfo=UTC)
LABEL = "customer-at-risk"
REPORT = SF_REPORT_OBJECT
EXTERNAL_ID = SF_REPORT_EXTERNAL_ID
#: Report fields that change every run whatever happened (left out of comparisons).
VOLATILE = frozenset({"Last_Synced__c"})
#: The Salesforce login (a POST the sandbox counts as a read: it changes no data).
LOGIN = "POST /services/oauth2/token"
UPSERT = "PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}"
COMPOSITE = "POST /services/data/v{version}/composite"
JIRA_SEARCH = "GET /rest/api/2/search/jql"
JIRA_PUT = "PUT /rest/api/2/issue/{key}"
JIRA_COMMENTS = "GET /rest/api/2/issue/{key}/comment"
JIRA_COMMENT = "POST /rest/api/2/issue/{key}/comment"
#: Status categories of the sandbox's workflow (SPEC section 8).
CATEGORY = {"To Do": "todo", "In Progress": "in_progress", "Blocked": "in_progress", "Done": "done"}
CLI = Path(sys.executable).parent / "jira-crm-sync"
#: ``SyncEnv.edit_config(*FIRST_SIGHT)``: comment on the first sight of a level too (a first
#: sync then posts flag comments, for tests of how comments survive crashes and store loss).
FIRST_SIGHT = ("comment_on_first_sight = false", "comment_on_first_sight = true")


class Clock:
    """One controllable clock, shared by the sandbox's two backends and the engine."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move time on (``minutes=10``...)."""
        self.now += timedelta(**delta)
        return self.now


def make_sandbox(
    issues: int, accounts: int, seed: int, anchor: datetime, clock: Clock | None = None
) -> Sandbox:
    """A seeded sandbox; with ``clock``, both backends read time from it."""
    box = Sandbox(issues=issues, accounts=accounts, seed=seed, anchor=anchor)
    if clock is not None:
        box.jira.clock = clock
        box.salesforce.clock = clock
    return box


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: no ambient CA bundle (the config names one)."""
    return {
        k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    }


# --- calls -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calls:
    """Calls both sandbox apps answered; the Salesforce login counts as a read."""

    reads: int
    writes: int
    by_endpoint: dict[str, int]

    def count(self, key: str) -> int:
        """Calls to one endpoint, e.g. ``"jira PUT /rest/api/2/issue/{key}"``."""
        return self.by_endpoint.get(key, 0)


def calls(box: Sandbox) -> Calls:
    """What both apps counted since their stats were last reset."""
    reads = writes = 0
    by_endpoint: dict[str, int] = {}
    for side, app in (("jira", box.jira_app), ("salesforce", box.salesforce_app)):
        snap = app.stats.snapshot()
        reads += snap["reads"]
        writes += snap["writes"]
        by_endpoint.update({f"{side} {key}": n for key, n in snap["by_endpoint"].items()})
    return Calls(reads, writes, by_endpoint)


def reset_calls(box: Sandbox) -> None:
    """Zero both apps' stats."""
    box.jira_app.stats.reset()
    box.salesforce_app.stats.reset()


# --- the environment of one test ---------------------------------------------------------------


class SyncEnv:
    """A served sandbox, a config file pointing at it and a state store.

    With ``tls`` the sandbox is served here (and stopped by :meth:`close`); without, it
    is already serving and stays so.
    """

    def __init__(self, box: Sandbox, directory: Path, store_url: str, tls: Tls | None) -> None:
        self.box = box
        self.directory = directory
        self.store_url = store_url
        self._serving = tls is not None
        if tls is not None:
            box.serve(directory, tls=tls)
        self.config_path = directory / "jira-crm-sync.toml"
        write_sandbox_config(box, self.config_path, state_url=store_url)
        self.config: Config = load_config(self.config_path)
        self._store: Store | None = None

    @property
    def clock(self) -> Clock:
        """The sandbox's injected clock (in-process tests)."""
        clock = self.box.jira.clock
        assert isinstance(clock, Clock), "this sandbox runs on real time"
        return clock

    @property
    def store(self) -> Store:
        """The state store (opened, and migrated, on first use)."""
        if self._store is None:
            self._store = open_store(self.store_url)
        return self._store

    def edit_config(self, old: str, new: str) -> None:
        """Replace one exact line fragment of the config file, and reload it."""
        text = self.config_path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not once in the config"
        self.config_path.write_text(text.replace(old, new), encoding="utf-8")
        self.config = load_config(self.config_path)

    def cycle(
        self,
        *,
        dry_run: bool = False,
        full: bool = False,
        only: Literal["pull", "push"] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> CycleResult:
        """One cycle in-process, on the sandbox's clock (or ``clock``); stats reset first."""
        reset_calls(self.box)
        engine = Engine(
            self.config, self.store, build_remotes(self.config), clock=clock or self.clock
        )
        return engine.run(CycleOptions(dry_run=dry_run, full=full, only=only))

    def settle(self, minutes: float = 10) -> None:
        """Let time pass beyond the Jira overlap window and run the cycle that re-reads
        the issues our own writes touched (it must plan nothing)."""
        self.clock.advance(minutes=minutes)
        result = self.cycle()
        assert result.exit_code == 0, result.message
        assert result.written == {}, result.written
        self.clock.advance(minutes=minutes)

    def wait_unlocked(self, seconds: float = 15) -> None:
        """On PostgreSQL, wait until no session holds the store's lock: a killed run's
        session is ended by the server a moment after the process (on SQLite the kernel
        frees the lock with the process)."""
        if self.store.dialect != "postgresql":
            return
        deadline = time.monotonic() + seconds
        while True:
            with self.store.read() as conn:
                if not pg_lock_holders(conn):
                    return
            if time.monotonic() > deadline:
                raise AssertionError("the store's lock is still held")
            time.sleep(0.02)

    def cli_args(self, *args: str) -> list[str]:
        """The command line of ``jira-crm-sync --config <this config> <args>``."""
        return [str(CLI), "--config", str(self.config_path), *args]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the real CLI to completion."""
        return subprocess.run(
            self.cli_args(*args),
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        """Close the store and stop the servers."""
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._serving:
            self.box.stop()


def cli_in_process(env: SyncEnv, *args: str) -> tuple[int, str, str]:
    """``jira-crm-sync --config <env's config> <args>`` in-process: (exit, stdout, stderr).

    An exception the CLI let escape is raised here (in a process of its own it would have
    been a traceback and exit 1; the runner would only report exit 1)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(cli_app, ["--config", str(env.config_path), *args])
    finally:  # the CLI points the root logger at its own (captured) stderr
        root.handlers[:], root.level = handlers, level
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@contextmanager
def sync_env(box: Sandbox, directory: Path, store_url: str, tls: Tls) -> Iterator[SyncEnv]:
    """A :class:`SyncEnv` for the ``with`` body."""
    env = SyncEnv(box, directory, store_url, tls)
    try:
        yield env
    finally:
        env.close()


@contextmanager
def in_process_env(
    store_url: str,
    directory: Path,
    tls: Tls,
    *,
    issues: int = 150,
    accounts: int = 20,
    seed: int = 2,
) -> Iterator[SyncEnv]:
    """A :class:`SyncEnv` whose sandbox runs on a :class:`Clock` starting an hour after
    :data:`ANCHOR` (use :meth:`SyncEnv.cycle` with it)."""
    clock = Clock(ANCHOR + timedelta(hours=1))
    box = make_sandbox(issues, accounts, seed=seed, anchor=ANCHOR, clock=clock)
    with sync_env(box, directory, store_url, tls) as env:
        yield env


# --- the remote state --------------------------------------------------------------------------


def _comment_text(body: str | dict[str, Any]) -> str:
    return body if isinstance(body, str) else json.dumps(body, sort_keys=True)


@dataclass(frozen=True)
class RemoteState:
    """What the sync owns on both sides, comparable between two sandboxes."""

    #: external id -> report fields (system and volatile fields left out).
    reports: dict[str, dict[str, Any]]
    #: how many report records there are (a duplicate would show here).
    report_records: int
    #: issue key -> its labels, sorted.
    labels: dict[str, tuple[str, ...]]
    #: issue key -> its comment bodies, oldest first (only issues with comments).
    comments: dict[str, tuple[str, ...]]

    def differences(self, other: RemoteState) -> list[str]:
        """Human-readable differences (empty when equal)."""
        out: list[str] = []
        if self.report_records != other.report_records:
            out.append(f"report records: {self.report_records} != {other.report_records}")
        for key in sorted(set(self.reports) | set(other.reports)):
            if self.reports.get(key) != other.reports.get(key):
                out.append(f"report {key}: {self.reports.get(key)} != {other.reports.get(key)}")
        for key in sorted(set(self.labels) | set(other.labels)):
            if self.labels.get(key) != other.labels.get(key):
                out.append(f"labels {key}: {self.labels.get(key)} != {other.labels.get(key)}")
        for key in sorted(set(self.comments) | set(other.comments)):
            if self.comments.get(key) != other.comments.get(key):
                out.append(f"comments {key}: {self.comments.get(key)} != {other.comments.get(key)}")
        return out


def remote_state(box: Sandbox) -> RemoteState:
    """The report records, every issue's labels and every issue's comments."""
    records = box.salesforce.records(REPORT)
    reports = {
        str(r[EXTERNAL_ID]): {k: v for k, v in r.items() if k.endswith("__c") and k not in VOLATILE}
        for r in records
    }
    return RemoteState(
        reports=reports,
        report_records=len(records),
        labels={key: tuple(sorted(i.labels)) for key, i in box.jira.issues.items()},
        comments={
            key: tuple(_comment_text(c.body) for c in comments)
            for key, comments in box.jira.comments.items()
            if comments
        },
    )


def duplicate_comments(box: Sandbox) -> dict[str, list[str]]:
    """Issue key -> comments posted twice on it: a flag comment that announces, for some
    customer, the level its previous flag comment on the issue already announced (the same
    news twice; a level that went away and came back is news again, even in the same words),
    and any other body that occurs more than once."""
    found: dict[str, list[str]] = {}
    for key, comments in box.jira.comments.items():
        bodies = [_comment_text(c.body) for c in comments]
        last: dict[str, str] = {}
        twice: list[str] = []
        for body in bodies:
            markers = parse_marker(body)
            if not markers:
                continue
            if any(last.get(customer) == level for customer, level in markers):
                twice.append(body)
            last.update(markers)
        counted = Counter(body for body in bodies if not parse_marker(body))
        twice += [body for body, n in counted.items() if n > 1]
        if twice:
            found[key] = twice
    return found


# --- what SPEC section 6 says, computed independently ------------------------------------------


@dataclass(frozen=True)
class Expected:
    """Per (project, account): the report counts; and the issues our label belongs on."""

    #: issue key -> account ids it belongs to.
    links: dict[str, frozenset[str]]
    #: ``<PROJECT KEY>:<Account Id>`` -> {report field: value}.
    reports: dict[str, dict[str, Any]]
    at_risk: frozenset[str]
    labelled: frozenset[str]

    def pairs_of(self, issue_key: str, project_key: str) -> set[str]:
        """External ids of the reports an issue counts in."""
        return {f"{project_key}:{account}" for account in self.links.get(issue_key, ())}


def _own_or_inherited(issues: dict[str, Any], key: str) -> str | None:
    """The account an issue carries, else the nearest one up its parent chain: a sub-task
    takes its story's, and a story without one its epic's (SPEC section 6: "by its own
    link value, or, when it has none, by its parent's (epic's)")."""
    seen: set[str] = set()
    issue = issues[key]
    while issue.account_id is None and issue.parent_key in issues and issue.key not in seen:
        seen.add(issue.key)
        issue = issues[issue.parent_key]
    return issue.account_id


def expected(box: Sandbox, today: date) -> Expected:
    """Reports and labels for the sandbox's current records (SPEC section 6 and the link
    rules of the sandbox config: the issue's own account field, else its parent's (a
    sub-task's story, then the story's epic), else the accounts whose project-key field
    names the project)."""
    accounts = {str(a["Id"]): a for a in box.salesforce.records("Account")}
    naming: dict[str, set[str]] = {}
    for account_id, account in accounts.items():
        for key in str(account.get(SF_ACCOUNT_PROJECT_KEY_FIELD) or "").split(","):
            if key.strip():
                naming.setdefault(key.strip().upper(), set()).add(account_id)
    escalated = Counter(
        str(c["AccountId"])
        for c in box.salesforce.records("Case")
        if c.get("IsEscalated") and not c.get("IsClosed")
    )
    at_risk = frozenset(
        account_id
        for account_id, account in accounts.items()
        if (account.get(SF_ACCOUNT_CSAT_FIELD) is not None and account[SF_ACCOUNT_CSAT_FIELD] < 3.5)
        or escalated[account_id] > 0
    )
    issues = box.jira.issues
    links: dict[str, frozenset[str]] = {}
    for key, issue in issues.items():
        value = _own_or_inherited(issues, key)
        if value is not None and value in accounts:
            links[key] = frozenset({value})
        elif naming.get(issue.project_key):
            links[key] = frozenset(naming[issue.project_key])
    reports: dict[str, dict[str, Any]] = {}
    for key, issue in issues.items():
        for account_id in links.get(key, ()):
            external_id = f"{issue.project_key}:{account_id}"
            report = reports.setdefault(
                external_id,
                {
                    "Account__c": account_id,
                    "Jira_Project_Key__c": issue.project_key,
                    "Issues_Total__c": 0,
                    "Issues_Done__c": 0,
                    "Issues_In_Progress__c": 0,
                    "Issues_To_Do__c": 0,
                    "Issues_Overdue__c": 0,
                },
            )
            if issue.issue_type == "Epic":
                continue  # linked (the pair exists), never counted
            category = CATEGORY[issue.status]
            report["Issues_Total__c"] += 1
            report[
                {
                    "done": "Issues_Done__c",
                    "in_progress": "Issues_In_Progress__c",
                    "todo": "Issues_To_Do__c",
                }[category]
            ] += 1
            if category != "done" and issue.due is not None and issue.due < today:
                report["Issues_Overdue__c"] += 1
    for report in reports.values():
        total = report["Issues_Total__c"]
        report["Percent_Complete__c"] = (
            round(report["Issues_Done__c"] * 100 / total, 1) if total else 0.0
        )
    labelled = frozenset(
        key
        for key, issue in issues.items()
        if CATEGORY[issue.status] != "done" and links.get(key, frozenset()) & at_risk
    )
    return Expected(links, reports, at_risk, labelled)


def report_counts(box: Sandbox) -> dict[str, dict[str, Any]]:
    """The counting fields of every report record, by external id (as :func:`expected`)."""
    wanted = (
        "Account__c",
        "Jira_Project_Key__c",
        "Issues_Total__c",
        "Issues_Done__c",
        "Issues_In_Progress__c",
        "Issues_To_Do__c",
        "Issues_Overdue__c",
        "Percent_Complete__c",
    )
    out: dict[str, dict[str, Any]] = {}
    for record in box.salesforce.records(REPORT):
        fields = {k: record[k] for k in wanted}
        percent = fields["Percent_Complete__c"]
        fields["Percent_Complete__c"] = None if percent is None else round(float(percent), 1)
        out[str(record[EXTERNAL_ID])] = fields
    return out


def labelled(box: Sandbox) -> frozenset[str]:
    """Keys of the issues carrying our label."""
    return frozenset(key for key, issue in box.jira.issues.items() if LABEL in issue.labels)


# --- the state store ---------------------------------------------------------------------------


def store_snapshot(store: Store) -> dict[str, list[str]]:
    """Every row of every table of the state store, as sorted text (for equality)."""
    snapshot: dict[str, list[str]] = {}
    with store.read() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            snapshot[table.name] = sorted(repr(tuple(row)) for row in rows)
    return snapshot


# --- killing the CLI from inside the sandbox ---------------------------------------------------


Side = Literal["jira", "salesforce", "hubspot"]


class CliEnv(Protocol):
    """What runs the CLI against a sandbox: its command line (SyncEnv, HubEnv)."""

    def cli_args(self, *args: str) -> list[str]: ...


@dataclass(frozen=True)
class KillPoint:
    """SIGKILL the CLI at the ``nth`` call on ``side`` (None: either side) that matches
    ``endpoint`` (a stats key; None: any call), with ``writes_only`` is a write, and with
    ``needle`` carries it in its request body; ``before`` the sandbox applies it, or
    ``after`` it applied it but before the response leaves."""

    name: str
    side: Side | None
    nth: int
    endpoint: str | None = None
    writes_only: bool = False
    when: Literal["before", "after"] = "before"
    needle: bytes | None = None

    def __str__(self) -> str:
        return self.name


@dataclass
class KillSwitch:
    """Wraps both apps' ``handle``; kills the running child at the armed point. The CRM's
    app is the sandbox's Salesforce, or ``crm_app`` (a HubSpot portal's, side ``crm_side``)."""

    box: Sandbox
    point: KillPoint | None = None
    process: subprocess.Popen[str] | None = None
    fired: bool = False
    _seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _originals: dict[Side, Callable[[SandboxRequest], SandboxResponse]] = field(
        default_factory=dict
    )
    crm_app: SandboxApp | None = None
    crm_side: Side = "salesforce"

    def _apps(self) -> tuple[tuple[Side, SandboxApp], ...]:
        crm = self.crm_app if self.crm_app is not None else self.box.salesforce_app
        return (("jira", self.box.jira_app), (self.crm_side, crm))

    def install(self) -> None:
        """Wrap the apps (idempotent)."""
        for side, app in self._apps():
            if side not in self._originals:
                self._originals[side] = app.handle
                app.handle = self._wrapper(side, app)  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        """Restore the apps."""
        for side, app in self._apps():
            original = self._originals.pop(side, None)
            if original is not None:
                app.handle = original  # type: ignore[method-assign, assignment]

    def arm(self, point: KillPoint | None) -> None:
        """Kill at ``point`` during the next run (None: never)."""
        with self._lock:
            self.point, self.fired, self._seen, self.process = point, False, 0, None

    def _matches(self, side: Side, app: SandboxApp, request: SandboxRequest) -> bool:
        point = self.point
        if point is None or self.fired or point.side not in (None, side):
            return False
        route, _params, _known = app.backend.router.match(request.method, request.path)
        if route is None:
            return False
        if point.endpoint is not None and route.stats_key != point.endpoint:
            return False
        if point.writes_only and not route.writes(request):
            return False
        if point.needle is not None and point.needle not in request.body:
            return False
        with self._lock:
            self._seen += 1
            if self._seen == point.nth:
                self.fired = True
                return True
        return False

    def _kill(self) -> None:
        deadline = time.monotonic() + 30
        while self.process is None:  # the Popen object is set right after the fork
            if time.monotonic() > deadline:
                raise RuntimeError("no child process to kill")
            time.sleep(0.001)
        self.process.send_signal(signal.SIGKILL)
        # Wait until it is gone, so it can never act on the answer to this call.
        self.process.wait(timeout=30)

    def _wrapper(self, side: Side, app: SandboxApp) -> Callable[[SandboxRequest], SandboxResponse]:
        original = self._originals[side]

        def handle(request: SandboxRequest) -> SandboxResponse:
            if not self._matches(side, app, request):
                return original(request)
            assert self.point is not None
            if self.point.when == "before":
                self._kill()
                return app.backend.error(503, "killed before this call was applied")
            response = original(request)
            self._kill()
            return response

        return handle

    def run(self, env: CliEnv, *args: str, timeout: float = 120) -> tuple[int, str, str]:
        """Run the CLI; returns (exit code, stdout, stderr); -9 when the switch fired."""
        with subprocess.Popen(
            env.cli_args(*args),
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            self.process = process
            out, err = process.communicate(timeout=timeout)
            return process.returncode, out, err
