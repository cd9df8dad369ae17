"""The Jira sandbox driven by the unmodified ``jira`` client, in Cloud and Server modes,
in-process and over HTTPS on loopback (``transport``, tests/sandbox/conftest.py); call
counts come from the app's stats."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from jira import JIRA, JIRAError

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.jira import JiraBackend
from connectors.sandbox.jira.search import UNBOUNDED
from connectors.sandbox.world import CLASSIC, World, generate_world
from tests.sandbox.conftest import Transport

BASE = "https://sandbox.atlassian.net"
EMAIL, TOKEN, PAT = "sync@example.com", "api-token-1", "pat-1"
ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)


class Clock:
    """A settable clock for the backend."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Env:
    client: JIRA
    app: SandboxApp
    backend: JiraBackend
    clock: Clock
    http: requests.Session

    def calls(self, endpoint: str) -> int:
        return int(self.app.stats.snapshot()["by_endpoint"].get(endpoint, 0))


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(issues=600, accounts=40, seed=11, anchor=ANCHOR)


@contextmanager
def sandbox(world: World, deployment: str, transport: Transport) -> Iterator[Env]:
    """A backend mounted on ``transport`` and a client logged in to it."""
    clock = Clock(ANCHOR + timedelta(hours=1))
    backend = JiraBackend(
        world,
        deployment,
        email=EMAIL,
        api_token=TOKEN,
        personal_access_token=PAT,
        clock=clock,
    )
    app = SandboxApp(backend)
    with transport.mount(app, BASE):
        if deployment == "cloud":
            client = JIRA(BASE, basic_auth=(EMAIL, TOKEN), max_retries=0)
        else:
            client = JIRA(BASE, token_auth=PAT, max_retries=0)
        http = requests.Session()
        http.headers["Authorization"] = (
            requests.auth._basic_auth_str(EMAIL, TOKEN)
            if deployment == "cloud"
            else f"Bearer {PAT}"
        )
        app.stats.reset()
        yield Env(client, app, backend, clock, http)


@pytest.fixture
def cloud(world: World, transport: Transport) -> Iterator[Env]:
    with sandbox(world, "cloud", transport) as env:
        yield env


@pytest.fixture
def server(world: World, transport: Transport) -> Iterator[Env]:
    with sandbox(world, "server", transport) as env:
        yield env


def busiest_project(world: World) -> str:
    counts: dict[str, int] = {}
    for issue in world.issues:
        counts[issue.project_key] = counts.get(issue.project_key, 0) + 1
    return max(counts, key=lambda k: counts[k])


# -- Cloud ----------------------------------------------------------------------------------


def test_client_sees_cloud_and_the_user_time_zone(cloud: Env) -> None:
    assert cloud.client.deploymentType == "Cloud"
    me = cloud.client.myself()
    assert me["emailAddress"] == EMAIL
    assert me["timeZone"] == "Asia/Shanghai"
    assert cloud.calls("GET /rest/api/2/myself") == 1


def test_search_issues_loops_token_pages_of_100(cloud: Env, world: World) -> None:
    jql = "created >= -1000d"  # bounded, matches everything
    issues = cloud.client.search_issues(jql, maxResults=False)
    assert [i.key for i in issues] == [i.key for i in cloud.backend.ordered_issues()]
    assert len(issues) == len(world.issues) == 600
    assert cloud.calls("GET /rest/api/2/search/jql") == math.ceil(600 / 100)
    assert cloud.calls("GET /rest/api/2/field") == 1  # the client's name->id translation
    first = issues[0]
    assert first.fields.status.statusCategory.key in ("new", "indeterminate", "done")
    assert first.fields.project.key == first.key.split("-")[0]
    assert first.self == f"{BASE}/rest/api/2/issue/{first.id}"  # the base the client called


