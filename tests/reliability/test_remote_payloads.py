"""Malformed answers from either remote, through the real `run` over the HTTPS sandbox.

Each case makes one side answer garbled (the sandbox's content faults: a truncated body,
a proxy's HTML page with 502 or 200, an empty 200, invalid UTF-8, nulls where fields
belong, a value of the wrong type, huge fields, a search page without its paging fields).
Property: the run either handles it (exit 0), sets the records it cannot read aside and
says so (exit 1), or exits 3 with ONE line naming the side, the endpoint and what to do,
never a traceback; a failed run moves no cursor of that side; and a following clean run
converges on what SPEC section 6 says both sides must hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.store.schema import crm_accounts, jira_items
from tests.reliability.helpers import cli, cursor_values, one_error_line
from tests.sync.e2e import (
    ANCHOR,
    SyncEnv,
    expected,
    labelled,
    make_sandbox,
    report_counts,
    sync_env,
)

SEARCH = "/search/jql"
COMPOSITE = "/composite"
HUGE = 5_000_000


@dataclass(frozen=True)
class Case:
    """A fault on one side, and what the run must do with it."""

    id: str
    side: str
    fault: dict[str, Any]
    #: 3: refused with one line holding every ``says`` fragment; 1: the records it garbled
    #: were set aside (the line says so) and read again next cycle; 0: handled.
    exit: int
    says: tuple[str, ...] = ()
    #: The fault hits the pull: the failed run must leave that side's cursors alone.
    pull: bool = True
    #: The garbled value is of the right type and is stored as received (huge text,
    #: U+FFFD): the record holds it until it next changes, so reconcile, which reads
    #: afresh, shows the account's name in the report summary as drift until then.
    kept: bool = False


CASES = [
    Case("jira-truncated", "jira", {"kind": "truncated", "endpoint": SEARCH}, 3,
         ("GET /rest/api/2/search/jql", "not JSON", "proxy")),
    Case("jira-proxy-502-once", "jira", {"kind": "html", "endpoint": SEARCH}, 0),
    Case("jira-html-200", "jira", {"kind": "html", "status": 200, "endpoint": SEARCH}, 3,
         ("GET /rest/api/2/search/jql", "text/html", "[jira] url")),
    Case("jira-empty-200", "jira", {"kind": "empty", "endpoint": SEARCH}, 3,
         ("GET /rest/api/2/search/jql", "empty body")),
    Case("jira-no-issues", "jira", {"kind": "rewrite", "endpoint": SEARCH,
                                    "set": {"issues": None}}, 3, ("no issues list",)),
    Case("jira-fields-null", "jira", {"kind": "rewrite", "endpoint": SEARCH,
                                      "set": {"issues.*.fields": None}}, 1, ("set aside",)),
    Case("jira-status-null", "jira", {"kind": "rewrite", "endpoint": SEARCH,
                                      "set": {"issues.*.fields.status": None}}, 1,
         ("set aside", "status` lists them")),
    Case("jira-labels-null", "jira", {"kind": "rewrite", "endpoint": SEARCH,
                                      "set": {"issues.*.fields.labels": None}}, 1,
         ("set aside",)),
    Case("jira-no-paging", "jira", {"kind": "rewrite", "endpoint": SEARCH,
                                    "remove": ["isLast", "nextPageToken"]}, 3,
         ("no nextPageToken", "no cursor moved")),
    Case("jira-summary-null", "jira", {"kind": "rewrite", "endpoint": SEARCH,
                                       "set": {"issues.*.fields.summary": None,
                                               "issues.*.fields.priority": None}}, 0),
    Case("jira-huge-summary", "jira", {"kind": "rewrite", "endpoint": SEARCH,
                                       "set": {"issues.0.fields.summary": "长"},
                                       "repeat_to": HUGE}, 0),
    Case("jira-invalid-utf8", "jira", {"kind": "invalid_utf8", "endpoint": SEARCH,
                                       "key": "summary"}, 0),
    Case("sf-truncated", "salesforce", {"kind": "truncated", "endpoint": COMPOSITE}, 3,
         ("POST /services/data/v59.0/composite", "not JSON", "instance_url")),
    Case("sf-html-200", "salesforce", {"kind": "html", "status": 200, "endpoint": COMPOSITE},
         3, ("POST /services/data/v59.0/composite", "text/html")),
    Case("sf-empty-200", "salesforce", {"kind": "empty", "endpoint": COMPOSITE}, 3,
         ("POST /services/data/v59.0/composite",)),
    Case("sf-proxy-502-once", "salesforce", {"kind": "html", "endpoint": COMPOSITE}, 0),
    Case("sf-records-null", "salesforce", {"kind": "rewrite", "endpoint": COMPOSITE,
                                           "set": {"compositeResponse.*.body.records": None}},
         3, ("queryAll Account", "/composite", "records list")),
    Case("sf-id-null", "salesforce", {"kind": "rewrite", "endpoint": COMPOSITE,
                                      "set": {"compositeResponse.*.body.records.*.Id": None}},
         3, ("queryAll Account", "without Id")),
    Case("sf-modstamp-null", "salesforce",
         {"kind": "rewrite", "endpoint": COMPOSITE,
          "set": {"compositeResponse.*.body.records.*.SystemModstamp": None}},
         1, ("set aside",)),
    Case("sf-csat-text", "salesforce",
         {"kind": "rewrite", "endpoint": COMPOSITE,
          "set": {"compositeResponse.0.body.records.*.CSAT__c": "high"}},
         1, ("set aside",)),
    Case("sf-name-null-no-total", "salesforce",
         {"kind": "rewrite", "endpoint": COMPOSITE,
          "set": {"compositeResponse.*.body.records.*.Name": None},
          "remove": ["compositeResponse.*.body.totalSize"]}, 1, ("set aside",)),
    Case("sf-huge-name", "salesforce",
         {"kind": "rewrite", "endpoint": COMPOSITE,
          "set": {"compositeResponse.0.body.records.0.Name": "x"}, "repeat_to": HUGE // 5}, 0,
         kept=True),
    Case("sf-invalid-utf8", "salesforce", {"kind": "invalid_utf8", "endpoint": COMPOSITE,
                                           "key": "Name"}, 0, kept=True),
    Case("sf-upsert-answer-truncated", "salesforce",
         {"kind": "truncated", "endpoint": "/composite/sobjects/", "method": "PATCH"}, 3,
         ("PATCH /services/data/v59.0/composite/sobjects/Jira_Project_Status__c",), pull=False),
]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[SyncEnv]:
    """One served sandbox and SQLite store for the module, after a good full sync. Every
    test leaves it converged (its last step is a clean run that must converge), so each
    starts from where a healthy deployment would be."""
    directory = tmp_path_factory.mktemp("payloads")
    box = make_sandbox(60, 12, seed=2, anchor=ANCHOR)
    opened = SyncEnv(box, directory, f"sqlite:///{directory / 'state.db'}", tls)
    try:
        first = cli(str(opened.config_path), "run")
        assert first.exit_code == 0, first.stdout + first.stderr
        yield opened
    finally:
        opened.close()


@pytest.fixture
def env(served: SyncEnv) -> Iterator[SyncEnv]:
    """The module's environment, with no fault left over from a failed test."""
    served.box.jira_app.faults.clear()
    served.box.salesforce_app.faults.clear()
    yield served


