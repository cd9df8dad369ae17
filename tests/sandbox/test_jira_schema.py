"""The sandbox's Jira JSON against Atlassian's OpenAPI schemas (tests/reference): every
response of the endpoints the sandbox serves, and the objects inside issue fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.jira import JiraBackend
from connectors.sandbox.world import World, generate_world
from tests.sandbox.conftest import Transport

BASE = "https://sandbox.atlassian.net"
EMAIL, TOKEN, PAT = "sandbox@example.com", "t0ken", "p4t"
DOC_URI = "urn:jira-cloud-openapi-v3"
SPEC_PATH = Path(__file__).parents[1] / "reference" / "jira-cloud-openapi-v3.json"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def registry(spec: dict[str, Any]) -> Registry:
    return Registry().with_resource(
        DOC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def check(registry: Registry, instance: Any, pointer: str) -> None:
    """Validate ``instance`` against the schema at ``pointer`` in the OpenAPI document."""
    validator = Draft202012Validator({"$ref": f"{DOC_URI}#/{pointer}"}, registry=registry)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def check_response(
    registry: Registry, instance: Any, path: str, method: str, status: str = "200"
) -> None:
    """Validate against the response schema of a path and method."""
    pointer = _pointer(
        "paths", path, method, "responses", status, "content", "application/json", "schema"
    )
    check(registry, instance, pointer)


def component(name: str) -> str:
    return _pointer("components", "schemas", name)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(issues=300, accounts=20, seed=21, anchor=datetime(2025, 5, 1, tzinfo=UTC))


def _http(
    transport: Transport, world: World, deployment: str
) -> Iterator[tuple[requests.Session, JiraBackend]]:
    backend = JiraBackend(
        world, deployment, email=EMAIL, api_token=TOKEN, personal_access_token=PAT
    )
    app = SandboxApp(backend)
    with transport.mount(app, BASE):
        session = requests.Session()
        session.auth = (EMAIL, TOKEN) if deployment == "cloud" else None
        if deployment == "server":
            session.headers["Authorization"] = f"Bearer {PAT}"
        yield session, backend


@pytest.fixture
def cloud(transport: Transport, world: World) -> Iterator[tuple[requests.Session, JiraBackend]]:
    yield from _http(transport, world, "cloud")


@pytest.fixture
def server(transport: Transport, world: World) -> Iterator[tuple[requests.Session, JiraBackend]]:
    yield from _http(transport, world, "server")


def _busy_issue(backend: JiraBackend) -> str:
    """A child of an epic with versions and a status history, in a project whose field
    configuration hides nothing, commented on."""
    issue = next(
        i
        for i in backend.ordered_issues()
        if i.parent_key
        and i.issue_type != "Sub-task"
        and not backend.projects[i.project_key].hidden_fields
        and i.fix_version_ids
        and i.history
        and i.assignee_account_id
    )
    backend.add_comment(issue.key, "Plain wiki comment")
    backend.update_issue(issue.key, customfield_10300="Amber")
    return issue.key


@pytest.mark.parametrize("version", ["2", "3"])
def test_metadata_endpoints(
    cloud: tuple[requests.Session, JiraBackend], registry: Registry, version: str
) -> None:
    http, _backend = cloud
    api = f"{BASE}/rest/api/{version}"
    check_response(registry, http.get(f"{api}/serverInfo").json(), "/rest/api/3/serverInfo", "get")
    check_response(registry, http.get(f"{api}/myself").json(), "/rest/api/3/myself", "get")
    fields = http.get(f"{api}/field").json()
    check_response(registry, fields, "/rest/api/3/field", "get")
    assert {"summary", "status", "customfield_10100", "customfield_10016"} <= {
        f["id"] for f in fields
    }
    projects = http.get(f"{api}/project").json()
    check_response(registry, projects, "/rest/api/3/project", "get")
    key = projects[0]["key"]
    check_response(
        registry,
        http.get(f"{api}/project/{key}").json(),
        "/rest/api/3/project/{projectIdOrKey}",
        "get",
    )
    versions = http.get(f"{api}/project/{key}/versions").json()
    assert versions
    check_response(registry, versions, "/rest/api/3/project/{projectIdOrKey}/versions", "get")


@pytest.mark.parametrize("version", ["2", "3"])
def test_search_pages(
    cloud: tuple[requests.Session, JiraBackend], registry: Registry, version: str
) -> None:
    http, backend = cloud
    key = _busy_issue(backend)
    api = f"{BASE}/rest/api/{version}"
    params = {
        "jql": "created >= -1000d",
        "fields": "*all",
        "expand": "changelog,names,schema",
        "maxResults": "20",
    }
    page = http.get(f"{api}/search/jql", params=params).json()
    assert len(page["issues"]) == 20 and "nextPageToken" in page
    check_response(registry, page, "/rest/api/3/search/jql", "get")
    ids_only = http.post(f"{api}/search/jql", json={"jql": f"key = {key}"}).json()
    check_response(registry, ids_only, "/rest/api/3/search/jql", "post")
    last = http.post(
        f"{api}/search/jql", json={"jql": f"key = {key}", "fields": ["*navigable", "-labels"]}
    ).json()
    assert last["isLast"] is True and "nextPageToken" not in last
    assert "labels" not in last["issues"][0]["fields"]
    check_response(registry, last, "/rest/api/3/search/jql", "post")
    count = http.post(f"{api}/search/approximate-count", json={"jql": "created >= -1000d"})
    check_response(registry, count.json(), "/rest/api/3/search/approximate-count", "post")


@pytest.mark.parametrize("version", ["2", "3"])
def test_issue_and_its_parts(
    cloud: tuple[requests.Session, JiraBackend], registry: Registry, version: str
) -> None:
    http, backend = cloud
    key = _busy_issue(backend)
    api = f"{BASE}/rest/api/{version}"
    issue = http.get(f"{api}/issue/{key}", params={"expand": "changelog,names,schema"}).json()
    check_response(registry, issue, "/rest/api/3/issue/{issueIdOrKey}", "get")
    fields = issue["fields"]
    check(registry, fields["status"], component("StatusDetails"))
    check(registry, fields["issuetype"], component("IssueTypeDetails"))
    check(registry, fields["priority"], component("Priority"))
    check(registry, fields["project"], component("ProjectDetails"))
    check(registry, fields["assignee"], component("UserDetails"))
    check(registry, fields["comment"], component("PageOfComments"))
    check(registry, fields["parent"]["fields"], component("Fields"))
    for fix_version in fields["fixVersions"]:
        check(registry, fix_version, component("Version"))
    assert fields["customfield_10300"] == "Amber"
    assert fields["customfield_10201"] is None  # null fields are present, as Jira shows them
    if backend.team_managed(backend.issue(key).project_key):  # parent only, no Epic Link
        assert "customfield_10014" not in fields and "customfield_10016" not in fields
        assert "customfield_10035" in fields
    else:
        assert fields["customfield_10014"] == fields["parent"]["key"]
    if version == "3":
        assert fields["description"]["type"] == "doc"
        assert fields["comment"]["comments"][0]["body"]["type"] == "doc"
    else:
        assert isinstance(fields["description"], str)
        assert fields["comment"]["comments"][0]["body"] == "Plain wiki comment"
    comments = http.get(f"{api}/issue/{key}/comment").json()
    check_response(registry, comments, "/rest/api/3/issue/{issueIdOrKey}/comment", "get")
    body: Any = (
        "posted"
        if version == "2"
        else {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "posted"}]}],
        }
    )
    posted = http.post(f"{api}/issue/{key}/comment", json={"body": body})
    assert posted.status_code == 201
    check_response(
        registry, posted.json(), "/rest/api/3/issue/{issueIdOrKey}/comment", "post", "201"
    )
    transitions = http.get(f"{api}/issue/{key}/transitions").json()
    check_response(registry, transitions, "/rest/api/3/issue/{issueIdOrKey}/transitions", "get")
    http.put(f"{api}/issue/{key}/properties/sync", json={"state": ["ok", 1]})
    keys = http.get(f"{api}/issue/{key}/properties").json()
    check_response(registry, keys, "/rest/api/3/issue/{issueIdOrKey}/properties", "get")
    prop = http.get(f"{api}/issue/{key}/properties/sync").json()
    check_response(
        registry, prop, "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}", "get"
    )


def test_server_mode_documents(
    server: tuple[requests.Session, JiraBackend], registry: Registry
) -> None:
    http, _backend = server
    api = f"{BASE}/rest/api/2"
    info = http.get(f"{api}/serverInfo").json()
    assert info["deploymentType"] == "Server"
    check_response(registry, info, "/rest/api/3/serverInfo", "get")
    me = http.get(f"{api}/myself").json()
    assert me["name"] == "sandbox" and "accountId" not in me
    check_response(registry, me, "/rest/api/3/myself", "get")
    page = http.get(
        f"{api}/search", params={"jql": "created >= -1000d", "maxResults": 5, "startAt": 3}
    ).json()
    assert (page["startAt"], page["maxResults"], len(page["issues"])) == (3, 5, 5)
    check_response(registry, page, "/rest/api/3/search", "get")


def test_my_permissions(cloud: tuple[requests.Session, JiraBackend], registry: Registry) -> None:
    """``GET /mypermissions`` (what ``check --online`` asks): the schema's shape, Jira's 400
    without ``permissions``, 404 for a project the user cannot see, and the denial switch."""
    http, backend = cloud
    api = f"{BASE}/rest/api/2"
    key = backend.project_order[0]
    wanted = "BROWSE_PROJECTS,EDIT_ISSUES,ADD_COMMENTS"
    doc = http.get(f"{api}/mypermissions", params={"permissions": wanted, "projectKey": key})
    check_response(registry, doc.json(), "/rest/api/3/mypermissions", "get")
    assert {k: v["havePermission"] for k, v in doc.json()["permissions"].items()} == {
        "BROWSE_PROJECTS": True,
        "EDIT_ISSUES": True,
        "ADD_COMMENTS": True,
    }
    assert http.get(f"{api}/mypermissions").status_code == 400
    assert http.get(f"{api}/mypermissions", params={"permissions": "FLY"}).status_code == 400
    missing = http.get(f"{api}/mypermissions", params={"permissions": wanted, "projectKey": "NOPE"})
    assert missing.status_code == 404
    check_response(registry, missing.json(), "/rest/api/3/mypermissions", "get", "404")
    backend.denied_permissions = {"EDIT_ISSUES"}
    denied = http.get(f"{api}/mypermissions", params={"permissions": wanted}).json()
    assert denied["permissions"]["EDIT_ISSUES"]["havePermission"] is False
    assert denied["permissions"]["ADD_COMMENTS"]["havePermission"] is True
    backend.denied_permissions = {"BROWSE_PROJECTS"}
    hidden = http.get(f"{api}/mypermissions", params={"permissions": wanted, "projectKey": key})
    assert hidden.status_code == 404
