"""``expand`` on the Jira sandbox's searches and issue reads, as Jira answers it.

``transitions`` gives each issue what ``GET /issue/{key}/transitions`` lists;
``renderedFields`` an entry per requested field (HTML for rich text, display dates and
durations, null for the rest); ``names`` and ``schema`` go at the top of a search answer.
On GET and POST, API v2 and v3, Cloud (``/search/jql``) and Server (``/search``); POST
bodies of Atlassian's request schemas (``fields`` a list; ``expand`` a string on
``/search/jql``, a list on ``/search``), and nothing outside them. The unmodified ``jira``
client's ``search_issues(..., expand=...)`` sees it all, by GET and by POST.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from jira import JIRA
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.jira import JiraBackend
from connectors.sandbox.world import World, generate_world
from tests.sandbox.conftest import Transport

BASE = "https://sandbox.atlassian.net"
EMAIL, TOKEN, PAT = "expand@example.com", "expand-token", "expand-pat"
SPEC_PATH = Path(__file__).parents[1] / "reference" / "jira-cloud-openapi-v3.json"
FIELDS = [
    "summary",
    "status",
    "description",
    "comment",
    "created",
    "duedate",
    "timeestimate",
    "customfield_10016",  # Story Points: a number, rendered as nothing
    "customfield_10300",  # a single-line text field: escaped text
]
EXPAND = ["transitions", "renderedFields", "names", "schema"]
DESCRIPTION = "Line <1> & two\nline two\n\nsecond paragraph"
DESCRIPTION_HTML = "<p>Line &lt;1&gt; &amp; two<br/>\nline two</p><p>second paragraph</p>"
COMMENT = "a <b>bold</b> claim"
COMMENT_HTML = "<p>a &lt;b&gt;bold&lt;/b&gt; claim</p>"
DISPLAY_TIME = re.compile(r"^\d{2}/[A-Z][a-z]{2}/\d{2} \d{1,2}:\d{2} [AP]M$")


@dataclass
class Site:
    backend: JiraBackend
    app: SandboxApp
    http: requests.Session
    client: JIRA
    key: str  # an issue with markup in its description, a comment and set fields


@pytest.fixture(scope="module")
def world() -> World:
    # Enough issues for a third project: company-managed and hiding no field.
    return generate_world(issues=400, accounts=10, seed=41, anchor=datetime(2025, 8, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def registry() -> Registry:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return Registry().with_resource(
        "urn:jira", Resource.from_contents(spec, default_specification=DRAFT202012)
    )


def check(registry: Registry, instance: Any, *pointer: str) -> None:
    path = "/".join(p.replace("~", "~0").replace("/", "~1") for p in pointer)
    validator = Draft202012Validator({"$ref": f"urn:jira#/{path}"}, registry=registry)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, "\n".join(errors[:10])


@contextmanager
def site(transport: Transport, world: World, deployment: str) -> Iterator[Site]:
    backend = JiraBackend(
        world, deployment, email=EMAIL, api_token=TOKEN, personal_access_token=PAT
    )
    # One whose project shows every field (company-managed, hiding nothing).
    key = next(
        i.key
        for i in backend.ordered_issues()
        if not backend.projects[i.project_key].hidden_fields
        and not backend.team_managed(i.project_key)
        and i.issue_type not in ("Epic", "Sub-task")
    )
    backend.update_issue(key, description=DESCRIPTION, due=date(2026, 7, 5), estimate_seconds=9000)
    backend.update_issue(key, customfield_10300="<Amber>")
    backend.add_comment(key, COMMENT)
    app = SandboxApp(backend)
    with transport.mount(app, BASE):
        http = requests.Session()
        if deployment == "cloud":
            http.auth = (EMAIL, TOKEN)
            client = JIRA(BASE, basic_auth=(EMAIL, TOKEN), max_retries=0)
        else:
            http.headers["Authorization"] = f"Bearer {PAT}"
            client = JIRA(BASE, token_auth=PAT, max_retries=0)
        yield Site(backend, app, http, client, key)


@pytest.fixture
def cloud(transport: Transport, world: World) -> Iterator[Site]:
    with site(transport, world, "cloud") as found:
        yield found


@pytest.fixture
def server(transport: Transport, world: World) -> Iterator[Site]:
    with site(transport, world, "server") as found:
        yield found


def search(found: Site, version: str, method: str, jql: str) -> dict[str, Any]:
    """One search page with FIELDS and EXPAND, in the request shape of each endpoint."""
    cloud = found.backend.cloud
    url = f"{BASE}/rest/api/{version}/{'search/jql' if cloud else 'search'}"
    if method == "GET":
        params = {"jql": jql, "fields": ",".join(FIELDS), "expand": ",".join(EXPAND)}
        answer = found.http.get(url, params=params)
    else:
        # SearchAndReconcileRequestBean takes expand as a string, SearchRequestBean a list.
        expand: Any = ",".join(EXPAND) if cloud else EXPAND
        answer = found.http.post(url, json={"jql": jql, "fields": FIELDS, "expand": expand})
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def assert_expanded(found: Site, version: str, issue: dict[str, Any]) -> None:
    """Each issue of a page: its transitions and rendered fields, as Jira gives them."""
    key = issue["key"]
    listed = found.http.get(f"{BASE}/rest/api/{version}/issue/{key}/transitions").json()
    assert issue["transitions"] == listed["transitions"] and issue["transitions"]
    stored = found.backend.issues[key]
    assert stored.status not in {t["to"]["name"] for t in issue["transitions"]}
    rendered = issue["renderedFields"]
    assert list(rendered) == list(issue["fields"])  # one entry per field asked for
    assert rendered["summary"] is None and rendered["status"] is None
    assert rendered["customfield_10016"] is None
    local = stored.created.astimezone(ZoneInfo(found.backend.time_zone))
    assert rendered["created"] == local.strftime("%d/%b/%y %-I:%M %p")
    assert DISPLAY_TIME.match(rendered["created"])
    if key == found.key:
        assert rendered["description"] == DESCRIPTION_HTML
        assert [c["body"] for c in rendered["comment"]["comments"]] == [COMMENT_HTML]
        assert DISPLAY_TIME.match(rendered["comment"]["comments"][0]["created"])
        assert rendered["duedate"] == "05/Jul/26"
        assert rendered["timeestimate"] == "2h 30m"
        assert rendered["customfield_10300"] == "&lt;Amber&gt;"
        # The fields themselves stay raw: wiki on v2, ADF on v3.
        raw = issue["fields"]["description"]
        assert raw == DESCRIPTION if version == "2" else raw["type"] == "doc"
    assert "names" not in issue and "schema" not in issue  # those go at the top


@pytest.mark.parametrize(
    ("deployment", "version", "method"),
    [
        ("cloud", "2", "GET"),
        ("cloud", "3", "GET"),
        ("cloud", "2", "POST"),
        ("cloud", "3", "POST"),
        ("server", "2", "GET"),
        ("server", "2", "POST"),
    ],
)
def test_search_expands_transitions_rendered_fields_names_and_schema(
    transport: Transport,
    world: World,
    registry: Registry,
    deployment: str,
    version: str,
    method: str,
) -> None:
    with site(transport, world, deployment) as found:
        project = found.key.split("-")[0]
        page = search(found, version, method, f"project = {project} ORDER BY key ASC")
        assert found.key in [i["key"] for i in page["issues"]]
        for issue in page["issues"]:
            assert_expanded(found, version, issue)
        names = {f["id"]: f["name"] for f in found.http.get(f"{BASE}/rest/api/2/field").json()}
        assert page["names"] == {fid: names[fid] for fid in FIELDS}
        assert page["schema"]["created"] == {"type": "datetime", "system": "created"}
        assert set(page["schema"]) <= set(FIELDS)
        endpoint = "/rest/api/3/search/jql" if deployment == "cloud" else "/rest/api/3/search"
        schema = ("paths", endpoint, method.lower(), "responses", "200", "content")
        check(registry, page, *schema, "application/json", "schema")
        writes = found.app.stats.snapshot()["writes"]
        assert writes == 0  # a POST search is a read


@pytest.mark.parametrize("version", ["2", "3"])
def test_issue_read_expands_the_same(cloud: Site, registry: Registry, version: str) -> None:
    url = f"{BASE}/rest/api/{version}/issue/{cloud.key}"
    params = {"fields": ",".join(FIELDS), "expand": ",".join(EXPAND)}
    issue = cloud.http.get(url, params=params).json()
    # On an issue read, names and schema sit in the issue itself (no page around it).
    assert_expanded(cloud, version, {k: v for k, v in issue.items() if k not in EXPAND[2:]})
    assert issue["names"]["customfield_10300"] and set(issue["schema"]) <= set(FIELDS)
    check(
        registry,
        issue,
        *("paths", "/rest/api/3/issue/{issueIdOrKey}", "get", "responses", "200", "content"),
        *("application/json", "schema"),
    )


def test_post_bodies_outside_the_request_schema_are_refused_on_cloud(cloud: Site) -> None:
    jql = f"key = {cloud.key}"
    enhanced = f"{BASE}/rest/api/3/search/jql"
    for extra in ({"validateQuery": "strict"}, {"startAt": 0}, {"expands": "names"}):
        refused = cloud.http.post(enhanced, json={"jql": jql, **extra})
        assert refused.status_code == 400
        assert refused.json()["errorMessages"] == [
            f'Unrecognized field "{next(iter(extra))}" (not marked as ignorable).'
        ]
    every_key = {
        "jql": jql,
        "fields": ["summary"],
        "expand": "renderedFields",
        "maxResults": 5,
        "properties": [],
        "fieldsByKeys": False,
        "reconcileIssues": [],
    }
    answer = cloud.http.post(enhanced, json=every_key).json()
    assert answer["issues"][0]["renderedFields"] == {"summary": None}


def test_post_bodies_outside_the_request_schema_are_refused_on_server(server: Site) -> None:
    jql = f"key = {server.key}"
    legacy = f"{BASE}/rest/api/2/search"
    refused = server.http.post(legacy, json={"jql": jql, "nextPageToken": "x"})
    assert refused.status_code == 400
    accepted = server.http.post(
        legacy,
        json={"jql": jql, "startAt": 0, "validateQuery": True, "fields": ["summary"]},
    )
    assert accepted.status_code == 200 and accepted.json()["total"] == 1


@pytest.mark.parametrize("use_post", [False, True])
@pytest.mark.parametrize("deployment", ["cloud", "server"])
def test_the_jira_client_search_issues_with_expand(
    transport: Transport, world: World, deployment: str, use_post: bool
) -> None:
    with site(transport, world, deployment) as found:
        issues = found.client.search_issues(
            f"key = {found.key}",
            fields="summary,description,comment",
            expand="transitions,renderedFields",
            use_post=use_post,
        )
        [issue] = list(issues)
        assert issue.renderedFields.description == DESCRIPTION_HTML
        assert issue.renderedFields.comment.comments[0].body == COMMENT_HTML
        assert [t["id"] for t in issue.raw["transitions"]] == [
            t["id"] for t in found.client.transitions(found.key)
        ]
        method = "POST" if use_post else "GET"
        path = "search/jql" if deployment == "cloud" else "search"
        assert found.app.stats.snapshot()["by_endpoint"][f"{method} /rest/api/2/{path}"] == 1
