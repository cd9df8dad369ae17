"""The sandbox Jira is as messy as real sites (issue 14): team-managed projects beside
company-managed ones, sub-task -> story -> epic chains, a project whose field
configuration hides fields, localised field names with duplicates (``locale``) and an
older Server (``deployment="server"``). Read over HTTP in-process, and with the real
``jira`` client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from jira import JIRA, JIRAError

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.jira import JiraBackend
from connectors.sandbox.stack import Sandbox
from connectors.sandbox.world import HIDDEN_FIELDS, World, generate_world
from tests.sandbox.conftest import Transport

BASE = "https://sandbox.atlassian.net"
EMAIL, TOKEN, PAT = "sync@example.com", "api-token-1", "pat-1"
ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)
EPIC_LINK, STORY_POINTS, ESTIMATE = "customfield_10014", "customfield_10016", "customfield_10035"
ALL = {"fields": "*all", "maxResults": "100"}


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(issues=900, accounts=30, seed=11, anchor=ANCHOR)


@contextmanager
def site(
    transport: Transport, world: World, deployment: str = "cloud", locale: str = "en"
) -> Iterator[JiraBackend]:
    backend = JiraBackend(
        world, deployment, email=EMAIL, api_token=TOKEN, personal_access_token=PAT, locale=locale
    )
    with transport.mount(SandboxApp(backend), BASE):
        yield backend


def _http(deployment: str) -> requests.Session:
    http = requests.Session()
    if deployment == "cloud":
        http.auth = (EMAIL, TOKEN)
    else:
        http.headers["Authorization"] = f"Bearer {PAT}"
    return http


def _issues(deployment: str, project: str) -> list[dict[str, Any]]:
    """Every issue of a project with every field, as search returns them."""
    http = _http(deployment)
    path = "search/jql" if deployment == "cloud" else "search"
    out: list[dict[str, Any]] = []
    params: dict[str, str] = {"jql": f"project = {project} ORDER BY key", **ALL}
    while True:
        page = http.get(f"{BASE}/rest/api/2/{path}", params=params).json()
        out.extend(page["issues"])
        if deployment == "cloud" and page.get("nextPageToken"):
            params["nextPageToken"] = page["nextPageToken"]
        elif deployment == "server" and page["startAt"] + len(page["issues"]) < page["total"]:
            params["startAt"] = str(page["startAt"] + len(page["issues"]))
        else:
            return out


def _field_list(deployment: str) -> list[dict[str, Any]]:
    return list(_http(deployment).get(f"{BASE}/rest/api/2/field").json())


def test_the_world_has_both_project_styles_sub_task_chains_and_a_hiding_project(
    world: World,
) -> None:
    assert world == generate_world(issues=900, accounts=30, seed=11, anchor=ANCHOR)
    styles = [p.team_managed for p in world.projects]
    assert True in styles and False in styles
    assert [p.hidden_fields for p in world.projects if p.hidden_fields] == [HIDDEN_FIELDS]
    by_key = {i.key: i for i in world.issues}
    subtasks = [i for i in world.issues if i.issue_type == "Sub-task"]
    assert len(subtasks) > 50
    for sub in subtasks:
        parent = by_key[sub.parent_key or ""]
        assert parent.issue_type in ("Story", "Task", "Bug")
        assert parent.project_key == sub.project_key
        assert sub.story_points is None
    chains = [s for s in subtasks if by_key[s.parent_key or ""].parent_key]
    assert chains and all(by_key[by_key[s.parent_key or ""].parent_key or ""].issue_type == "Epic"
                          for s in chains)  # fmt: skip
    # Some sub-tasks carry an account of their own, most take their story's.
    assert 0 < sum(s.account_id is not None for s in subtasks) < len(subtasks) / 2


def test_cloud_projects_show_their_style_in_their_fields(
    transport: Transport, world: World
) -> None:
    team = next(p for p in world.projects if p.team_managed)
    company = next(p for p in world.projects if not p.team_managed and not p.hidden_fields)
    with site(transport, world):
        projects = {p["key"]: p for p in _http("cloud").get(f"{BASE}/rest/api/2/project").json()}
        assert projects[team.key]["simplified"] is True
        assert projects[company.key]["simplified"] is False
        for issue in _issues("cloud", team.key):
            fields = issue["fields"]
            assert "parent" in fields and ESTIMATE in fields
            assert EPIC_LINK not in fields and STORY_POINTS not in fields
        company_issues = _issues("cloud", company.key)
        for issue in company_issues:
            fields = issue["fields"]
            assert "parent" in fields and EPIC_LINK in fields and STORY_POINTS in fields
            assert ESTIMATE not in fields
            if fields["issuetype"]["name"] == "Sub-task":
                assert fields["issuetype"]["subtask"] is True
                assert fields["issuetype"]["hierarchyLevel"] == -1
                assert fields[EPIC_LINK] is None  # the parent is a story
                assert fields["parent"]["fields"]["issuetype"]["hierarchyLevel"] == 0
            elif fields["parent"] is not None:  # a child of an epic: both ways
                assert fields[EPIC_LINK] == fields["parent"]["key"]
        assert any(i["fields"]["issuetype"]["subtask"] for i in company_issues)


def test_a_field_configuration_that_hides_fields_leaves_their_keys_out(
    transport: Transport, world: World
) -> None:
    hiding = next(p for p in world.projects if p.hidden_fields)
    key = next(i.key for i in world.issues if i.project_key == hiding.key)
    with site(transport, world) as backend:
        for issue in _issues("cloud", hiding.key):
            assert not set(HIDDEN_FIELDS) & set(issue["fields"])
            assert "summary" in issue["fields"]
        one = _http("cloud").get(f"{BASE}/rest/api/2/issue/{key}").json()
        assert not set(HIDDEN_FIELDS) & set(one["fields"])
        assert backend.issue(key).priority  # hidden, not empty: the record keeps it
        other = next(p for p in world.projects if not p.hidden_fields)
        assert "priority" in _issues("cloud", other.key)[0]["fields"]


@pytest.mark.parametrize(
    ("locale", "epic_link", "story_points", "summary"),
    [
        ("zh", "史诗链接", "故事点数", "摘要"),
        ("de", "Epic-Verknüpfung", "Story-Punkte", "Zusammenfassung"),
    ],
)
def test_a_localised_site_translates_names_and_repeats_some(
    transport: Transport, world: World, locale: str, epic_link: str, story_points: str, summary: str
) -> None:
    with site(transport, world, locale=locale):
        fields = _field_list("cloud")
        names = {f["id"]: f["name"] for f in fields}
        assert names[EPIC_LINK] == epic_link and names[STORY_POINTS] == story_points
        assert names["summary"] == summary
        assert names["customfield_10100"] == "Salesforce Account"  # an admin's own name
        twice = [f for f in fields if f["name"] in (epic_link, story_points)]
        assert len(twice) == 4 and {f["schema"]["custom"].rpartition(":")[2] for f in twice} == {
            "gh-epic-link", "float", "textfield"
        }  # fmt: skip
        # JQL knows a custom field by its id and by its (localised) name.
        clauses = next(f["clauseNames"] for f in fields if f["id"] == EPIC_LINK)
        assert clauses == ["cf[10014]", epic_link]
        http = _http("cloud")
        doc = http.get(
            f"{BASE}/rest/api/2/search/jql",
            params={"jql": "created >= -1000d", "fields": "summary", "expand": "names"},
        ).json()
        assert doc["names"] == {"summary": summary}
    with site(transport, world):  # the same world whatever the language
        english = _field_list("cloud")
    assert [f["id"] for f in english] == [f["id"] for f in fields if f["id"] not in
                                          ("customfield_10401", "customfield_10402")]  # fmt: skip


def test_an_older_server_lists_no_parent_and_gives_stories_none(
    transport: Transport, world: World
) -> None:
    team = next(p for p in world.projects if p.team_managed)
    with site(transport, world, "server"):
        ids = {f["id"] for f in _field_list("server")}
        assert "parent" not in ids and ESTIMATE not in ids and "statuscategorychangedate" not in ids
        assert {EPIC_LINK, STORY_POINTS} <= ids
        projects = _http("server").get(f"{BASE}/rest/api/2/project").json()
        assert all("simplified" not in p for p in projects)
        issues = [i for p in world.projects for i in _issues("server", p.key)]
        seen_subtask = False
        for issue in issues:
            fields = issue["fields"]
            assert "hierarchyLevel" not in fields["issuetype"]
            subtask = fields["issuetype"]["subtask"]
            seen_subtask = seen_subtask or subtask
            assert ("parent" in fields) == subtask  # sub-tasks keep theirs (JRA-47377)
            if subtask:
                assert "hierarchyLevel" not in fields["parent"]["fields"]["issuetype"]
            assert EPIC_LINK in fields and STORY_POINTS in fields and ESTIMATE not in fields
        assert seen_subtask
        # A team-managed project of the world shows as company-managed: its points and
        # epic are where Server keeps them.
        story = next(
            i for i in world.issues
            if i.project_key == team.key and i.story_points and i.parent_key
            and i.issue_type == "Story"
        )  # fmt: skip
        doc = _http("server").get(f"{BASE}/rest/api/2/issue/{story.key}").json()
        assert doc["fields"][STORY_POINTS] == story.story_points
        assert doc["fields"][EPIC_LINK] == story.parent_key


def test_deleting_a_story_deletes_its_sub_tasks(transport: Transport, world: World) -> None:
    """As Jira: ``DELETE /issue/{key}`` of an issue with sub-tasks needs
    ``deleteSubtasks=true`` (the real client's ``Issue.delete(deleteSubtasks=True)``)."""
    with site(transport, world) as backend:
        story = next(i for i in world.issues if i.issue_type == "Sub-task").parent_key or ""
        subtasks = {i.key for i in backend.issues.values() if i.parent_key == story}
        client = JIRA(BASE, basic_auth=(EMAIL, TOKEN), max_retries=0)
        with pytest.raises(JIRAError) as caught:
            client.issue(story).delete()
        assert caught.value.status_code == 400 and "deleteSubtasks" in str(caught.value.text)
        assert {story} | subtasks <= set(backend.issues)
        client.issue(story).delete(deleteSubtasks=True)
        assert not ({story} | subtasks) & set(backend.issues)
        backend.reset()
        assert {story} | subtasks <= set(backend.issues)


def test_the_sandbox_takes_a_locale_and_refuses_another() -> None:
    box = Sandbox(issues=10, accounts=3, seed=1, locale="zh")
    assert box.jira.site_fields.name(EPIC_LINK) == "史诗链接"
    with pytest.raises(ValueError, match="locale"):
        Sandbox(issues=10, accounts=3, seed=1, locale="fr")
