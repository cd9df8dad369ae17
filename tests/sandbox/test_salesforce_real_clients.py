"""Requests exactly as real clients other than ours send them (SPEC section 8: they must
work unmodified), over HTTPS on loopback. The clients are not installed (their pins clash
with ours); each test replays the requests of the named version, read from its source,
with only the host changed (both log in at login.salesforce.com)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox

ACCOUNTS = 2300


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=5, accounts=ACCOUNTS, seed=33)
    sandbox.serve(Path(tmp_path_factory.mktemp("real-clients")), tls=tls)
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def session(tls: Tls) -> Iterator[requests.Session]:
    with requests.Session() as opened:
        opened.verify = str(tls.ca_path)
        yield opened


def _refresh_login(box: Sandbox, session: requests.Session) -> dict[str, Any]:
    """tap-salesforce 2.9.0 ``Salesforce.login`` and airbyte source-salesforce
    (``api.py`` ``Salesforce.login``) send the same form."""
    ready = box.ready_document()
    login_body = {
        "grant_type": "refresh_token",
        "client_id": ready["salesforce_client_id"],
        "client_secret": ready["salesforce_client_secret"],
        "refresh_token": ready["salesforce_refresh_token"],
    }
    resp = session.post(
        f"{ready['salesforce_instance_url']}/services/oauth2/token",
        data=login_body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    resp.raise_for_status()
    auth: dict[str, Any] = resp.json()
    return auth


def test_refresh_token_grant_logs_in_and_a_wrong_token_is_refused(
    box: Sandbox, session: requests.Session
) -> None:
    auth = _refresh_login(box, session)
    assert auth["instance_url"] == box.ready_document()["salesforce_instance_url"]
    assert auth["token_type"] == "Bearer" and "refresh_token" not in auth  # no rotation
    wrong = session.post(
        f"{auth['instance_url']}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": box.credentials.salesforce_consumer_key,
            "refresh_token": "5Aep861-not-issued",
        },
        timeout=30,
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_tap_salesforce_discovery_and_incremental_rest_sync(
    box: Sandbox, session: requests.Session
) -> None:
    """tap-salesforce 2.9.0: ``batch_describe`` through Composite Batch, then
    ``Rest._sync_records``: GET ``queryAll`` with ``q`` built by ``_build_query_string``
    from a singer ``strftime`` bookmark (six fractional digits), following
    ``nextRecordsUrl`` with the same params, and its quota check on Sforce-Limit-Info."""
    auth = _refresh_login(box, session)
    base = auth["instance_url"]
    headers = {"Authorization": "Bearer {}".format(auth["access_token"])}
    body = {
        "haltOnError": True,
        "batchRequests": [
            {"method": "GET", "url": "/services/data/v{}.0/sobjects/{}/describe".format("61", name)}
            for name in ("Account", "Case")
        ],
    }
    described = session.post(
        "{}/services/data/v{}.0/{}".format(base, "61", "composite/batch"),
        headers={**headers, "Content-Type": "application/json"},
        data=json.dumps(body),
        timeout=30,
    )
    described.raise_for_status()
    resp_json = described.json()
    assert resp_json["hasErrors"] is False
    assert [r["result"]["name"] for r in resp_json["results"]] == ["Account", "Case"]

    start_date = "2000-01-01T00:00:00.000000Z"
    query = "SELECT {} FROM {}".format(",".join(["Id", "Name", "SystemModstamp"]), "Account")
    query += " WHERE {} >= {} ".format("SystemModstamp", start_date)
    query += " ORDER BY {} ASC".format("SystemModstamp")
    params = {"q": query}
    url = "{}/services/data/v{}.0/queryAll".format(base, "61")
    records: list[dict[str, Any]] = []
    while True:
        resp = session.get(url, headers=headers, params=params, timeout=30)
        resp.raise_for_status()
        assert re.search(r"^api-usage=(\d+)/(\d+)$", resp.headers.get("Sforce-Limit-Info"))
        resp_json = resp.json()
        records.extend(resp_json.get("records"))
        next_records_url = resp_json.get("nextRecordsUrl")
        if next_records_url is None:
            break
        url = f"{base}{next_records_url}"
    assert len(records) == ACCOUNTS == len({r["Id"] for r in records})


def test_airbyte_bulk_api_2_query_job(box: Sandbox, session: requests.Session) -> None:
    """airbyte source-salesforce ``BulkSalesforceStream``: ``create_stream_job``,
    ``wait_for_job``, ``download_data`` (gzip, streamed) until ``Sforce-Locator`` is
    "null", CSV read in the unix dialect, then ``delete_job``; the incremental query
    bounds are pendulum ``isoformat(timespec="milliseconds")``."""
    auth = _refresh_login(box, session)
    base = auth["instance_url"]
    auth_header = {"Authorization": "Bearer {}".format(auth["access_token"])}
    url = f"{base}/services/data/v57.0/jobs/query"
    query = (
        "SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp >= "
        "2000-01-01T00:00:00.000+00:00 AND SystemModstamp < 2100-01-01T00:00:00.000+00:00"
    )
    json_body = {
        "operation": "queryAll",
        "query": query,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    created = session.request("POST", url=url, headers=auth_header, json=json_body, timeout=30)
    created.raise_for_status()
    job_full_url = f"{url}/{created.json()['id']}"
    states = []
    for _ in range(10):
        job_info = session.request("GET", url=job_full_url, headers=auth_header, timeout=30).json()
        states.append(job_info["state"])
        if job_info["state"] in ["JobComplete", "Aborted", "Failed"]:
            break
    assert states == ["UploadComplete", "InProgress", "JobComplete"]

    rows: list[dict[str, str]] = []
    locator = None
    while True:
        req = requests.models.PreparedRequest()
        req.prepare_url(f"{job_full_url}/results", {"locator": locator})
        response = session.request(
            "GET",
            url=req.url,
            headers={"Accept-Encoding": "gzip", **auth_header},
            stream=True,
            timeout=30,
        )
        response.raise_for_status()
        assert response.headers["Content-Encoding"] == "gzip"
        data = b"".join(response.iter_content(chunk_size=1024)).decode("utf-8")
        rows.extend(csv.DictReader(io.StringIO(data), dialect="unix"))
        if response.headers.get("Sforce-Locator", "null") == "null":
            break
        locator = response.headers.get("Sforce-Locator")
    session.request("DELETE", url=job_full_url, headers=auth_header, timeout=30).raise_for_status()
    assert len(rows) == ACCOUNTS == len({r["Id"] for r in rows})
    assert all(r["SystemModstamp"].endswith(".000Z") for r in rows)
    gone = session.request("GET", url=job_full_url, headers=auth_header, timeout=30)
    assert gone.status_code == 404


def test_an_over_long_request_line_is_answered_414_not_dropped(
    box: Sandbox, session: requests.Session
) -> None:
    """Past 64 KiB of request line the server answered nothing and dropped the connection;
    now both apps answer 414 in their own error shape (Salesforce refuses past 16 KiB)."""
    ready = box.ready_document()
    sf = session.get(
        f"{ready['salesforce_instance_url']}/services/data/v59.0/query",
        params={"q": "SELECT Id FROM Account WHERE Name = '" + "n" * 70_000 + "'"},
        headers={"Authorization": f"Bearer {ready['salesforce_access_token']}"},
        timeout=30,
    )
    assert sf.status_code == 414 and sf.json()[0]["errorCode"] == "URI_TOO_LONG"
    jira = session.get(
        f"{ready['jira_url']}/rest/api/2/search/jql",
        params={"jql": "summary ~ " + "j" * 70_000},
        auth=(ready["jira_email"], ready["jira_token"]),
        timeout=30,
    )
    assert jira.status_code == 414 and jira.json()["errorMessages"]
    # The servers go on serving.
    assert session.get(f"{ready['jira_url']}/_sandbox/stats", timeout=30).status_code == 200
