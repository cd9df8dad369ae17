"""The Jira half of the push (sync.cycle.push_jira) through whole cycles on the in-process
sandbox: label writes shared by many issues go as Jira Cloud bulk edits; without the Bulk
Change permission they go as one PUT each, four in flight, said once; an issue the bulk
edit fails on is parked with Jira's reason; a task a stopped run left is settled before
anything else is sent to its issues. (Crashes mid-task: tests/reliability/test_crash_matrix.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.jira.bulk import BulkEdit
from connectors.sandbox.server import Tls
from sync.cycle import push_jira
from sync.remote import build_remotes
from sync.store import repo
from tests.sync.e2e import SyncEnv, calls, expected, in_process_env, labelled, reset_calls

SUBMIT = "jira POST /rest/api/3/bulk/issues/fields"
POLL = "jira GET /rest/api/3/bulk/queue/{taskId}"
PUT = "jira PUT /rest/api/2/issue/{key}"


@pytest.fixture
def env(tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    with in_process_env(f"sqlite:///{tmp_path / 'state.db'}", tmp_path, tls) as opened:
        yield opened


def test_label_writes_go_as_one_bulk_edit_and_the_next_cycle_writes_nothing(
    env: SyncEnv,
) -> None:
    reset_calls(env.box)
    first = env.cycle()
    made = calls(env.box)
    want = expected(env.box, env.clock().date())
    assert labelled(env.box) == want.labelled and len(want.labelled) >= push_jira.BULK_MIN
    assert made.count(SUBMIT) == 1 and made.count(POLL) == 1  # done at the first read
    assert made.count(PUT) == 0
    assert first.written["jira_issues"] == len(want.labelled)
    assert first.written["jira_bulk_edits"] == 1 and first.notes == []
    assert env.box.jira.bulk.notifications == 0  # sendBulkNotification: false
    env.clock.advance(minutes=10)
    reset_calls(env.box)
    again = env.cycle()
    assert again.written.get("jira_issues", 0) == 0 and calls(env.box).count(SUBMIT) == 0


def test_without_the_bulk_change_permission_each_issue_is_one_put_and_the_run_says_so(
    env: SyncEnv,
) -> None:
    env.box.jira.denied_permissions.add("BULK_CHANGE")
    reset_calls(env.box)
    result = env.cycle()
    made = calls(env.box)
    want = expected(env.box, env.clock().date())
    assert labelled(env.box) == want.labelled
    # The run does not read the permission first: Jira refuses the one submit (403).
    assert made.count(SUBMIT) == 1 and made.count(PUT) == len(want.labelled)
    assert len(result.notes) == 1 and "Bulk Change permission" in result.notes[0]
    assert "one PUT each" in result.notes[0]
    assert result.failed == []


def test_an_issue_the_bulk_edit_fails_on_is_parked_with_jiras_reason_then_written(
    env: SyncEnv,
) -> None:
    want = expected(env.box, env.clock().date())
    victim = min(want.labelled)
    env.box.jira.bulk.refused[victim] = "The issue is locked by a workflow property."
    result = env.cycle()
    assert [f["record"] for f in result.failed] == [victim]
    assert result.failed[0]["error"] == "The issue is locked by a workflow property."
    assert labelled(env.box) == want.labelled - {victim}
    with env.store.read() as conn:
        assert [p.record_key for p in repo.parked(conn)] == [victim]
    env.box.jira.bulk.refused.clear()
    env.clock.advance(minutes=5)  # past the parked write's backoff
    assert env.cycle().failed == []
    assert labelled(env.box) == want.labelled


def test_a_task_a_stopped_run_left_is_settled_before_its_issues_get_anything_else(
    env: SyncEnv,
) -> None:
    """The first cycle's push is cut off after the submit (the task queued at Jira, its
    id recorded, its rows in flight): the next push reads the task's progress and
    settles the rows from it, with no second submit and no PUT."""
    want = expected(env.box, env.clock().date())
    env.box.jira.bulk.polls_to_complete = 3  # two reads see it RUNNING
    env.cycle(only="pull")
    remotes = build_remotes(env.config)
    jira = remotes.jira
    real_wait = jira.bulk.wait
    jira.bulk.wait = lambda task_id, **_: jira.bulk.progress(task_id)  # type: ignore[method-assign]
    from sync.cycle.engine import CycleOptions, Engine

    Engine(env.config, env.store, remotes, clock=env.clock).run(CycleOptions())
    with env.store.read() as conn:
        tasks = repo.bulk_tasks_open(conn, "jira")
        assert len(tasks) == 1 and set(tasks[0].record_keys) == want.labelled
        assert {e.state for e in repo.unfinished(conn)} == {"inflight"}
    assert labelled(env.box) == frozenset()  # queued, not run yet
    # A cycle while the task still runs sends nothing to its issues; its rows stay in
    # flight (a plan that no longer wanted them would treat them as maybe applied).
    env.clock.advance(minutes=10)
    reset_calls(env.box)
    Engine(env.config, env.store, remotes, clock=env.clock).run(CycleOptions())
    assert calls(env.box).count(SUBMIT) == calls(env.box).count(PUT) == 0
    with env.store.read() as conn:
        assert len(repo.bulk_tasks_open(conn, "jira")) == 1
        assert {e.state for e in repo.unfinished(conn)} == {"inflight"}
    jira.bulk.wait = real_wait  # type: ignore[method-assign]
    env.clock.advance(minutes=10)
    reset_calls(env.box)
    result = env.cycle()
    made = calls(env.box)
    assert made.count(SUBMIT) == 0 and made.count(PUT) == 0 and made.count(POLL) >= 1
    assert labelled(env.box) == want.labelled
    assert result.written["jira_issues"] == len(want.labelled)
    with env.store.read() as conn:
        assert repo.bulk_tasks_open(conn, "jira") == [] and repo.unfinished(conn) == []


def test_bulk_edits_are_grouped_by_identical_change() -> None:
    payload = BulkEdit(add_labels=("a",), text_field=("customfield_1", None)).payload(["1", "2"])
    assert payload == {
        "selectedIssueIdsOrKeys": ["1", "2"],
        "selectedActions": ["labels", "customfield_1"],
        "editedFieldsInput": {
            "labelsFields": [
                {
                    "fieldId": "labels",
                    "bulkEditMultiSelectFieldOption": "ADD",
                    "labels": [{"name": "a"}],
                }
            ],
            "singleLineTextFields": [{"fieldId": "customfield_1", "text": ""}],
        },
        "sendBulkNotification": False,
    }
    with pytest.raises(ValueError, match="not both"):
        BulkEdit(add_labels=("a",), remove_labels=("b",))


def test_per_issue_puts_run_a_few_at_once_and_are_recorded_in_outbox_order(
    env: SyncEnv,
) -> None:
    """The PUT fallback keeps up to WORKERS requests in flight (each on its own client),
    never more, and what it records and reports follows the outbox's order."""
    import threading
    import time

    env.box.jira.denied_permissions.add("BULK_CHANGE")
    want = expected(env.box, env.clock().date())
    rejected = sorted(want.labelled)[1::3]  # some PUTs refused (400), spread over chunks
    app = env.box.jira_app
    original = app.handle
    lock = threading.Lock()
    flight = {"now": 0, "most": 0}

    def handle(request):  # type: ignore[no-untyped-def]
        if request.method != "PUT":
            return original(request)
        with lock:
            flight["now"] += 1
            flight["most"] = max(flight["most"], flight["now"])
        try:
            time.sleep(0.02)  # long enough for the others to be sent meanwhile
            if request.path.rsplit("/", 1)[-1] in rejected:
                return env.box.jira.field_errors({"labels": "Field 'labels' is locked."})
            return original(request)
        finally:
            with lock:
                flight["now"] -= 1

    app.handle = handle  # type: ignore[method-assign]
    result = env.cycle()
    assert 1 < flight["most"] <= push_jira.WORKERS
    with env.store.read() as conn:
        queued = [e.record_key for e in repo.unfinished(conn)]  # by outbox id
    assert sorted(queued) == rejected
    assert [f["record"] for f in result.failed] == queued  # reported in outbox order
    assert labelled(env.box) == want.labelled - set(rejected)