def test_one_issue_labelled_commented_marked_and_moved(cloud: Env) -> None:
    """The writes of one cycle on one issue through the client, text in UTF-8 both ways
    (was tests/sandbox/test_jira_https.py, HTTPS only)."""
    key = next(i.key for i in cloud.backend.ordered_issues() if i.status == "In Progress")
    issue = cloud.client.issue(key)
    issue.update(update={"labels": [{"add": "wire-flag"}]})  # PUT, then GET of issue.self
    assert "wire-flag" in issue.fields.labels
    cloud.client.add_comment(key, "über TLS 安全")
    assert [c.body for c in cloud.client.comments(key)][-1] == "über TLS 安全"
    cloud.client.add_issue_property(key, "sync", {"v": "甲"})
    assert cloud.client.issue_property(key, "sync").raw["value"] == {"v": "甲"}
    target = next(t for t in cloud.client.transitions(key) if t["name"] == "Blocked")
    cloud.client.transition_issue(key, target["id"])
    assert cloud.client.issue(key).fields.status.name == "Blocked"
    found = cloud.client.search_issues("labels = wire-flag AND status = Blocked", fields="key")
    assert [i.key for i in found] == [key]
    stats = cloud.app.stats.snapshot()["by_endpoint"]
    assert stats["PUT /rest/api/2/issue/{key}"] == 1
    assert stats["POST /rest/api/2/issue/{key}/comment"] == 1
    assert stats["POST /rest/api/2/issue/{key}/transitions"] == 1
    assert stats["PUT /rest/api/2/issue/{key}/properties/{propertyKey}"] == 1


def test_post_search_and_page_size_clipping(cloud: Env) -> None:
    jql = "created >= -1000d"
    page = cloud.client.enhanced_search_issues(
        jql, maxResults=1000, fields=["summary"], json_result=True, use_post=True
    )
    assert isinstance(page, dict)
    assert len(page["issues"]) == 100  # clipped silently: more than id/key was asked for
    assert page["isLast"] is False and "total" not in page
    assert set(page["issues"][0]["fields"]) == {"summary"}
    assert cloud.calls("POST /rest/api/2/search/jql") == 1
    default = cloud.http.get(f"{BASE}/rest/api/3/search/jql", params={"jql": jql}).json()
    assert len(default["issues"]) == 50 and default["issues"][0] == {
        "id": default["issues"][0]["id"]
    }


def test_id_and_key_pages_of_5000(transport: Transport) -> None:
    big = generate_world(issues=12_000, accounts=20, seed=5, anchor=ANCHOR)
    with sandbox(big, "cloud", transport) as env:
        keys: list[str] = []
        token = None
        while True:
            page = env.client.enhanced_search_issues(
                "created >= -1000d",
                nextPageToken=token,
                maxResults=10_000,
                fields=["key"],
                json_result=True,
            )
            assert isinstance(page, dict)
            keys.extend(issue["key"] for issue in page["issues"])
            token = page.get("nextPageToken")
            if page["isLast"]:
                assert token is None
                break
        assert len(keys) == len(set(keys)) == 12_000
        assert env.calls("GET /rest/api/2/search/jql") == 3  # 5000 + 5000 + 2000


def test_page_token_is_bound_to_its_query(cloud: Env) -> None:
    first = cloud.client.enhanced_search_issues(
        "created >= -1000d", maxResults=10, json_result=True
    )
    assert isinstance(first, dict)
    with pytest.raises(JIRAError) as caught:
        cloud.client.enhanced_search_issues(
            "created >= -999d", nextPageToken=first["nextPageToken"], json_result=True
        )
    assert caught.value.status_code == 400
    garbage = cloud.http.get(
        f"{BASE}/rest/api/2/search/jql", params={"jql": "created >= -1000d", "nextPageToken": "xyz"}
    )
    assert garbage.status_code == 400
    assert garbage.json()["errorMessages"][0].startswith("The nextPageToken is invalid")


