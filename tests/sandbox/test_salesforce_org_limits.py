"""The Salesforce sandbox as messy and as strict as the real org (issue 14), through the
unmodified simple-salesforce 1.12.10 (its REST calls and its ``bulk2`` Bulk API 2.0 client)
and plain ``requests``: datetime literals with six or more fractional digits, pages
shorter than the batch size asked, queryAll's next pages at ``/query/<locator>``,
``WWW-Authenticate`` on 401s, 414/431 past 16,384 bytes, REST refused for a session, and
Bulk API 2.0 query jobs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.salesforce import SalesforceBackend
from connectors.sandbox.world import generate_world
from tests.sandbox.conftest import Transport

INSTANCE = "https://sandbox.my.salesforce.com"
LOGIN = "https://login.salesforce.com"
TOKEN = "00DSANDBOX!limits-token"
QUERY_MORE = "GET /services/data/v{version}/query/{locator}"


@dataclass
class Org:
    backend: SalesforceBackend
    app: SandboxApp
    sf: Salesforce

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
        return requests.get(f"{INSTANCE}{path}", headers=headers, timeout=10, **kwargs)


def _org(accounts: int, seed: int) -> SalesforceBackend:
    return SalesforceBackend(
        generate_world(issues=0, accounts=accounts, seed=seed),
        access_token=TOKEN,
        instance_url=INSTANCE,
    )


@pytest.fixture
def org(transport: Transport) -> Iterator[Org]:
    backend = _org(1300, 41)
    app = SandboxApp(backend)
    with transport.mount(app, INSTANCE, LOGIN):
        yield Org(backend, app, Salesforce(instance_url=INSTANCE, session_id=TOKEN))


def test_datetime_literals_with_six_or_more_fractional_digits(org: Org) -> None:
    """tap-salesforce 2.9.0 builds ``WHERE SystemModstamp >= <singer strftime>``, i.e.
    ``2000-01-01T00:00:00.000000Z``; Salesforce takes any number of digits."""
    every = org.sf.query_all("SELECT Id FROM Account")["totalSize"]
    for literal in ("2000-01-01T00:00:00.000000Z", "2000-01-01T00:00:00.123456789+0000"):
        found = org.sf.query_all(
            f"SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp >= {literal} "
            "ORDER BY SystemModstamp ASC"
        )
        assert found["totalSize"] == every


def _page_sizes(transport: Transport, backend: SalesforceBackend, batch: int) -> list[int]:
    app = SandboxApp(backend)
    sizes: list[int] = []
    with transport.mount(app, INSTANCE):
        sf = Salesforce(instance_url=INSTANCE, session_id=TOKEN)
        headers = {"Sforce-Query-Options": f"batchSize={batch}"}
        page = sf.query("SELECT Id FROM Account ORDER BY Id", headers=headers)
        sizes.append(len(page["records"]))
        while not page["done"]:
            page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=headers)
            sizes.append(len(page["records"]))
    return sizes


def test_pages_are_sometimes_shorter_than_the_batch_size_asked(transport: Transport) -> None:
    """``batchSize`` is not guaranteed: some full pages come shorter; which ones follows
    from the seed, so the same world pages the same way every run."""
    sizes = _page_sizes(transport, _org(1300, 41), 200)
    assert sum(sizes) == 1300 and max(sizes) == 200
    assert any(size < 200 for size in sizes[:-1])
    assert sizes == _page_sizes(transport, _org(1300, 41), 200)


def test_query_all_next_pages_are_at_query_locator(org: Org) -> None:
    """Real Salesforce: "Although the nextRecordsUrl has query in the URL, it still provides
    the remaining results from the initial QueryAll request" (deleted rows included)."""
    victims = [r["Id"] for r in org.backend.records("Account")[-3:]]
    for victim in victims:
        org.backend.delete_record("Account", victim)
    page = org.sf.query_all_iter(
        "SELECT Id, IsDeleted FROM Account ORDER BY Id",
        include_deleted=True,
        headers={"Sforce-Query-Options": "batchSize=500"},
    )
    first = org.sf.query(
        "SELECT Id FROM Account",
        include_deleted=True,
        headers={"Sforce-Query-Options": "batchSize=500"},
    )
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    rows = list(page)
    assert len(rows) == 1300 and sorted(r["Id"] for r in rows if r["IsDeleted"]) == sorted(victims)
    assert org.app.stats.snapshot()["by_endpoint"][QUERY_MORE] >= 1


