"""Link values that cannot be used are listed, never dropped silently: `run` (text and
--json), `status` (from the state store, replaced per project at each derive) and
`reconcile` show each work item, its reason naming the value (escaped), and the rule it
fell back to. Over the HTTPS sandbox; the commands run in-process (typer's runner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.schema import SF_ACCOUNT_PROJECT_KEY_FIELD as PROJECT_FIELD
from connectors.sandbox.server import Tls
from tests.sync.e2e import ANCHOR, SyncEnv, expected, make_sandbox, sync_env
from tests.sync.e2e import cli_in_process as cli

HOSTILE = "Acme\x1b[2J\nCorp"  # a terminal escape and a line break, pasted into Jira
UNKNOWN = "001Dn000000ZZZZ"  # a well-formed Id of no account


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    box = make_sandbox(150, 20, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, store_url, tls) as opened:
        yield opened


def _spoil(env: SyncEnv) -> tuple[dict[str, str], str, set[str]]:
    """Unlink one project (no account names it any more) and put bad link values on 12 of
    its issues, and one on an issue of a project an account names (linked by crm_field).
    Returns the values by issue key, that second project, and every issue that is now
    a link problem (the unlinked ones of the first project, and that one)."""
    issues = env.box.jira.issues
    lonely, covered = sorted({issue.project_key for issue in issues.values()})[:2]
    for account in env.box.salesforce.records("Account"):
        keys = [k.strip() for k in str(account.get(PROJECT_FIELD) or "").split(",") if k.strip()]
        if lonely in keys:
            rest = ",".join(k for k in keys if k != lonely) or None
            env.box.salesforce.update_record("Account", account["Id"], **{PROJECT_FIELD: rest})
    # In Jira's order (by number), as run lists them.
    ordered = sorted(issues, key=lambda k: (issues[k].project_key, int(k.rsplit("-", 1)[1])))
    stories = [k for k in ordered if issues[k].issue_type != "Epic"]
    values = {
        key: f"Acme Corp {n}"
        for n, key in enumerate([k for k in stories if issues[k].project_key == lonely][:12])
    }
    values[next(iter(values))] = HOSTILE
    # One without sub-tasks: they would inherit the value, each a problem of its own.
    parents = {issue.parent_key for issue in issues.values()}
    values[next(k for k in stories if issues[k].project_key == covered and k not in parents)] = (
        UNKNOWN
    )
    for key, value in values.items():
        env.box.jira.update_issue(key, account_id=value)
    want = expected(env.box, datetime.now(UTC).date())
    unlinked = {k for k, i in issues.items() if i.project_key == lonely and k not in want.links}
    assert set(values) - unlinked == {next(k for k, v in values.items() if v == UNKNOWN)}
    return values, covered, unlinked | set(values)


def _by_item(problems: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["item"]: p for p in problems if p["item"] is not None}


def test_link_problems_are_listed_by_run_status_and_reconcile(env: SyncEnv) -> None:
    values, covered, problems = _spoil(env)
    total = len(problems)
    hostile_key = next(k for k, v in values.items() if v == HOSTILE)
    unknown_key = next(k for k, v in values.items() if v == UNKNOWN)

    code, text, err = cli(env, "run")
    assert code == 0, err
    assert f"link problems: {total} " in text
    assert "\x1b" not in text  # the pasted escape is shown escaped, never sent raw
    shown = [line for line in text.splitlines() if line.startswith("  ") and "): " in line]
    assert len(shown) == 10 and f"  ... and {total - 10} more; `jira-crm-sync status` lists" in text
    lonely = hostile_key.rsplit("-", 1)[0]
    assert shown[0] == f"  {hostile_key} ({lonely}): invalid account id {HOSTILE!r}; left unlinked"

    code, out, err = cli(env, "run", "--full", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["link_problems"] == total  # the count scripts read, as before
    listed = _by_item(doc["link_problem_list"])
    assert set(listed) == problems
    assert listed[hostile_key]["reason"] == f"invalid account id {HOSTILE!r}"
    assert listed[hostile_key]["linked_by"] is None
    assert listed[unknown_key] == {
        "project": covered,
        "item": unknown_key,
        "reason": f"unknown account id {UNKNOWN}",
        "linked_by": "crm_field",
    }
    for key, value in values.items():
        if value.startswith("Acme Corp "):
            assert repr(value) in listed[key]["reason"]

    code, out, err = cli(env, "status", "--json")
    assert (code, err) == (0, "")
    status = json.loads(out)
    assert status["link_problems_total"] == total
    stored = _by_item(status["link_problems"])
    assert {k: (p["reason"], p["linked_by"]) for k, p in stored.items()} == {
        k: (p["reason"], p["linked_by"]) for k, p in listed.items()
    }
    code, out, _err = cli(env, "status")
    assert code == 0 and "Link problems" in out and "\x1b" not in out
    line = next(row for row in out.splitlines() if unknown_key in row and UNKNOWN in row)
    assert "crm_field" in line

    # Mended in Jira: the next run derives that project again and replaces its problems.
    good = next(str(a["Id"]) for a in env.box.salesforce.records("Account"))
    env.box.jira.update_issue(unknown_key, account_id=good)
    assert cli(env, "run")[0] == 0
    status = json.loads(cli(env, "status", "--json")[1])
    assert status["link_problems_total"] == total - 1
    assert unknown_key not in _by_item(status["link_problems"])

    code, out, err = cli(env, "reconcile", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["counts"]["link_problems"] == total - 1
    assert set(_by_item(report["link_problems"])) == problems - {unknown_key}
    code, out, _err = cli(env, "reconcile")
    assert f"link problems (values that could not be used): {total - 1}" in out
    assert "\x1b" not in out