def test_unbounded_and_invalid_jql_get_jira_errors(cloud: Env) -> None:
    with pytest.raises(JIRAError) as caught:
        cloud.client.search_issues("order by created DESC")
    assert caught.value.status_code == 400 and UNBOUNDED in caught.value.text
    response = cloud.http.get(f"{BASE}/rest/api/2/search/jql", params={"jql": "project = NOPE"})
    assert response.status_code == 400
    assert response.json() == {
        "errorMessages": ["The value 'NOPE' does not exist for the field 'project'."],
        "errors": {},
    }
    bad = cloud.http.post(f"{BASE}/rest/api/3/search/jql", json={"jql": "project ="})
    assert bad.status_code == 400
    assert bad.json()["errorMessages"][0].startswith("Error in the JQL Query:")


def test_legacy_search_is_gone_on_cloud(cloud: Env) -> None:
    for version in ("2", "3"):
        response = cloud.http.get(f"{BASE}/rest/api/{version}/search", params={"jql": "x = y"})
        assert response.status_code == 410
        assert "/rest/api/3/search/jql" in response.json()["errorMessages"][0]
    assert cloud.calls("GET /rest/api/2/search") == cloud.calls("GET /rest/api/3/search") == 1


def test_approximate_count(cloud: Env, world: World) -> None:
    project = busiest_project(world)
    expected = sum(1 for i in world.issues if i.project_key == project)
    assert cloud.client.approximate_issue_count(f"project = {project}") == expected
    assert cloud.calls("POST /rest/api/2/search/approximate-count") == 1


def test_labels_through_issue_update_and_raw_put(cloud: Env) -> None:
    key = cloud.backend.ordered_issues()[3].key
    issue = cloud.client.issue(key)
    before = set(issue.fields.labels)
    moment = cloud.clock.advance(minutes=5)
    issue.update(update={"labels": [{"add": "synced"}, {"add": "customer-red"}]})
    assert set(issue.fields.labels) == before | {"synced", "customer-red"}  # re-read by client
    assert cloud.backend.issue(key).updated == moment
    cloud.clock.advance(minutes=5)
    put = cloud.http.put(
        f"{BASE}/rest/api/2/issue/{key}", json={"update": {"labels": [{"remove": "customer-red"}]}}
    )
    assert put.status_code == 204
    assert set(cloud.client.issue(key).fields.labels) == before | {"synced"}
    # Incremental pulls find the edit through epoch milliseconds.
    since = int(moment.timestamp() * 1000)
    found = cloud.client.search_issues(f"updated >= {since}", fields="key")
    assert [i.key for i in found] == [key]
    assert cloud.calls("PUT /rest/api/2/issue/{key}") == 2


def test_unknown_field_edit_is_rejected_without_changes(cloud: Env) -> None:
    key = cloud.backend.ordered_issues()[0].key
    before = cloud.backend.issue(key).summary
    response = cloud.http.put(
        f"{BASE}/rest/api/2/issue/{key}", json={"fields": {"summary": "new", "flavour": "x"}}
    )
    assert response.status_code == 400
    assert response.json() == {
        "errorMessages": [],
        "errors": {
            "flavour": "Field 'flavour' cannot be set. It is not on the appropriate screen, "
            "or unknown."
        },
    }
    assert cloud.backend.issue(key).summary == before


def test_custom_fields_by_name_and_set(cloud: Env) -> None:
    fields = cloud.client.fields()
    by_name: dict[str, list[str]] = {}
    for f in fields:
        by_name.setdefault(f["name"], []).append(f["id"])
    assert by_name["Salesforce Account"] == ["customfield_10100"]
    assert len(by_name["Customer Tier"]) == 2  # duplicate names exist: resolve by id
    key = cloud.backend.ordered_issues()[5].key
    issue = cloud.client.issue(key)
    issue.update(fields={"customfield_10300": "Red", "customfield_10016": 8})
    assert issue.fields.customfield_10300 == "Red" and issue.fields.customfield_10016 == 8.0
    found = cloud.client.search_issues(f"key = {key}", fields=["Salesforce Account", "summary"])
    raw = found[0].raw["fields"]
    assert set(raw) == {"customfield_10100", "summary", "Salesforce Account"}


