"""Fault soak (issue 9): repeated `run`s of the real CLI against the HTTPS sandbox while a
thread injects faults at random on both sides through the control API, and people change
data on both sides between cycles. Afterwards, faults off, one more `run`, then `reconcile --json`:
no drift, no duplicate, and every record the CRM rejected accounted for (parked with its
error, or written); independently of reconcile, the remote state is what SPEC section 6
says it must be (tests/sync/e2e.py ``expected``) for every record not rejected.

The soak runs on each state store (a SQLite file, and PostgreSQL when
JIRA_CRM_SYNC_TEST_POSTGRES_URL is set), sharing one time budget
(``JIRA_CRM_SYNC_SOAK_SECONDS``, 20 by default; CI sets 20, a long soak sets more: each
store soaks for its share) and bounded by calls (:data:`CALL_BOUND`). The random draws are
seeded: the seed is ``JIRA_CRM_SYNC_SOAK_SEED`` or picked and shown, with the store, in
every failure message, so a failure can be replayed. During the soak a run may only exit
0, 1 (records parked) or 3 (a remote failed); never 5, never a traceback.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cycle.push_jira import INVALID
from tests.sync.conftest import postgres_base_url
from tests.sync.e2e import (
    ANCHOR,
    EXTERNAL_ID,
    REPORT,
    SyncEnv,
    calls,
    cli_in_process,
    duplicate_comments,
    expected,
    labelled,
    make_sandbox,
    remote_state,
    report_counts,
)

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("JIRA_CRM_SYNC_SOAK_SECONDS") or 20)
#: At most this many calls served to the CLI over the whole soak.
CALL_BOUND = 20_000
RULE = "Project status records of this account are frozen by the soak"
STATUSES = ("To Do", "In Progress", "Blocked", "Done")


def _seed() -> int:
    given = os.environ.get("JIRA_CRM_SYNC_SOAK_SEED")
    return int(given) if given else random.SystemRandom().randrange(1_000_000)


SEED = _seed()
#: The stores the soak runs on share the budget: each soaks for this long.
SHARE = SECONDS / (2 if postgres_base_url() else 1)


def _faults(rng: random.Random, long_soak: bool) -> list[tuple[str, dict[str, Any]]]:
    """One random fault for the next call(s) of one side: (side, control-API document)."""
    side = rng.choice(("jira", "salesforce"))
    kinds = ["429", "500", "502", "503", "slow", "timeout", "expired_session", "drop"]
    if side == "jira" and not long_soak:
        # The jira client sleeps 10-20 s before retrying a dropped connection: long soaks only.
        kinds.remove("drop")
    kind = rng.choice(kinds)
    fault: dict[str, Any] = {"kind": kind, "count": 1}
    if kind in ("429", "503"):
        fault["retry_after"] = rng.choice((0, 1))
    if kind in ("slow", "timeout"):
        fault["delay_ms"] = rng.choice((50, 200, 400))
    return [(side, fault)]


class Soak:
    """The sandbox, the config and store of one soak, its random source and its log."""

    def __init__(self, box: Sandbox, env: SyncEnv, rng: random.Random) -> None:
        self.backend = env.store_url.split(":", 1)[0].split("+", 1)[0]
        self.box = box
        self.env = env
        self.rng = rng
        self.log: list[str] = []
        self.victims: set[str] = set()
        self.deleted_account: str | None = None
        ends = box.endpoints
        assert ends is not None
        self.control = {
            "jira": f"{ends.jira_url}/_sandbox/faults",
            "salesforce": f"{ends.salesforce_url}/_sandbox/faults",
        }
        self.http = requests.Session()
        self.http.verify = str(ends.ca_bundle)

    def note(self, text: str) -> None:
        self.log.append(text)

    def context(self) -> str:
        """What a failure message carries: how to replay, and the last things done."""
        return f"seed {SEED} ({self.backend}); last events:\n" + "\n".join(self.log[-25:])

    # -- faults ---------------------------------------------------------------------------

    def inject_until(self, stop: threading.Event) -> None:
        """Add random faults through the control API until ``stop`` (the fault thread)."""
        rng = random.Random(self.rng.random())  # its own stream: the main one stays replayable
        long_soak = SECONDS >= 60
        while not stop.wait(rng.uniform(0.4, 1.6)):
            for side, fault in _faults(rng, long_soak):
                answer = self.http.post(self.control[side], json=fault, timeout=10)
                assert answer.status_code == 201, answer.text
                self.note(f"fault {side} {fault}")
            if rng.random() < 0.05:
                self._daily_limit_spent(rng)

    def _daily_limit_spent(self, rng: random.Random) -> None:
        """The org's daily API limit reached for a moment (REQUEST_LIMIT_EXCEEDED, 403)."""
        sf = self.box.salesforce
        with self.box.salesforce_app.lock:
            limit, sf.daily_api_limit = sf.daily_api_limit, sf.api_used
        self.note("salesforce daily API limit spent")
        time.sleep(rng.uniform(0.2, 0.6))
        with self.box.salesforce_app.lock:
            sf.daily_api_limit = limit

    def faults_off(self) -> None:
        for url in self.control.values():
            assert self.http.delete(url, timeout=10).status_code == 200

    # -- people changing data ------------------------------------------------------------

    def change_data(self) -> None:
        """What people do between two cycles, on both sides."""
        rng, jira, sf = self.rng, self.box.jira, self.box.salesforce
        with self.box.jira_app.lock, self.box.salesforce_app.lock:
            keys = sorted(jira.issues)
            accounts = [str(a["Id"]) for a in sf.records("Account")]
            for key in rng.sample(keys, 3):
                status = rng.choice(STATUSES)
                jira.update_issue(key, status=status)
                self.note(f"moved {key} to {status}")
            key = rng.choice(keys)
            due = date.today() + timedelta(days=rng.randint(-20, 40))
            jira.update_issue(key, summary=f"Edited by the soak {rng.random():.6f}", due=due)
            self.note(f"edited {key} (due {due})")
            project = rng.choice(sorted({jira.issues[k].project_key for k in keys}))
            created = jira.create_issue(
                project,
                "Created by the soak",
                account_id=rng.choice(accounts),
                due=date.today() + timedelta(days=rng.randint(-5, 30)),
            )
            self.note(f"created {created.key}")
            doomed = rng.choice([k for k in keys if jira.issues[k].issue_type != "Epic"])
            jira.delete_issue(doomed)
            self.note(f"deleted {doomed}")
            account = rng.choice(accounts)
            csat = round(rng.uniform(1.5, 5.0), 1)
            sf.update_record("Account", account, CSAT__c=csat)
            self.note(f"CSAT of {account} now {csat}")
            open_cases = [c for c in sf.records("Case") if not c.get("IsClosed")]
            if open_cases:
                case = rng.choice(open_cases)
                escalate = not case.get("IsEscalated")
                sf.update_record("Case", str(case["Id"]), IsEscalated=escalate)
                self.note(f"case {case['Id']} escalated={escalate}")

    def delete_an_account(self) -> None:
        """Once: a customer with linked work leaves the CRM."""
        want = expected(self.box, datetime.now(UTC).date())
        linked = sorted({a for accounts in want.links.values() for a in accounts})
        account = self.rng.choice(linked)
        with self.box.salesforce_app.lock:
            self.box.salesforce.delete_record("Account", account)
        self.deleted_account = account
        self.note(f"deleted account {account}")

    def reject_some(self) -> None:
        """A validation rule rejects the report records of two (project, account) pairs."""
        want = expected(self.box, datetime.now(UTC).date())
        self.victims = set(self.rng.sample(sorted(want.reports), 2))
        victims = frozenset(self.victims)

        def frozen(record: dict[str, Any]) -> bool:
            return record.get(EXTERNAL_ID) in victims

        with self.box.salesforce_app.lock:
            self.box.salesforce.add_validation_rule(REPORT, frozen, RULE)
        self.note(f"validation rule rejects {sorted(victims)}")

    # -- the CLI --------------------------------------------------------------------------

    def run(self, *args: str, allowed: tuple[int, ...]) -> tuple[int, str]:
        """The real CLI (typer's app, in this process: no interpreter start eats the
        budget; an exception it lets escape fails the test): (exit code, stdout)."""
        try:
            code, out, err = cli_in_process(self.env, *args)
        except Exception as exc:
            raise AssertionError(f"`{' '.join(args)}` raised {exc!r}; {self.context()}") from exc
        self.note(f"`{' '.join(args)}` exit {code}: {err.strip()[-300:]}")
        assert code in allowed, self.context()
        assert "Traceback" not in err, self.context()
        return code, out


