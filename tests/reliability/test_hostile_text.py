"""Text built to break JQL/SOQL quoting or an HTML page, seeded into the sandbox world and
synced through the real `run`, on SQLite and PostgreSQL. Property: no record's text ever
reaches a query (every JQL and SOQL sent is recorded at the sandbox), the pull reads the
scope and nothing more, the state store holds the text exactly, the sync converges, and
the HTML report escapes it. Plus: SOQL quoting of any text round-trips through the
sandbox's own SOQL parser as one literal (JQL's twin is tests/connectors/test_jql.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import soql
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.salesforce import soql as sandbox_soql
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.store.schema import crm_accounts, jira_items
from tests.reliability.helpers import cli
from tests.sync.e2e import ANCHOR, SyncEnv, expected, labelled, make_sandbox, report_counts

HOSTILE = [
    "x' OR Name != '",
    '" OR project is not EMPTY OR summary ~ "',
    "back\\slash \\' \\\" end\\",
    "line\nbreak\r\ttab",
    "“unicode quotes” ‘and’ ＂fullwidth＂",
    "华信科技有限公司（北京）",
    "עברית \u202eRTL override\u202c العربية",
    "<script>alert('x')</script> & </td></tr>",
    "nul\x00byte",
    "%_wild*card?",
]
#: Jira labels cannot hold spaces; these keep the quoting hazards without them.
HOSTILE_LABELS = ["x'OR'Name!='", '"OR"project', "back\\slash", "华信", "<b>bold</b>"]


def _seed(box: Sandbox) -> dict[str, str]:
    """Put the hostile text into account names, the project-key link field of an account,
    issue summaries, labels and one issue's account link; returns {record: text}."""
    seeded: dict[str, str] = {}
    accounts = sorted(box.salesforce.records("Account"), key=lambda a: str(a["Id"]))
    for account, text in zip(accounts, HOSTILE, strict=False):
        box.salesforce.update_record("Account", account["Id"], Name=text)
        seeded[f"account:{account['Id']}"] = text
    box.salesforce.update_record("Account", accounts[-1]["Id"], Jira_Project_Key__c=HOSTILE[1])
    keys = sorted(box.jira.issues)
    for key, text in zip(keys, HOSTILE, strict=False):
        box.jira.update_issue(key, summary=text)
        seeded[f"issue:{key}"] = text
    box.jira.update_issue(keys[-1], labels=HOSTILE_LABELS)
    box.jira.update_issue(keys[-2], account_id=HOSTILE[0])
    return seeded


class QueryLog:
    """Every JQL and SOQL text the sandbox received."""

    def __init__(self, box: Sandbox) -> None:
        self.jql: list[str] = []
        self.soql: list[str] = []
        for app, sink in ((box.jira_app, self.jql), (box.salesforce_app, self.soql)):
            app.handle = self._wrap(app.handle, sink)  # type: ignore[method-assign]

    @staticmethod
    def _wrap(handle: object, sink: list[str]) -> object:  # (SandboxRequest) -> SandboxResponse
        def recording(request: SandboxRequest) -> SandboxResponse:
            sink.extend(request.query.get("jql", []))
            sink.extend(request.query.get("q", []))
            if request.path.endswith("/composite") and request.body:
                for sub in (request.json() or {}).get("compositeRequest", []):
                    sink.extend(parse_qs(urlsplit(sub.get("url", "")).query).get("q", []))
            return handle(request)  # type: ignore[operator, no-any-return]

        return recording


@pytest.fixture
def env(store_url: str, tmp_path: Path, tls: Tls) -> Iterator[tuple[SyncEnv, dict[str, str]]]:
    box = make_sandbox(60, 12, seed=2, anchor=ANCHOR)
    seeded = _seed(box)
    opened = SyncEnv(box, tmp_path, store_url, tls)
    try:
        yield opened, seeded
    finally:
        opened.close()


def test_hostile_text_never_reaches_a_query_and_is_stored_exactly(
    env: tuple[SyncEnv, dict[str, str]], tmp_path: Path
) -> None:
    sync, seeded = env
    log = QueryLog(sync.box)

    result = cli(str(sync.config_path), "run", "--full", "--json")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert log.jql and log.soql, "no query was recorded: the test would prove nothing"
    for query in log.jql + log.soql:
        for text in [*HOSTILE, *HOSTILE_LABELS]:
            assert text not in query, f"record text reached a query: {query!r}"
    # The pull read exactly the scope: every issue once, nothing outside the projects.
    with sync.store.read() as conn:
        stored = {
            row.key: row.data
            for row in conn.execute(sa.select(jira_items.c.key, jira_items.c.data))
        }
        names = {
            row.id: row.data.get("name")  # the CRM-neutral record the store keeps
            for row in conn.execute(sa.select(crm_accounts.c.id, crm_accounts.c.data))
        }
    assert set(stored) == set(sync.box.jira.issues)
    for record, text in seeded.items():
        kind, ident = record.split(":", 1)
        if kind == "issue":
            assert stored[ident]["fields"]["summary"] == text
        else:
            assert names[ident] == text
    last = sorted(sync.box.jira.issues)[-1]
    assert stored[last]["fields"]["labels"] == HOSTILE_LABELS
    want = expected(sync.box, datetime.now(UTC).date())
    assert report_counts(sync.box) == want.reports
    assert labelled(sync.box) == want.labelled

    page = tmp_path / "report.html"
    report = cli(str(sync.config_path), "report", "--format", "html", "-o", str(page))
    assert report.exit_code == 0, report.stdout + report.stderr
    html = page.read_text(encoding="utf-8")
    # The account named <script>...</td></tr> has a linked project: its name is shown,
    # escaped, and never as markup.
    assert "&lt;script&gt;alert(" in html and "&amp; &lt;/td&gt;&lt;/tr&gt;" in html
    assert "<script>alert(" not in html and "& </td></tr>" not in html


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_any_text_round_trips_through_the_sandbox_soql_parser_as_one_literal(
    value: str,
) -> None:
    query = soql.select("Account", ["Id"], where=soql.compare("Name", "=", value))
    parsed = sandbox_soql.parse(query)
    where = parsed.where
    assert isinstance(where, sandbox_soql.Compare), "the value changed the query's shape"
    assert where.path.text == "Name" and where.op == "="
    assert where.value.kind == "string"
    assert sandbox_soql.string_value(where.value.raw) == value