def test_comments_add_and_list_v2_and_v3(cloud: Env) -> None:
    key = cloud.backend.ordered_issues()[1].key
    moment = cloud.clock.advance(minutes=1)
    comment = cloud.client.add_comment(key, "Customer is *unhappy* 客户不满意")
    assert comment.body == "Customer is *unhappy* 客户不满意"
    assert cloud.backend.issue(key).updated == moment
    adf = {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "v3 note"}]}],
    }
    posted = cloud.http.post(f"{BASE}/rest/api/3/issue/{key}/comment", json={"body": adf})
    assert posted.status_code == 201 and posted.json()["body"] == adf
    assert (
        cloud.http.post(
            f"{BASE}/rest/api/3/issue/{key}/comment", json={"body": "plain"}
        ).status_code
        == 400
    )
    assert [c.body for c in cloud.client.comments(key)] == [
        "Customer is *unhappy* 客户不满意",
        "v3 note",
    ]
    page = cloud.http.get(
        f"{BASE}/rest/api/3/issue/{key}/comment", params={"maxResults": 1, "startAt": 1}
    ).json()
    assert page["total"] == 2 and page["comments"][0]["body"] == adf
    assert cloud.calls("POST /rest/api/2/issue/{key}/comment") == 1


def test_comment_search_and_delete_through_the_client(cloud: Env) -> None:
    """``comment ~`` finds words and phrases in comments (a v3 ADF one too); a comment can
    be deleted (204, then 404), which moves the issue's ``updated`` and the search."""
    first, second, third = (i.key for i in cloud.backend.ordered_issues()[3:6])
    ours = cloud.client.add_comment(first, "At risk. \\[jira-crm-sync:flag:001A:at_risk\\]")
    cloud.client.add_comment(second, "The jira CRM sync needs a flag")  # the words, not in order
    adf = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "[jira-crm-sync:flag:x]"}]}
        ],
    }
    assert cloud.http.post(f"{BASE}/rest/api/3/issue/{third}/comment", json={"body": adf}).ok
    scope = f"key in ({first}, {second}, {third})"

    def found(text: str) -> list[str]:
        jql = f"{scope} AND comment ~ {text} ORDER BY key"
        return sorted(i.key for i in cloud.client.search_issues(jql, fields="key"))

    assert found('"\\"jira crm sync flag\\""') == sorted([first, third])
    assert found('"jira crm sync flag"') == sorted([first, second, third])
    assert found('"JIRA-CRM"') == sorted([first, second, third])  # punctuation splits words
    assert found('"syn*"') == sorted([first, second, third])
    assert found('"jiracrm"') == []  # words, not substrings

    moment = cloud.clock.advance(minutes=1)
    url = f"{BASE}/rest/api/2/issue/{first}/comment/{ours.id}"
    assert cloud.http.delete(url).status_code == 204
    assert cloud.http.delete(url).status_code == 404
    assert cloud.backend.comments[first] == [] and cloud.backend.issue(first).updated == moment
    assert found('"\\"jira crm sync flag\\""') == [third]
    assert cloud.calls("DELETE /rest/api/2/issue/{key}/comment/{id}") == 2
    someone = cloud.backend.add_comment(second, "a person's", author_account_id="someone-else")
    cloud.backend.denied_permissions.add("DELETE_ALL_COMMENTS")
    try:
        refused = cloud.http.delete(f"{BASE}/rest/api/2/issue/{second}/comment/{someone.id}")
    finally:
        cloud.backend.denied_permissions.clear()
    assert refused.status_code == 403


def test_issue_properties(cloud: Env) -> None:
    key = cloud.backend.ordered_issues()[2].key
    response = cloud.client.add_issue_property(key, "jira-crm-sync", {"flag": "red", "n": 1})
    assert response.status_code == 201
    assert (
        cloud.client.add_issue_property(key, "jira-crm-sync", {"flag": "green"}).status_code == 200
    )
    props = cloud.client.issue_properties(key)
    assert [p.key for p in props] == ["jira-crm-sync"]
    assert cloud.client.issue_property(key, "jira-crm-sync").raw["value"] == {"flag": "green"}
    too_big = cloud.http.put(
        f"{BASE}/rest/api/2/issue/{key}/properties/big", json={"blob": "x" * 33_000}
    )
    assert too_big.status_code == 400
    assert (
        cloud.http.delete(f"{BASE}/rest/api/2/issue/{key}/properties/jira-crm-sync").status_code
        == 204
    )
    assert cloud.client.issue_properties(key) == []
    found = cloud.http.get(
        f"{BASE}/rest/api/2/search/jql", params={"jql": f"key = {key}", "properties": "missing"}
    ).json()
    assert found["issues"][0]["properties"] == {}


