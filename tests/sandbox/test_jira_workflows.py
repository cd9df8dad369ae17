"""The sandbox's Jira is as messy as real sites in workflows and times: projects whose Done
sets no resolution, workflows that keep a resolution across a reopening, reopened histories,
``statuscategorychangedate`` on Cloud (absent on the older Server), and every time written
in the site's zone (+0800, -0500), not only +0000. Driven through the real ``jira`` client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from jira import JIRA

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.jira import JiraBackend
from connectors.sandbox.world import (
    CLASSIC,
    KEEPS_RESOLUTION,
    NO_RESOLUTION,
    World,
    category_changed,
    generate_world,
)
from tests.sandbox.conftest import Transport

BASE = "https://sandbox.atlassian.net"
EMAIL, TOKEN, PAT = "sync@example.com", "api-token-1", "pat-1"
#: Winter: New York is at -0500, Shanghai at +0800.
ANCHOR = datetime(2026, 1, 15, tzinfo=UTC)


class Site:
    """A backend mounted in-process, a logged-in client, and the backend's clock."""

    def __init__(self, backend: JiraBackend, client: JIRA, http: requests.Session) -> None:
        self.backend = backend
        self.client = client
        self.http = http
        self.now = ANCHOR + timedelta(hours=1)
        backend.clock = lambda: self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@contextmanager
def site(
    transport: Transport, world: World, deployment: str = "cloud", zone: str = "Asia/Shanghai"
) -> Iterator[Site]:
    backend = JiraBackend(
        world,
        deployment,
        email=EMAIL,
        api_token=TOKEN,
        personal_access_token=PAT,
        time_zone=zone,
    )
    with transport.mount(SandboxApp(backend), BASE):
        cloud = deployment == "cloud"
        if cloud:
            client = JIRA(BASE, basic_auth=(EMAIL, TOKEN), max_retries=0)
        else:
            client = JIRA(BASE, token_auth=PAT, max_retries=0)
        http = requests.Session()
        http.headers["Authorization"] = (
            requests.auth._basic_auth_str(EMAIL, TOKEN) if cloud else f"Bearer {PAT}"
        )
        yield Site(backend, client, http)


@pytest.fixture(scope="module")
def world() -> World:
    made = generate_world(issues=900, accounts=30, seed=4, anchor=ANCHOR)
    # Every kind of workflow, whatever the seed draws for the later projects.
    keys = [p.key for p in made.projects]
    kinds = (CLASSIC, NO_RESOLUTION, KEEPS_RESOLUTION)
    return replace(made, workflows={key: kinds[i % 3] for i, key in enumerate(keys)})


def project_with(world: World, workflow: object) -> str:
    return next(p.key for p in world.projects if world.workflow_of(p.key) == workflow)


