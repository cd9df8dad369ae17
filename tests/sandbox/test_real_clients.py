"""Real clients other than ours against the sandbox over HTTPS, signed in with what the
ready line gives (SPEC section 8: they must work unmodified).

singer-io tap-jira 2.6.0 (tap_jira/http.py, streams.py ``Issues.sync``, ``Context``) is not
a dependency: its requests are reproduced here exactly, with ``requests``, as its Basic-auth
client sends them (``HTTPBasicAuth(username, password)``; the OAuth mode only talks to
api.atlassian.com). Its issues stream reads serverInfo and /myself, makes a one-issue
validation search, then pages ``/rest/api/2/search/jql`` by ``nextPageToken`` with
``fields=*all&expand=changelog,transitions&validateQuery=strict``, falling back to the
legacy ``/rest/api/2/search`` by ``startAt`` when search/jql answers 404 (Server/DC). For
every issue it pops ``fields.comment.comments``, ``changelog.histories`` and
``transitions``: a search that ignores ``expand=transitions`` ends it on the first page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPBasicAuth

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox

ANCHOR = datetime(2025, 9, 1, tzinfo=UTC)
ISSUES = 130
#: tap-jira 2.6.0's default start_date bookmark, as its JQL writes it ("%Y-%m-%d %H:%M").
START = "2000-01-01 00:00"


class JiraNotFoundError(Exception):
    """tap-jira's exception for a 404 (its fallback keys on the message)."""


class TapJira:
    """The calls tap-jira 2.6.0's Basic-auth client and issues stream make, verbatim."""

    def __init__(self, config: dict[str, str], ca_bundle: str) -> None:
        self.base_url = config["base_url"]
        self.session = requests.Session()
        self.session.verify = ca_bundle
        self.auth = HTTPBasicAuth(config["username"], config["password"])
        self.calls: list[tuple[str, str]] = []
        # Client.test_basic_credentials_are_authorized
        info = self.request("GET", "/rest/api/2/serverInfo")
        self.is_on_prem_instance = info.get("deploymentType") == "Server"

    def request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        url = self.base_url.rstrip("/") + "/" + path.lstrip("/")
        prepared = requests.Request(method, url, auth=self.auth, params=params).prepare()
        response = self.session.send(prepared, timeout=300)
        self.calls.append((method, path))
        if response.status_code != 200:  # http.check_status
            try:
                message = response.json().get("errorMessages", ["Unknown Error"])[0]
            except ValueError:
                message = "Unknown Error"
            text = f"HTTP-error-code: {response.status_code}, Error: {message}"
            if response.status_code == 404:
                raise JiraNotFoundError(text)
            raise RuntimeError(text)
        return response.json()

    def issues(self) -> Iterator[list[dict[str, Any]]]:
        """streams.Issues.sync's search, paged as IssuesPaginator / Paginator page."""
        self.request("GET", "/rest/api/2/myself")["timeZone"]  # Context.retrieve_timezone
        jql = f"updated >= '{START}' order by updated asc"
        params: dict[str, Any] = {
            "fields": "*all",
            "expand": "changelog,transitions",
            "validateQuery": "strict",
            "jql": jql,
        }
        endpoint = "/rest/api/2/search/jql"
        try:
            self.request("GET", endpoint, params={**params, "maxResults": 1})
        except JiraNotFoundError as exc:
            assert "HTTP-error-code: 404" in str(exc)
            yield from self._offset_pages("/rest/api/2/search", params)
            return
        yield from self._token_pages(endpoint, params)

    def _token_pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        params = dict(params)
        token: str | None = None
        while True:
            if token:
                params["nextPageToken"] = token
            response = self.request("GET", path, params)
            page = response["issues"]
            more = not response["isLast"] if "isLast" in response else True
            token = response.get("nextPageToken") or None
            if page:
                yield page
            if not more:
                return

    def _offset_pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        params = dict(params)
        start: int | None = 0
        while start is not None:
            params["startAt"] = start
            response = self.request("GET", path, params)
            page = response["issues"]
            size = response["maxResults"] if "maxResults" in response else params["maxResults"]
            start = None if len(page) < size else start + size
            if page:
                yield page