def test_transitions_change_status_history_and_resolution(cloud: Env) -> None:
    issue = next(
        i
        for i in cloud.backend.ordered_issues()
        if i.status == "To Do" and cloud.backend.world.workflow_of(i.project_key) == CLASSIC
    )
    names = [t["name"] for t in cloud.client.transitions(issue.key)]
    assert names == ["In Progress", "Blocked", "Done"]
    moment = cloud.clock.advance(hours=2)
    cloud.client.transition_issue(issue.key, "41")
    done = cloud.client.issue(issue.key, expand="changelog")
    assert done.fields.status.name == "Done" and done.fields.status.statusCategory.key == "done"
    # In the site's zone (the sandbox's Jira is in Asia/Shanghai), as Jira writes it.
    shanghai = moment.astimezone(ZoneInfo("Asia/Shanghai"))
    assert done.fields.resolutiondate == shanghai.strftime("%Y-%m-%dT%H:%M:%S.000+0800")
    assert done.fields.statuscategorychangedate == done.fields.resolutiondate
    last = done.changelog.histories[-1].items[0]
    assert (last.field, last.fromString, last.toString) == ("status", "To Do", "Done")
    cloud.client.transition_issue(issue.key, "In Progress")  # by name, as the client allows
    assert cloud.client.issue(issue.key).fields.resolutiondate is None
    again = cloud.http.post(
        f"{BASE}/rest/api/2/issue/{issue.key}/transitions", json={"transition": {"id": "21"}}
    )
    assert again.status_code == 400
    assert cloud.calls("POST /rest/api/2/issue/{key}/transitions") == 3


def test_changelog_expand_in_search(cloud: Env) -> None:
    done = next(i for i in cloud.backend.ordered_issues() if i.status == "Done")
    page = cloud.http.get(
        f"{BASE}/rest/api/2/search/jql",
        params={"jql": f"key = {done.key}", "fields": "status", "expand": "changelog,names"},
    ).json()
    histories = page["issues"][0]["changelog"]["histories"]
    assert [h["items"][0]["toString"] for h in histories] == ["In Progress", "Done"]
    assert page["names"] == {"status": "Status"}


def test_projects_and_versions(cloud: Env, world: World) -> None:
    projects = cloud.client.projects()
    assert sorted(p.key for p in projects) == sorted(p.key for p in world.projects)
    key = world.projects[0].key
    versions = cloud.client.project_versions(key)
    expected = [v for v in world.versions if v.project_key == key]
    assert [v.name for v in versions] == [v.name for v in expected]
    assert all(isinstance(v.released, bool) and isinstance(v.archived, bool) for v in versions)
    assert cloud.client.project(key).key == key
    assert cloud.calls("GET /rest/api/2/project/{key}/versions") == 1


def test_create_and_delete_issues(cloud: Env, world: World) -> None:
    project = world.projects[0].key
    created = cloud.client.create_issue(
        project=project,
        summary="Created by test",
        issuetype={"name": "Task"},
        labels=["new"],
        customfield_10100="001Dn0000000TEST",
    )
    assert created.fields.summary == "Created by test"
    assert created.fields.customfield_10100 == "001Dn0000000TEST"
    found = cloud.client.search_issues('"Salesforce Account" = "001Dn0000000TEST"')
    assert [i.key for i in found] == [created.key]
    created.delete()
    with pytest.raises(JIRAError) as caught:
        cloud.client.issue(created.key)
    assert caught.value.status_code == 404
    helper = cloud.backend.create_issue(project, "via helper")
    assert helper.key != created.key  # numbers are never reused
    bad = cloud.http.post(f"{BASE}/rest/api/2/issue", json={"fields": {"summary": "x"}})
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"project", "issuetype"}