def in_zone(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return (
        local.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{local.microsecond // 1000:03d}"
        + (local.strftime("%z"))
    )


def test_every_default_world_has_done_without_resolution_and_reopenings() -> None:
    for seed in (1, 2, 3):
        made = generate_world(500, 50, seed=seed, anchor=ANCHOR)
        assert made == generate_world(500, 50, seed=seed, anchor=ANCHOR)  # from the seed
        bare = [i for i in made.issues if i.status == "Done" and i.resolved is None]
        assert bare and {made.workflow_of(i.project_key) for i in bare} == {NO_RESOLUTION}
        reopened = [i for i in made.issues if any(c.from_status == "Done" for c in i.history)]
        assert reopened
        for issue in made.issues:
            workflow = made.workflow_of(issue.project_key)
            if workflow == CLASSIC:
                assert (issue.resolved is not None) == (issue.status == "Done")
            elif workflow == NO_RESOLUTION:
                assert issue.resolved is None
            if issue.history:
                assert issue.created <= issue.history[0].at
                assert [c.at for c in issue.history] == sorted(c.at for c in issue.history)
                assert issue.history[-1].at <= issue.updated
    larger = generate_world(3000, 50, seed=1, anchor=ANCHOR)
    stale = [
        i for i in larger.issues if i.status != "Done" and i.resolved is not None
    ]  # reopened where the workflow keeps the resolution
    assert stale
    assert {larger.workflow_of(i.project_key) for i in stale} == {KEEPS_RESOLUTION}


def test_done_without_resolution_has_only_the_category_change_date(
    transport: Transport, world: World
) -> None:
    key = project_with(world, NO_RESOLUTION)
    done = next(i for i in world.issues if i.project_key == key and i.status == "Done")
    with site(transport, world) as jira:
        fields = jira.client.issue(done.key).raw["fields"]
        assert fields["resolution"] is None and fields["resolutiondate"] is None
        assert fields["statuscategorychangedate"] == in_zone(
            category_changed(done), "Asia/Shanghai"
        )
        assert fields["statuscategorychangedate"] == in_zone(done.history[-1].at, "Asia/Shanghai")
        # A transition to Done in that project sets no resolution either.
        todo = next(i for i in world.issues if i.project_key == key and i.status == "To Do")
        moment = jira.advance(hours=3)
        jira.client.transition_issue(todo.key, "41")
        fields = jira.client.issue(todo.key).raw["fields"]
        assert fields["status"]["statusCategory"]["key"] == "done"
        assert fields["resolution"] is None and fields["resolutiondate"] is None
        assert fields["statuscategorychangedate"] == in_zone(moment, "Asia/Shanghai")


def test_a_kept_resolution_dates_the_first_resolve(transport: Transport, world: World) -> None:
    key = project_with(world, KEEPS_RESOLUTION)
    todo = next(i for i in world.issues if i.project_key == key and i.status == "To Do")
    with site(transport, world) as jira:
        first = jira.advance(hours=2)
        jira.client.transition_issue(todo.key, "41")
        jira.advance(days=1)
        jira.client.transition_issue(todo.key, "21")  # reopened: the resolution stays
        reopened = jira.client.issue(todo.key).raw["fields"]
        assert reopened["status"]["statusCategory"]["key"] == "indeterminate"
        assert reopened["resolutiondate"] == in_zone(first, "Asia/Shanghai")
        again = jira.advance(days=2)
        jira.client.transition_issue(todo.key, "41")
        fields = jira.client.issue(todo.key).raw["fields"]
        assert fields["resolutiondate"] == in_zone(first, "Asia/Shanghai")
        assert fields["statuscategorychangedate"] == in_zone(again, "Asia/Shanghai")


def test_an_issue_never_moved_changed_category_when_it_was_created(
    transport: Transport, world: World
) -> None:
    fresh = next(i for i in world.issues if not i.history)
    with site(transport, world) as jira:
        fields = jira.client.issue(fresh.key).raw["fields"]
        assert fields["statuscategorychangedate"] == fields["created"]


@pytest.mark.parametrize(
    ("zone", "offset"), [("Asia/Shanghai", "+0800"), ("America/New_York", "-0500")]
)
def test_times_are_written_in_the_site_zone(
    transport: Transport, world: World, zone: str, offset: str
) -> None:
    issue = next(i for i in world.issues if i.status == "Done" and i.resolved is not None)
    with site(transport, world, zone=zone) as jira:
        jira.client.add_comment(issue.key, "zoned")
        raw = jira.client.issue(issue.key, expand="changelog").raw
        fields = raw["fields"]
        written = [
            fields["created"],
            fields["updated"],
            fields["resolutiondate"],
            fields["statuscategorychangedate"],
            fields["comment"]["comments"][-1]["created"],
            *(h["created"] for h in raw["changelog"]["histories"]),
            jira.http.get(f"{BASE}/rest/api/2/serverInfo").json()["serverTime"],
        ]
        # Each in the zone's offset of its own moment (New York's summer is at -0400).
        for text in written:
            assert text == in_zone(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z"), zone)
        assert fields["updated"].endswith(offset)  # the comment, now, in January
        assert {text[-5:] for text in written} != {"+0000"}
        assert datetime.strptime(fields["created"], "%Y-%m-%dT%H:%M:%S.%f%z") == issue.created
        # The /myself zone is the one the times are written in.
        assert jira.client.myself()["timeZone"] == zone


def test_the_older_server_has_no_category_change_field(transport: Transport, world: World) -> None:
    issue = next(i for i in world.issues if i.status == "Done")
    with site(transport, world, "cloud") as cloud:
        ids = {f["id"]: f for f in cloud.client.fields()}
        assert ids["statuscategorychangedate"]["clauseNames"] == ["statusCategoryChangedDate"]
        assert ids["statuscategorychangedate"]["schema"]["type"] == "datetime"
        raw = cloud.client.issue(issue.key, fields="statuscategorychangedate,status").raw
        assert set(raw["fields"]) == {"status", "statuscategorychangedate"}
    with site(transport, world, "server") as server:
        assert "statuscategorychangedate" not in {f["id"] for f in server.client.fields()}
        raw = server.client.issue(issue.key, fields="statuscategorychangedate,status").raw
        assert set(raw["fields"]) == {"status"}
        found = server.http.get(
            f"{BASE}/rest/api/2/search",
            params={"jql": f"key = {issue.key}", "fields": "*all"},
        ).json()
        assert "statuscategorychangedate" not in found["issues"][0]["fields"]
        assert "resolutiondate" in found["issues"][0]["fields"]
