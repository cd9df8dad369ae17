"""A search whose JQL would make the GET URL too long goes as the endpoint's POST form.

Proxies and servers in front of Jira refuse request lines over 8 KB (the sandbox answers
414 past 8,192 characters, as they do); a scope of hundreds of projects or a long
``[jira] jql`` gets there. The connector then POSTs the same parameters as a JSON body
(``POST /search/jql`` on Cloud, ``POST /search`` on Server/Data Center): the body must
match Atlassian's request schema, and the call meter and the sandbox must count it as a
read. Short searches stay GETs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connectors.jira import jira_meter
from connectors.jira.connector import MAX_GET_URL
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import FIELDS, connector_for, pull_all

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)
SPEC_PATH = Path(__file__).parents[1] / "reference" / "jira-cloud-openapi-v3.json"
#: An extra clause of 450 retired labels: about 6,800 characters of JQL, over 9,000 once
#: URL-encoded (within the 10,000 characters `[jira] jql` allows); it matches every issue.
RETIRED = ", ".join(f'"retired-{n:03d}"' for n in range(450))
LONG_CLAUSE = f"labels is EMPTY OR labels not in ({RETIRED})"


@pytest.fixture(scope="module")
def registry() -> Registry:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return Registry().with_resource(
        "urn:jira", Resource.from_contents(spec, default_specification=DRAFT202012)
    )


def schema_errors(registry: Registry, body: Any, bean: str) -> list[str]:
    ref = {"$ref": f"urn:jira#/components/schemas/{bean}"}
    validator = Draft202012Validator(ref, registry=registry)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]


@pytest.fixture(params=["cloud", "server"])
def box(request: pytest.FixtureRequest) -> Iterator[tuple[Sandbox, str, responses.RequestsMock]]:
    sandbox = Sandbox(issues=450, accounts=10, seed=7, anchor=ANCHOR, jira_mode=request.param)
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    with mock, sandbox.in_process(mock) as ends:
        yield sandbox, ends.jira_url, mock


def test_a_long_scope_is_searched_by_post_and_counted_as_reads(
    box: tuple[Sandbox, str, responses.RequestsMock], registry: Registry
) -> None:
    sandbox, url, mock = box
    meter = jira_meter()
    connector = connector_for(sandbox, url, meter=meter, jql=LONG_CLAUSE)
    issues, cursor, _ = pull_all(connector)
    keys = {key for page in connector.list_keys() for _, key in page}

    n = len(sandbox.jira.issues)
    assert len(issues) == n and {i["key"] for i in issues} == keys == set(sandbox.jira.issues)
    assert cursor is not None
    cloud = sandbox.jira_mode == "cloud"
    endpoint = "/rest/api/2/search/jql" if cloud else "/rest/api/2/search"
    stats = sandbox.jira_app.stats.snapshot()
    pages = math.ceil(n / 100) if cloud else 1  # Server pages 1000; keys-only 5000
    assert stats["by_endpoint"][f"POST {endpoint}"] == pages + 1
    assert f"GET {endpoint}" not in stats["by_endpoint"]
    assert stats["writes"] == 0
    assert meter.snapshot() == stats  # our meter counts the POSTs as reads, as the site does

    posted = [c.request for c in mock.calls if c.request.method == "POST"]
    assert len(posted) == pages + 1
    bean = "SearchAndReconcileRequestBean" if cloud else "SearchRequestBean"
    for request in posted:
        body = json.loads(request.body)
        assert not schema_errors(registry, body, bean)
        assert LONG_CLAUSE in body["jql"]
        assert isinstance(body["fields"], list)
    first = json.loads(posted[0].body)
    assert set(first["fields"]) == {*FIELDS, "updated"}
    assert "nextPageToken" not in first
    if cloud:
        assert [bool(json.loads(r.body).get("nextPageToken")) for r in posted[1:pages]] == [
            True
        ] * (pages - 1)


def test_a_short_scope_stays_a_get(box: tuple[Sandbox, str, responses.RequestsMock]) -> None:
    sandbox, url, mock = box
    connector = connector_for(sandbox, url)
    pull_all(connector)
    searches = [c.request for c in mock.calls if "/search" in (c.request.url or "")]
    assert searches and all(r.method == "GET" for r in searches)
    assert all(len(r.url or "") <= MAX_GET_URL for r in searches)


def test_the_sandbox_refuses_the_long_get_as_a_front_end_does(
    box: tuple[Sandbox, str, responses.RequestsMock],
) -> None:
    sandbox, url, _ = box
    c = sandbox.credentials
    auth = (c.jira_email, c.jira_api_token) if sandbox.jira_mode == "cloud" else None
    headers = {} if auth else {"Authorization": f"Bearer {c.jira_pat}"}
    path = "search/jql" if sandbox.jira_mode == "cloud" else "search"
    answer = requests.get(
        f"{url}/rest/api/2/{path}",
        params={"jql": LONG_CLAUSE, "fields": "summary"},
        auth=auth,
        headers=headers,
    )
    assert answer.status_code == 414