def _control(box: Sandbox, side: str) -> str:
    assert box.endpoints is not None and box.endpoints.ca_bundle is not None
    base = box.endpoints.jira_url if side == "jira" else box.endpoints.salesforce_url
    return f"{base}/_sandbox/faults"


def _inject(box: Sandbox, side: str, fault: dict[str, Any]) -> None:
    """Through the documented control API, over HTTPS."""
    assert box.endpoints is not None
    answer = requests.post(
        _control(box, side), json=fault, verify=str(box.endpoints.ca_bundle), timeout=10
    )
    assert answer.status_code == 201, answer.text


def _fired(box: Sandbox, side: str) -> int:
    assert box.endpoints is not None
    answer = requests.get(_control(box, side), verify=str(box.endpoints.ca_bundle), timeout=10)
    return int(answer.json()["fired"])


def _change_both_sides(box: Sandbox) -> None:
    """Work the next run must carry over: an issue's status flips (so our label moves), a
    customer's CSAT flips between unhappy and happy (so their flag and labels move)."""
    linked = sorted(expected(box, datetime.now(UTC).date()).links)
    issue = next(box.jira.issue(k) for k in linked if box.jira.issue(k).issue_type != "Epic")
    box.jira.update_issue(issue.key, status="In Progress" if issue.status == "Done" else "Done")
    account = sorted(box.salesforce.records("Account"), key=lambda a: str(a["Id"]))[0]
    low = account.get("CSAT__c") is not None and account["CSAT__c"] < 3.5
    box.salesforce.update_record("Account", account["Id"], CSAT__c=4.8 if low else 1.5)