def test_a_401_names_its_scheme(org: Org) -> None:
    response = requests.get(
        f"{INSTANCE}/services/data/v59.0/limits",
        headers={"Authorization": "Bearer wrong"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_uri_and_headers_over_16_kib_are_refused_as_salesforce_does(org: Org) -> None:
    long_name = "x" * 17_000
    too_long = org.get(
        "/services/data/v59.0/query",
        params={"q": f"SELECT Id FROM Account WHERE Name = '{long_name}'"},
    )
    assert too_long.status_code == 414 and too_long.json()[0]["errorCode"] == "URI_TOO_LONG"
    heavy = org.get("/services/data/v59.0/limits", headers={"X-Padding": "y" * 16_500})
    assert heavy.status_code == 431
    assert org.get("/services/data/v59.0/limits").status_code == 200


def test_a_session_refused_for_rest_while_logins_work(org: Org) -> None:
    """The control API's ``/_sandbox/user`` takes the user's API access away (a profile
    without "API Enabled", a connected app without the "api" scope)."""
    off = requests.post(f"{INSTANCE}/_sandbox/user", json={"api_enabled": False}, timeout=10)
    assert off.json() == {"api_enabled": False}
    token = requests.post(
        f"{LOGIN}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": org.backend.consumer_key,
            "client_secret": org.backend.consumer_secret,
            "username": org.backend.username,
            "password": org.backend.password,
        },
        timeout=10,
    )
    assert token.status_code == 200
    with pytest.raises(SalesforceExpiredSession) as caught:
        Salesforce(instance_url=INSTANCE, session_id=token.json()["access_token"]).query(
            "SELECT Id FROM Account"
        )
    assert caught.value.content == [
        {
            "message": "This session is not valid for use with the REST API",
            "errorCode": "INVALID_SESSION_ID",
        }
    ]
    requests.post(f"{INSTANCE}/_sandbox/reset", timeout=10)
    assert org.sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def _csv_rows(chunks: list[str]) -> list[dict[str, str]]:
    return [row for chunk in chunks for row in csv.DictReader(io.StringIO(chunk))]


def test_bulk_query_jobs_through_simple_salesforce_bulk2(org: Org) -> None:
    """simple-salesforce 1.12.10's ``bulk2``: create, poll (UploadComplete, InProgress,
    JobComplete), results in sets of ``maxRecords`` by ``Sforce-Locator``."""
    soql = "SELECT Id, Name, CSAT__c, Owner.Name, SystemModstamp FROM Account ORDER BY Id"
    chunks = list(org.sf.bulk2.Account.query(soql, max_records=500, wait=0))
    assert len(chunks) == 3  # 500 + 500 + 300
    rows = _csv_rows(chunks)
    rest = org.sf.query_all(soql)["records"]
    assert [r["Id"] for r in rows] == [r["Id"] for r in rest]
    first, same = rows[0], rest[0]
    assert first["Owner.Name"] == same["Owner"]["Name"]
    assert first["CSAT__c"] == ("" if same["CSAT__c"] is None else str(same["CSAT__c"]))
    assert first["SystemModstamp"] == same["SystemModstamp"].replace("+0000", "Z")
    assert chunks[0].startswith('"Id","Name","CSAT__c","Owner.Name","SystemModstamp"\n"001')
    # queryAll jobs include the recycle bin.
    victim = rest[0]["Id"]
    org.backend.delete_record("Account", victim)
    everything = _csv_rows(
        list(org.sf.bulk2.Account.query_all("SELECT Id, IsDeleted FROM Account", wait=0))
    )
    assert {r["Id"]: r["IsDeleted"] for r in everything}[victim] == "true"
    live = _csv_rows(list(org.sf.bulk2.Account.query("SELECT Id FROM Account", wait=0)))
    assert victim not in {r["Id"] for r in live} and len(live) == 1299


def test_bulk_query_job_refusals(org: Org) -> None:
    client = org.sf.bulk2.Account._client
    with pytest.raises(SalesforceMalformedRequest) as bad:
        client.create_job("query", "SELECT Id, Nope__c FROM Account")
    assert bad.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as counted:
        client.create_job("query", "SELECT COUNT() FROM Account")
    assert "COUNT()" in counted.value.content[0]["message"]
    job = client.create_job("query", "SELECT Id FROM Account")
    assert job["state"] == "UploadComplete" and job["apiVersion"] == 59.0
    early = org.get(f"/services/data/v59.0/jobs/query/{job['id']}/results")
    assert early.status_code == 400  # not JobComplete yet
    aborted = client.abort_job(job["id"], True)
    assert aborted["state"] == "Aborted"
    listed = org.get("/services/data/v59.0/jobs/query").json()
    assert [j["id"] for j in listed["records"]] == [job["id"]] and listed["done"] is True
    # Salesforce answers a delete 204 with no body (simple-salesforce's delete_job expects
    # JSON there, so it is sent plainly here, as airbyte does).
    gone = requests.delete(
        f"{INSTANCE}/services/data/v59.0/jobs/query/{job['id']}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert gone.status_code == 204 and gone.content == b""
    assert org.get(f"/services/data/v59.0/jobs/query/{job['id']}").status_code == 404
    # Results are read with the version that created the job.
    other = client.create_job("query", "SELECT Id FROM Account")
    while client.get_job(other["id"], True)["state"] != "JobComplete":
        pass
    assert org.get(f"/services/data/v61.0/jobs/query/{other['id']}/results").status_code == 409
