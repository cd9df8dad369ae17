"""The HubSpot sandbox as a client sees it, with plain httpx: the same suite over real HTTPS
on loopback and in-process (the httpx transport), as the other emulators run both ways."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.hubspot.models import DEFAULT_PRIVATE_APP_TOKEN
from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID
from connectors.sandbox.server import Tls
from connectors.tls import ssl_context
from tests.connectors.hubspot_portal import Portal, in_process_portal, served_portal

COMPANIES = "0-2"


@pytest.fixture(params=["https", "in-process"])
def portal(request: pytest.FixtureRequest, serve: Callable[[SandboxApp], str], tls: Tls) -> Portal:
    if request.param == "https":
        return served_portal(serve, tls, accounts=30)
    return in_process_portal(accounts=30)


@pytest.fixture
def http(portal: Portal) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {DEFAULT_PRIVATE_APP_TOKEN}"}
    if portal.transport is not None:
        client = httpx.Client(base_url=portal.url, transport=portal.transport, headers=headers)
    else:
        assert portal.ca_bundle is not None
        client = httpx.Client(
            base_url=portal.url, verify=ssl_context(portal.ca_bundle), headers=headers
        )
    with client:
        yield client


def search(http: httpx.Client, body: dict[str, object], kind: str = "companies") -> httpx.Response:
    return http.post(f"/crm/v3/objects/{kind}/search", json=body)


def test_search_filters_sorts_and_pages(portal: Portal, http: httpx.Client) -> None:
    body: dict[str, object] = {
        "filterGroups": [
            {"filters": [{"propertyName": "customer_group", "operator": "EQ", "value": "SMB"}]},
            {"filters": [{"propertyName": "customer_group", "operator": "EQ", "value": "大客户"}]},
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["name", "customer_group"],
        "limit": 4,
    }
    seen: list[dict[str, object]] = []
    while True:
        answer = search(http, body).json()
        seen += answer["results"]
        nxt = answer.get("paging", {}).get("next", {}).get("after")
        if not nxt:
            break
        body["after"] = nxt
    wanted = {
        i
        for i, r in portal.backend.records[COMPANIES].items()
        if r.properties.get("customer_group") in ("SMB", "大客户")
    }
    assert {str(r["id"]) for r in seen} == wanted and answer["total"] == len(wanted)
    stamps = [str(r["properties"]["hs_lastmodifieddate"]) for r in seen]  # type: ignore[index]
    assert stamps == sorted(stamps)


def test_search_refuses_what_hubspot_refuses(http: httpx.Client) -> None:
    past_cap = search(http, {"limit": 100, "after": "9901"})
    assert past_cap.status_code == 400 and past_cap.json()["category"] == "VALIDATION_ERROR"
    assert "10000" in past_cap.json()["message"]
    groups = [{"filters": [{"propertyName": "name", "operator": "HAS_PROPERTY"}]}] * 6
    assert search(http, {"filterGroups": groups}).status_code == 400
    unknown = [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]
    assert "nope" in search(http, {"filterGroups": unknown}).json()["message"]
    assert search(http, {"limit": 201}).status_code == 400


def test_the_index_lags_behind_writes(portal: Portal, http: httpx.Client) -> None:
    portal.backend.index_lag_ms = 5_000
    company = next(iter(portal.backend.records[COMPANIES]))
    http.patch(
        f"/crm/v3/objects/companies/{company}", json={"properties": {"domain": "new.example"}}
    )
    by_domain = {
        "filterGroups": [
            {"filters": [{"propertyName": "domain", "operator": "EQ", "value": "new.example"}]}
        ]
    }
    assert search(http, by_domain).json()["total"] == 0
    got = http.get(f"/crm/v3/objects/companies/{company}", params={"properties": "domain"}).json()
    assert got["properties"]["domain"] == "new.example"  # reads are not lagging
    portal.clock.advance(6)
    assert search(http, by_domain).json()["total"] == 1


def test_archived_records_and_merges(portal: Portal, http: httpx.Client) -> None:
    first, second, third = sorted(portal.backend.records[COMPANIES], key=int)[:3]
    assert http.delete(f"/crm/v3/objects/companies/{third}").status_code == 204
    archived = http.get(
        "/crm/v3/objects/companies", params={"archived": "true", "limit": 100}
    ).json()
    assert [r["id"] for r in archived["results"]] == [third] and archived["results"][0]["archived"]
    merged = http.post(
        "/crm/v3/objects/companies/merge",
        json={"primaryObjectId": first, "objectIdToMerge": second},
    )
    assert merged.json()["properties"].get("hs_object_id") == first
    again = http.get(
        f"/crm/v3/objects/companies/{second}", params={"properties": "hs_merged_object_ids"}
    ).json()
    assert again["id"] == first and again["properties"]["hs_merged_object_ids"] == second
    listed: list[str] = []
    params: dict[str, object] = {"limit": 7}
    while True:
        page = http.get("/crm/v3/objects/companies", params=params).json()
        listed += [r["id"] for r in page["results"]]
        if "paging" not in page:
            break
        params["after"] = page["paging"]["next"]["after"]
    assert second not in listed and third not in listed and first in listed
    assert len(listed) == len(portal.backend.records[COMPANIES]) - 2


def test_batch_upsert_answers_per_record(http: httpx.Client) -> None:
    inputs = [
        {
            "idProperty": "jira_sync_key",
            "id": "k1",
            "objectWriteTraceId": "0",
            "properties": {"health": "Green"},
        },
        {
            "idProperty": "jira_sync_key",
            "id": "k2",
            "objectWriteTraceId": "1",
            "properties": {"health": "Blue"},
        },
        {
            "idProperty": "jira_sync_key",
            "id": "k3",
            "objectWriteTraceId": "2",
            "properties": {"nope": "1"},
        },
    ]
    answer = http.post(f"/crm/v3/objects/{CUSTOM_TYPE_ID}/batch/upsert", json={"inputs": inputs})
    assert answer.status_code == 207
    body = answer.json()
    assert [r["properties"]["jira_sync_key"] for r in body["results"]] == ["k1"]
    assert body["results"][0]["new"] is True
    traces = {e["context"]["objectWriteTraceId"][0]: e for e in body["errors"]}
    assert set(traces) == {"1", "2"}
    assert traces["2"]["context"]["propertyName"] == ["nope"]
    again = http.post(f"/crm/v3/objects/{CUSTOM_TYPE_ID}/batch/upsert", json={"inputs": inputs[:1]})
    assert again.status_code == 200 and again.json()["results"][0]["new"] is False
    too_many = [dict(inputs[0], id=f"k{i}") for i in range(101)]
    refused = http.post(f"/crm/v3/objects/{CUSTOM_TYPE_ID}/batch/upsert", json={"inputs": too_many})
    assert refused.status_code == 400 and "100" in refused.json()["message"]
    not_unique = [dict(inputs[0], idProperty="health")]
    assert (
        http.post(
            f"/crm/v3/objects/{CUSTOM_TYPE_ID}/batch/upsert", json={"inputs": not_unique}
        ).status_code
        == 400
    )


def test_batch_read_reports_missing_ids(portal: Portal, http: httpx.Client) -> None:
    known = next(iter(portal.backend.records[COMPANIES]))
    answer = http.post(
        "/crm/v3/objects/companies/batch/read",
        json={"properties": ["name"], "inputs": [{"id": known}, {"id": "424242"}]},
    )
    assert answer.status_code == 207
    assert [r["id"] for r in answer.json()["results"]] == [known]
    assert answer.json()["errors"][0]["context"]["ids"] == ["424242"]


def test_associations_v4(portal: Portal, http: httpx.Client) -> None:
    tickets = sorted(portal.backend.records["0-5"], key=int)[:3]
    answer = http.post(
        "/crm/v4/associations/tickets/companies/batch/read",
        json={"inputs": [{"id": t} for t in tickets]},
    ).json()
    assert [r["from"]["id"] for r in answer["results"]] == tickets
    assert all(r["to"][0]["associationTypes"][0]["label"] == "Primary" for r in answer["results"])
    company = next(iter(portal.backend.records[COMPANIES]))
    made = http.post(
        "/crm/v4/associations/tickets/companies/batch/associate/default",
        json={"inputs": [{"from": {"id": tickets[0]}, "to": {"id": company}}]},
    )
    assert made.status_code == 201
    assert company in portal.backend.associated("0-5", tickets[0], COMPANIES)


def test_missing_scopes_are_named(portal: Portal, http: httpx.Client) -> None:
    portal.backend.scopes.discard("crm.objects.companies.write")
    refused = http.patch(
        f"/crm/v3/objects/companies/{next(iter(portal.backend.records[COMPANIES]))}",
        json={"properties": {}},
    )
    assert refused.status_code == 403
    body = refused.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.companies.write"]
    assert search(http, {"limit": 1}).status_code == 200  # reading still works


def test_rate_headers_and_the_429s(portal: Portal, http: httpx.Client) -> None:
    portal.backend.burst_limit = 3
    answers = [http.get("/crm/v3/properties/companies") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["X-HubSpot-RateLimit-Daily"] == str(portal.backend.daily_limit)
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert answers[3].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    portal.clock.advance(10)
    assert http.get("/crm/v3/properties/companies").status_code == 200
    portal.backend.daily_limit = portal.backend.daily_used
    daily = http.get("/crm/v3/properties/companies")
    assert daily.status_code == 429 and daily.json()["policyName"] == "DAILY"


def test_oauth_apps_get_no_daily_headers_and_tokens_expire(
    portal: Portal, http: httpx.Client
) -> None:
    grant = http.post(
        "/oauth/v1/token",
        data={
            "grant_type": "refresh_token",
            "client_id": portal.backend.client_id,
            "client_secret": portal.backend.client_secret,
            "refresh_token": portal.backend.refresh_token,
        },
    )
    token = grant.json()["access_token"]
    answer = http.get("/crm/v3/properties/companies", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and "X-HubSpot-RateLimit-Daily" not in answer.headers
    assert "X-HubSpot-RateLimit-Remaining" in answer.headers
    portal.clock.advance(grant.json()["expires_in"] + 1)
    expired = http.get("/crm/v3/properties/companies", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    wrong = http.post(
        "/oauth/v1/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "x",
            "client_secret": "y",
            "refresh_token": "z",
        },
    )
    assert wrong.status_code == 400


def test_schemas_and_properties(portal: Portal, http: httpx.Client) -> None:
    schemas = http.get("/crm/v3/schemas").json()["results"]
    assert [s["labels"]["singular"] for s in schemas] == ["Jira Project Status"]
    props = {
        p["name"]: p for p in http.get(f"/crm/v3/properties/{CUSTOM_TYPE_ID}").json()["results"]
    }
    assert props["jira_sync_key"]["hasUniqueValue"] is True
    assert [o["value"] for o in props["health"]["options"]] == ["Green", "Amber", "Red"]
    portal.backend.enterprise = False
    assert http.get("/crm/v3/schemas").json()["results"] == []
    assert http.get(f"/crm/v3/properties/{CUSTOM_TYPE_ID}").status_code == 400


def test_faults_stats_and_control(portal: Portal, http: httpx.Client) -> None:
    http.post("/_sandbox/faults", json={"kind": "503", "count": 1, "endpoint": "/crm/v3/owners"})
    assert http.get("/crm/v3/owners").status_code == 503
    assert http.get("/crm/v3/owners").status_code == 200
    stats = http.get("/_sandbox/stats").json()
    assert stats["by_endpoint"]["GET /crm/v3/owners"] == 2
    lag = http.post("/_sandbox/hubspot/lag", json={"index_lag_ms": 1234}).json()
    assert lag["index_lag_ms"] == 1234 == portal.backend.index_lag_ms
    http.post("/_sandbox/hubspot/scopes", json={"revoke": ["tickets"]})
    assert http.get("/crm/v3/objects/tickets").status_code == 403
    http.post("/_sandbox/reset")
    assert http.get("/crm/v3/objects/tickets").status_code == 200


def test_feedback_submissions_are_read_only(http: httpx.Client) -> None:
    refused = http.post("/crm/v3/objects/feedback_submissions", json={"properties": {}})
    assert refused.status_code == 405