@pytest.fixture
def soak(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[Soak]:
    rng = random.Random(SEED)
    box = make_sandbox(150, 20, seed=rng.randrange(1000), anchor=ANCHOR)
    env = SyncEnv(box, tmp_path, store_url, tls)
    # Short client timeouts and few retries: faults cost seconds, not minutes.
    env.edit_config("max_retries = 3", "max_retries = 1")
    env.edit_config("timeout_seconds = 30", "timeout_seconds = 5")
    try:
        yield Soak(box, env, rng)
    finally:
        env.close()


def test_a_fault_soak_loses_nothing_and_doubles_nothing(soak: Soak) -> None:
    box = soak.box
    deadline = time.monotonic() + SHARE
    stop = threading.Event()
    failures: list[BaseException] = []

    def inject() -> None:
        try:
            soak.inject_until(stop)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    injector = threading.Thread(target=inject, name="soak-faults", daemon=True)
    cycles: list[int] = []
    spent = 0.0
    injector.start()
    try:
        # A cycle starts while one more of the usual length fits in this store's share
        # (the first two always: the bound must leave room for the rule and a deletion).
        while len(cycles) < 2 or (
            time.monotonic() + spent / len(cycles) < deadline
            and calls(box).reads + calls(box).writes < CALL_BOUND
        ):
            if len(cycles) == 1:
                soak.reject_some()
            if len(cycles) == 2:
                soak.delete_an_account()
            started = time.monotonic()
            cycles.append(soak.run("run", allowed=(0, 1, 3))[0])
            spent += time.monotonic() - started
            soak.change_data()
    finally:
        stop.set()
        injector.join(timeout=30)
    assert not failures, f"{failures!r}; {soak.context()}"
    if not soak.victims:  # a very short bound: the rule still gets its say
        soak.reject_some()
    soak.faults_off()

    # Faults off: one more cycle (exit 1 while the rule still rejects its records). A full
    # one: Jira deletes show only in the key scan, hourly in incremental cycles (SPEC 7).
    result = json.loads(soak.run("run", "--full", "--json", allowed=(0, 1))[1])
    today = datetime.now(UTC).date()
    report = json.loads(soak.run("reconcile", "--json", allowed=(0, 1))[1])
    status = json.loads(soak.run("status", "--json", allowed=(0,))[1])
    context = f"cycles {cycles}; rejected {sorted(soak.victims)}; {soak.context()}"

    # Every rejected record is accounted for: parked with the rule's error, or written.
    parked = {p["record"]: p for p in report["parked"]}
    want = expected(box, today)
    remote = report_counts(box)
    for victim in soak.victims & set(want.reports):
        if victim in parked:
            assert RULE in (parked[victim]["error"] or ""), context
        else:
            assert remote.get(victim) == want.reports[victim], context
    for key, entry in parked.items():
        if entry["side"] == "jira":
            # A write queued for an issue a person deleted before it was sent: Jira answers
            # 404 to its PUT, or names it among a bulk edit's failed issues, and the write
            # is parked with that error (SPEC 7: nothing dropped silently).
            assert key not in box.jira.issues, f"{entry}; {context}"
            error = entry["error"] or ""
            assert "does not exist" in error or error == INVALID, f"{entry}; {context}"
        else:
            assert key in soak.victims, f"parked beyond the rejected: {entry}; {context}"
    assert {p["record"] for p in status["parked"]} == set(parked), context
    # Exit 1 says this run parked something; a write parked earlier and still waiting out
    # its backoff stays parked (listed above) while the run itself exits 0.
    assert result["exit_code"] != 1 or parked, context

    # reconcile: no duplicates; drift only where a rejected record is parked.
    assert report["duplicates"] == [], context
    drifted = {(d["side"], d["record"]) for d in report["drift"]}
    assert drifted <= {("crm", victim) for victim in parked}, (
        f"{drifted}; drift {report['drift']}; parked {parked}; {context}"
    )

    # Independently of reconcile: SPEC section 6 for every record not rejected.
    for key in sorted(set(want.reports) - soak.victims):
        assert remote.get(key) == want.reports[key], f"report {key}; {context}"
    assert labelled(box) == want.labelled, context
    state = remote_state(box)
    assert state.report_records == len(state.reports), context  # one record per external id
    assert duplicate_comments(box) == {}, context
