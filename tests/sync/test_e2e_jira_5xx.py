"""Jira 5xx during a cycle, through the engine in-process against the HTTPS sandbox (the
connector's sleep patched): a 502 on a search page is retried and the cycle pulls
everything; a PUT that posts a flag comment answered 500 (refused) or 502 after Jira
applied it is re-sent only with what the issue's comments do not show yet; when that
read-back fails too, the cycle ends and the next one finishes the write. Every case ends
in the remote state of a twin run without faults, with no comment posted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.faults import Fault
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cycle.engine import CycleOptions, CycleResult, Engine
from sync.remote import build_remotes
from tests.sync.e2e import (
    JIRA_COMMENTS,
    JIRA_PUT,
    JIRA_SEARCH,
    Calls,
    RemoteState,
    SyncEnv,
    calls,
    duplicate_comments,
    expected,
    in_process_env,
    remote_state,
    reset_calls,
)


def cycle(env: SyncEnv, slept: list[float]) -> CycleResult:
    """One cycle in-process, the Jira connector's waits recorded instead of slept."""
    reset_calls(env.box)
    remotes = build_remotes(env.config)
    remotes.jira._sleep = slept.append
    return Engine(env.config, env.store, remotes, clock=env.clock).run(CycleOptions())


def change(box: Sandbox, today: date) -> None:
    """A linked customer's CSAT drops below the at-risk line: its open issues get the
    label and a flag comment in one PUT each."""
    want = expected(box, today)
    linked = {a for accounts in want.links.values() for a in accounts}
    customer = min(linked - want.at_risk)
    box.salesforce.update_record("Account", customer, CSAT__c=2.0)


def run(
    env: SyncEnv, faults: list[dict[str, Any]]
) -> tuple[CycleResult, CycleResult, Calls, list[float]]:
    """A first sync, the change, a cycle with ``faults`` (returned with the calls it
    made), and one more cycle; and every wait of the connector."""
    slept: list[float] = []
    first = cycle(env, slept)
    assert first.exit_code == 0, first.message
    env.clock.advance(minutes=10)
    change(env.box, env.clock().date())
    for spec in faults:
        env.box.jira_app.faults.add(Fault.from_json(spec))
    faulted = cycle(env, slept)
    made = calls(env.box)
    assert not env.box.jira_app.faults.active(), "a fault never hit: it tests nothing"
    env.clock.advance(minutes=10)
    after = cycle(env, slept)
    return faulted, after, made, slept


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> RemoteState:
    """The same steps without faults."""
    directory = tmp_path_factory.mktemp("reference")
    with in_process_env(f"sqlite:///{directory / 'state.db'}", directory, tls) as env:
        faulted, after, _made, _slept = run(env, [])
        assert (faulted.exit_code, after.exit_code) == (0, 0)
        assert faulted.written.get("jira_comments"), "the change posts no comment"
        return remote_state(env.box)


@pytest.fixture
def env(tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    with in_process_env(f"sqlite:///{tmp_path / 'state.db'}", tmp_path, tls) as opened:
        yield opened


PUT_REFUSED = {"kind": "500", "method": "PUT", "endpoint": "/issue/"}
PUT_APPLIED_THEN_502 = {"kind": "html", "method": "PUT", "endpoint": "/issue/"}
CASES = {
    # (faults of the middle cycle, its exit code, whether the comments were read back)
    "search-502": ([{"kind": "502", "endpoint": "/search/jql"}], 0, False),
    "put-refused-500": ([PUT_REFUSED], 0, True),
    "put-applied-then-502": ([PUT_APPLIED_THEN_502], 0, True),
    "put-applied-then-502-read-back-fails": (
        [PUT_APPLIED_THEN_502, {"kind": "html", "status": 200, "endpoint": "/comment"}],
        3,
        True,
    ),
}


@pytest.mark.parametrize(("faults", "code", "read_back"), CASES.values(), ids=CASES.keys())
def test_a_jira_5xx_is_retried_and_no_comment_is_posted_twice(
    env: SyncEnv,
    reference: RemoteState,
    faults: list[dict[str, Any]],
    code: int,
    read_back: bool,
) -> None:
    faulted, after, made, slept = run(env, faults)
    assert faulted.exit_code == code, faulted.message
    assert after.exit_code == 0, after.message
    assert (made.count(f"jira {JIRA_COMMENTS}") > 0) == read_back
    if code == 0:
        assert slept == [1.0]  # one retry, backed off by the connector
        assert made.count(f"jira {JIRA_SEARCH}") + made.count(f"jira {JIRA_PUT}") > 0
    else:
        assert "GET /rest/api/2/issue/" in faulted.message and "/comment" in faulted.message
    assert duplicate_comments(env.box) == {}
    assert remote_state(env.box).differences(reference) == []
