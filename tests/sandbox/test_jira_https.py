"""The key Jira scenarios again, over real HTTPS on loopback, with the unmodified client
trusting the sandbox CA."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from jira import JIRA

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.jira import JiraBackend
from connectors.sandbox.server import Tls
from connectors.sandbox.world import World, generate_world

EMAIL, TOKEN, PAT = "https@example.com", "https-token", "https-pat"

Serve = Callable[[SandboxApp], str]


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(issues=450, accounts=30, seed=31, anchor=datetime(2025, 7, 1, tzinfo=UTC))


def calls(app: SandboxApp, endpoint: str) -> int:
    return int(app.stats.snapshot()["by_endpoint"].get(endpoint, 0))


def test_cloud_over_https(world: World, serve: Serve, tls: Tls) -> None:
    backend = JiraBackend(world, "cloud", email=EMAIL, api_token=TOKEN)
    app = SandboxApp(backend)
    url = serve(app)
    client = JIRA(
        url, basic_auth=(EMAIL, TOKEN), options={"verify": str(tls.ca_path)}, max_retries=0
    )
    assert client.deploymentType == "Cloud"
    app.stats.reset()

    issues = client.search_issues("created >= -1000d", maxResults=False)
    assert len(issues) == 450
    assert calls(app, "GET /rest/api/2/search/jql") == math.ceil(450 / 100)
    assert issues[0].self.startswith(url)

    key = issues[7].key
    issue = client.issue(key)
    issue.update(update={"labels": [{"add": "https-flag"}]})  # PUT, then GET of issue.self
    assert "https-flag" in issue.fields.labels
    client.add_comment(key, "over TLS 安全")
    assert [c.body for c in client.comments(key)] == ["over TLS 安全"]
    client.add_issue_property(key, "sync", {"v": 1})
    assert client.issue_property(key, "sync").raw["value"] == {"v": 1}
    target = next(t for t in client.transitions(key) if t["name"] == "Blocked")
    client.transition_issue(key, target["id"])
    assert client.issue(key).fields.status.name == "Blocked"
    found = client.search_issues("labels = https-flag AND status = Blocked", fields="key")
    assert [i.key for i in found] == [key]

    stats = app.stats.snapshot()["by_endpoint"]
    assert stats["PUT /rest/api/2/issue/{key}"] == 1
    assert stats["POST /rest/api/2/issue/{key}/comment"] == 1
    assert stats["POST /rest/api/2/issue/{key}/transitions"] == 1
    assert stats["PUT /rest/api/2/issue/{key}/properties/{propertyKey}"] == 1


def test_server_over_https(world: World, serve: Serve, tls: Tls) -> None:
    backend = JiraBackend(world, "server", personal_access_token=PAT)
    app = SandboxApp(backend)
    url = serve(app)
    client = JIRA(url, token_auth=PAT, options={"verify": str(tls.ca_path)}, max_retries=0)
    assert client.deploymentType == "Server"
    app.stats.reset()
    issues = client.search_issues("created >= -1000d", maxResults=False)
    assert [i.key for i in issues] == [i.key for i in backend.ordered_issues()]
    assert calls(app, "GET /rest/api/2/search") == math.ceil(450 / 100)
    versions = client.project_versions(world.projects[0].key)
    assert [v.id for v in versions] == [
        v.id for v in world.versions if v.project_key == world.projects[0].key
    ]
