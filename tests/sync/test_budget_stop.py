"""A cycle the API budget stops says so (SPEC section 7: it exits 0 and resumes): which
side's budget, per cycle or per day, the writes left queued and when the work resumes, in
`run` text and `run --json` (``budget``), with what was pulled before the stop still
counted; `status` shows a spent daily budget. The commands run in-process (typer's
runner) over the HTTPS sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.server import Tls
from sync.store import repo
from tests.sync.e2e import ANCHOR, SyncEnv, make_sandbox, sync_env
from tests.sync.e2e import cli_in_process as cli


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    box = make_sandbox(150, 20, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, store_url, tls) as opened:
        yield opened


def _queued(env: SyncEnv) -> int:
    with env.store.read() as conn:
        counts = repo.counts(conn)
    return counts["pending"] + counts["inflight"]


def test_a_run_the_cycle_budget_stops_says_which_what_is_left_and_when(env: SyncEnv) -> None:
    # One PUT per issue (no Bulk Change permission: the first bulk edit is refused): 6
    # reads, the refused submit and 3 of the first sync's PUTs fit; the rest waits for
    # later cycles. (A budget stop inside a bulk edit: tests/sync/test_e2e_failures.py.)
    env.box.jira.denied_permissions.add("BULK_CHANGE")
    env.edit_config("jira_calls_per_cycle = 5000", "jira_calls_per_cycle = 10")

    code, out, err = cli(env, "run", "--json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert doc["status"] == "budget"
    assert doc["pulled"]["jira_issues"] == len(env.box.jira.issues)
    queued = _queued(env)
    assert queued > 0 and doc["written"]["jira_issues"] + queued == doc["planned"]["jira_issues"]
    stop = doc["budget"]
    assert (stop["stopped"], stop["side"], stop["limit"]) == (True, "jira", "per_cycle")
    assert (stop["setting"], stop["allowed"], stop["stage"]) == ("jira_calls_per_cycle", 10, "push")
    assert stop["queued_writes"] == queued and stop["resumes"] == "next cycle"
    assert stop["resumes_at"] is None
    assert doc["message"] == (
        "stopped by the Jira API budget per cycle ([limits] jira_calls_per_cycle = 10) during "
        f"the push; {queued} write(s) left queued; resumes next cycle"
    )

    # A budget below what is queued, so this cycle stops too whatever the world holds.
    env.edit_config("jira_calls_per_cycle = 10", "jira_calls_per_cycle = 4")
    assert queued > 4
    code, text, err = cli(env, "run")
    assert (code, err) == (0, "")
    left = _queued(env)
    assert (
        "budget: stopped by the Jira API budget per cycle ([limits] jira_calls_per_cycle = 4) "
        f"during the push; {left} write(s) left queued; resumes next cycle"
    ) in text

    env.edit_config("jira_calls_per_cycle = 4", "jira_calls_per_cycle = 5000")
    code, out, _err = cli(env, "run", "--json")
    finished = json.loads(out)
    assert (code, finished["status"], _queued(env)) == (0, "ok", 0)
    assert finished["budget"]["stopped"] is False
    assert set(finished["budget"]["left_today"]) == {"jira", "salesforce"}


def test_a_daily_budget_stop_keeps_what_was_pulled_and_resumes_at_midnight_utc(
    env: SyncEnv,
) -> None:
    # Sign-in and three describes fit; the pull's one Composite call does not.
    env.edit_config("crm_calls_per_day = 100000", "crm_calls_per_day = 4")
    before = datetime.now(UTC)

    code, text, err = cli(env, "run")
    assert (code, err) == (0, "")
    # The Jira pull stored its issues before the CRM side ran out: they count.
    assert text.startswith(f"pulled: {len(env.box.jira.issues)} jira_issues\n"), text
    midnight = datetime.combine(before.date() + timedelta(days=1), datetime.min.time(), UTC)
    assert (
        "budget: stopped by the Salesforce API budget per day ([limits] crm_calls_per_day = 4) "
        "during the pull; 0 write(s) left queued; resumes at 00:00 UTC "
        f"({midnight:%Y-%m-%d %H:%M}Z), when the day's budget resets"
    ) in text

    code, out, _err = cli(env, "run", "--json")
    doc = json.loads(out)
    assert (code, doc["status"]) == (0, "budget")
    assert doc["budget"]["limit"] == "per_day"
    assert doc["budget"]["left_today"]["salesforce"] == 0
    assert datetime.fromisoformat(doc["budget"]["resumes_at"]) == midnight

    code, out, _err = cli(env, "status", "--json")
    side = json.loads(out)["budget"]["salesforce"]
    assert (side["left"], datetime.fromisoformat(side["resumes_at"])) == (0, midnight)
    assert side["state"].startswith("spent: cycles resume at")
    assert "spent: cycles resume at" in cli(env, "status")[1]


def test_a_cycle_counts_running_cycles_reservations_and_releases_a_dead_ones(
    env: SyncEnv,
) -> None:
    # A cycle of another worker reserved all but 3 of the day's Jira calls and then its
    # process went (its run still reads running). A dry run (which marks no run) leaves
    # that reservation to it: the pull's reads do not fit in the 3 calls left.
    today = datetime.now(UTC).date()
    with env.store.transaction() as tx:
        dead = repo.start_run(tx, "serve@elsewhere:4242")
        repo.reserve_calls(tx, dead, "jira", today, per_cycle=99997, per_day=100000)
    code, out, _err = cli(env, "run", "--dry-run", "--json")
    doc = json.loads(out)
    assert (code, doc["status"], doc["budget"]["limit"]) == (0, "budget", "per_day")
    assert doc["calls"]["jira"]["total"] == 3

    # A real cycle marks that run interrupted first, which releases its reservation; its
    # own, replaced by the calls it made at its end, is all the day then counts.
    code, out, _err = cli(env, "run", "--json")
    doc = json.loads(out)
    assert (code, doc["status"], doc["budget"]["stopped"]) == (0, "ok", False)
    with env.store.read() as conn:
        run = repo.get_run(conn, dead)
        assert run is not None and run.status == "interrupted"
        assert repo.reserved_today(conn, "jira", today) == 0
        assert repo.calls_today(conn, "jira", today) == doc["calls"]["jira"]["total"] > 3
        assert doc["budget"]["left_today"]["jira"] == 100000 - doc["calls"]["jira"]["total"]