def _converged(box: Sandbox) -> None:
    want = expected(box, datetime.now(UTC).date())
    assert report_counts(box) == want.reports
    assert labelled(box) == want.labelled


def _no_drift(env: SyncEnv) -> None:
    """`reconcile` after the clean run: no drift, no duplicate, nothing left unreadable."""
    done = cli(str(env.config_path), "reconcile", "--json")
    assert done.exit_code == 0, done.stdout + done.stderr
    counts = json.loads(done.stdout)["counts"]
    doc = json.loads(done.stdout)
    assert (counts["drift"], counts["duplicates"], counts["unreadable"]) == (0, 0, 0), (
        doc["duplicates"],
        doc["drift"][:3],
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_malformed_answer_is_refused_in_one_line_or_handled_and_nothing_is_lost(
    env: SyncEnv, case: Case
) -> None:
    _change_both_sides(env.box)
    before = cursor_values(env.store, case.side)
    fired = _fired(env.box, case.side)
    _inject(env.box, case.side, {**case.fault, "count": 1})

    result = cli(str(env.config_path), "run")

    assert _fired(env.box, case.side) == fired + 1, "the fault never hit: it tests nothing"
    if case.exit == 0:
        assert result.exit_code == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        _converged(env.box)
    else:
        line = one_error_line(result, case.exit)
        if case.exit != 1:
            assert line.startswith(f"{case.side}: "), line
        for fragment in case.says:
            assert fragment in line, f"{fragment!r} not in {line!r}"
        assert len(line) < 1000, "the error line quotes the answer"
        if case.pull and case.exit != 1:
            assert cursor_values(env.store, case.side) == before, "a cursor moved"
    again = cli(str(env.config_path), "run")
    assert again.exit_code == 0, again.stdout + again.stderr
    _converged(env.box)
    if not case.kept:
        _no_drift(env)


def test_huge_and_invalid_text_is_stored_as_received(env: SyncEnv) -> None:
    """A handled record is kept whole: a 100k-character summary, U+FFFD for bytes that
    are not UTF-8."""
    key = sorted(env.box.jira.issues)[0]
    long_summary = "长" * 100_000
    env.box.jira.update_issue(key, summary=long_summary)
    account = sorted(env.box.salesforce.records("Account"), key=lambda a: str(a["Id"]))[-1]
    env.box.salesforce.update_record("Account", account["Id"], Name="Ünïcode")
    _inject(env.box, "salesforce", {"kind": "invalid_utf8", "endpoint": COMPOSITE, "key": "Name"})
    result = cli(str(env.config_path), "run")
    assert result.exit_code == 0, result.stdout + result.stderr
    with env.store.read() as conn:
        data = conn.execute(sa.select(jira_items.c.data).where(jira_items.c.key == key)).scalar()
        name = conn.execute(
            sa.select(crm_accounts.c.data).where(crm_accounts.c.id == account["Id"])
        ).scalar()
    assert data["fields"]["summary"] == long_summary
    assert name["name"].startswith("\ufffd") and name["name"].endswith("Ünïcode"), name
    env.box.jira.update_issue(key, summary="short again")
    assert cli(str(env.config_path), "run").exit_code == 0


def test_an_html_page_at_first_contact_names_jira_and_the_endpoint(
    tmp_path: Path, tls: Tls
) -> None:
    """A captive proxy answering serverInfo with a login page (a fresh store: no cache)."""
    box = make_sandbox(10, 2, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls) as fresh:
        _inject(box, "jira", {"kind": "html", "status": 200, "endpoint": "/serverInfo"})
        line = one_error_line(cli(str(fresh.config_path), "run"), 3)
    assert line.startswith("jira: "), line
    assert "GET /rest/api/2/serverInfo, HTTP 200, text/html" in line, line


@pytest.mark.parametrize(
    ("fault", "refusal"),
    [
        ({"kind": "rewrite"}, "needs 'set'"),
        ({"kind": "html", "status": 700}, "'status'"),
        ({"kind": "rewrite", "set": ["x"]}, "'set' is an object"),
        ({"kind": "rewrite", "set": {"a": "x"}, "repeat_to": 0}, "'repeat_to'"),
    ],
)
def test_the_control_api_refuses_a_malformed_content_fault(
    env: SyncEnv, fault: dict[str, Any], refusal: str
) -> None:
    assert env.box.endpoints is not None
    answer = requests.post(
        _control(env.box, "jira"), json=fault, verify=str(env.box.endpoints.ca_bundle), timeout=10
    )
    assert answer.status_code == 400 and refusal in answer.json()["error"], answer.text