def sync_issues(tap: TapJira) -> dict[str, dict[str, Any]]:
    """What the tap keeps of each issue, through streams.sync_sub_streams."""
    synced: dict[str, dict[str, Any]] = {}
    for page in tap.issues():
        for issue in page:
            comments = issue["fields"].pop("comment")["comments"]
            histories = issue.pop("changelog")["histories"]
            transitions = issue.pop("transitions")
            issue["fields"].pop("worklog", None)
            issue["fields"].pop("operations", None)
            synced[issue["key"]] = {
                "comments": comments,
                "histories": histories,
                "transitions": transitions,
                "issue": issue,
            }
        datetime.strptime(page[-1]["fields"]["updated"], "%Y-%m-%dT%H:%M:%S.%f%z")
    return synced


@pytest.fixture(params=["cloud", "server"])
def served(
    request: pytest.FixtureRequest, tls: Tls, tmp_path: Path
) -> Iterator[tuple[Sandbox, dict[str, Any]]]:
    box = Sandbox(issues=ISSUES, accounts=10, seed=9, anchor=ANCHOR, jira_mode=request.param)
    box.serve(tmp_path, tls=tls)
    try:
        yield box, box.ready_document()
    finally:
        box.stop()


def test_tap_jira_syncs_every_issue_with_the_ready_line_basic_credentials(
    served: tuple[Sandbox, dict[str, Any]],
) -> None:
    box, ready = served
    config = {
        "base_url": ready["jira_url"],
        "username": ready["jira_username"],
        "password": ready["jira_password"],
    }
    tap = TapJira(config, ready["ca_bundle"])
    assert tap.is_on_prem_instance is (box.jira_mode == "server")
    synced = sync_issues(tap)

    assert set(synced) == set(box.jira.issues)
    for key, kept in synced.items():
        issue = box.jira.issues[key]
        assert kept["transitions"] and all(
            t["to"]["name"] != issue.status for t in kept["transitions"]
        )
        assert [h["items"][0]["toString"] for h in kept["histories"]] == [
            change.to_status for change in issue.history
        ]
    paths = [path for _, path in tap.calls]
    if box.jira_mode == "cloud":
        assert "/rest/api/2/search" not in paths
        assert paths.count("/rest/api/2/search/jql") == 1 + -(-ISSUES // 50)  # 50 a page
    else:  # search/jql is Cloud's: 404, then the legacy search
        assert paths.count("/rest/api/2/search/jql") == 1
        assert paths.count("/rest/api/2/search") == -(-ISSUES // 50) + (ISSUES % 50 == 0)


def test_ready_line_basic_credentials_are_the_sites_and_nothing_else_signs_in(
    served: tuple[Sandbox, dict[str, Any]],
) -> None:
    box, ready = served
    url = f"{ready['jira_url']}/rest/api/2/myself"
    ca = ready["ca_bundle"]
    me = requests.get(url, auth=(ready["jira_username"], ready["jira_password"]), verify=ca)
    assert me.status_code == 200
    c = box.credentials
    if box.jira_mode == "cloud":  # Atlassian's Basic auth: email + API token
        assert (ready["jira_username"], ready["jira_password"]) == (
            ready["jira_email"],
            ready["jira_token"],
        )
        assert me.json()["emailAddress"] == ready["jira_email"]
    else:  # Server/DC: a user name and password, and the PAT as Bearer
        assert me.json()["name"] == ready["jira_username"] == c.jira_username
        bearer = {"Authorization": f"Bearer {ready['jira_token']}"}
        assert requests.get(url, headers=bearer, verify=ca).status_code == 200
    wrong = requests.get(url, auth=(ready["jira_username"], "not-the-password"), verify=ca)
    assert wrong.status_code == 401