def test_python_helpers_and_reset(cloud: Env, world: World) -> None:
    key = cloud.backend.ordered_issues()[0].key
    moment = cloud.clock.advance(days=1)
    cloud.backend.update_issue(key, labels=["helper"], status="Blocked")
    assert cloud.client.issue(key).fields.labels == ["helper"]
    assert cloud.backend.issue(key).updated == moment
    assert [i.key for i in cloud.client.search_issues("status = Blocked AND labels = helper")] == [
        key
    ]
    cloud.backend.delete_issue(key)
    cloud.backend.reset()
    restored = cloud.backend.issue(key)
    original = next(i for i in world.issues if i.key == key)
    assert restored.labels == original.labels and restored.status == original.status
    assert restored is not original


def test_auth_is_required(world: World, transport: Transport) -> None:
    backend = JiraBackend(world, email=EMAIL, api_token=TOKEN)
    app = SandboxApp(backend)
    with transport.mount(app, BASE):
        assert requests.get(f"{BASE}/rest/api/2/serverInfo").status_code == 200  # anonymous
        wrong = requests.get(f"{BASE}/rest/api/2/myself", auth=(EMAIL, "wrong"))
        assert wrong.status_code == 401
        assert wrong.json()["errorMessages"] == [
            "Client must be authenticated to access this resource."
        ]
        assert (
            requests.get(
                f"{BASE}/rest/api/2/myself", headers={"Authorization": f"Bearer {PAT}"}
            ).status_code
            == 401
        )
        with pytest.raises(JIRAError) as caught:
            JIRA(BASE, basic_auth=(EMAIL, "wrong"), max_retries=0).myself()
        assert caught.value.status_code == 401


# -- Server / Data Center -------------------------------------------------------------------


def test_server_mode_pages_by_start_at(server: Env, world: World) -> None:
    assert server.client.deploymentType == "Server"
    issues = server.client.search_issues("created >= -1000d", maxResults=False)
    assert [i.key for i in issues] == [i.key for i in server.backend.ordered_issues()]
    assert server.calls("GET /rest/api/2/search") == math.ceil(600 / 100)
    page = server.client.search_issues("created >= -1000d", maxResults=5000, json_result=True)
    assert isinstance(page, dict)
    assert (page["total"], page["maxResults"], len(page["issues"])) == (600, 1000, 600)
    assert server.client.myself()["name"] == "sandbox"


def test_server_mode_auth_and_missing_cloud_apis(server: Env, world: World) -> None:
    basic = requests.get(f"{BASE}/rest/api/2/myself", auth=("sandbox", "sandbox-password"))
    assert basic.status_code == 200 and "accountId" not in basic.json()
    cloud_style = requests.get(f"{BASE}/rest/api/2/myself", auth=(EMAIL, TOKEN))
    assert cloud_style.status_code == 401
    assert (
        server.http.get(
            f"{BASE}/rest/api/2/search/jql", params={"jql": "created >= -1d"}
        ).status_code
        == 404
    )
    assert server.http.get(f"{BASE}/rest/api/3/myself").status_code == 404
    legacy_post = server.http.post(
        f"{BASE}/rest/api/2/search", json={"jql": "", "startAt": 590, "maxResults": 50}
    )
    body = legacy_post.json()
    assert (body["startAt"], body["total"], len(body["issues"])) == (590, 600, 10)
    assert server.calls("POST /rest/api/2/search") == 1


def test_server_mode_user_fields_and_comments(server: Env) -> None:
    key = server.backend.ordered_issues()[4].key
    issue = server.client.issue(key)
    issue.update(assignee="user1")  # the client sends {"name": ...} on Server
    assert issue.fields.assignee.name == "user1"
    comment = server.client.add_comment(key, "server comment")
    assert comment.author.name == "sandbox"
