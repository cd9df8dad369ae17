"""The unmodified simple-salesforce client against the Salesforce sandbox, in-process and
over HTTPS on loopback (``transport``, tests/sandbox/conftest.py): every login flow,
paging, deletes, writes, limits and sessions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.salesforce import SalesforceBackend
from connectors.sandbox.world import generate_world
from tests.sandbox.conftest import Transport

INSTANCE = "https://sandbox.my.salesforce.com"
LOGIN = "https://login.salesforce.com"
USERNAME = "sync@example.com"
PASSWORD = "p@ss<word>&"
TOKEN = "SECTOKEN123"
KEY = "3MVG9.sandbox-key"
SECRET = "sandbox-secret"
STATIC = "00DSANDBOX!static-token"
REPORT = "Jira_Project_Status__c"
UPSERT_PATH = f"composite/sobjects/{REPORT}/Jira_Sync_Key__c"


@dataclass
class Org:
    backend: SalesforceBackend
    app: SandboxApp

    def direct(self, **kwargs: Any) -> Salesforce:
        return Salesforce(instance_url=INSTANCE, session_id=STATIC, **kwargs)

    def calls(self, endpoint: str) -> int:
        return int(self.app.stats.snapshot()["by_endpoint"].get(endpoint, 0))


@pytest.fixture(scope="module")
def world() -> Any:
    return generate_world(issues=0, accounts=450, seed=11)


@pytest.fixture
def org(world: Any, transport: Transport) -> Iterator[Org]:
    backend = SalesforceBackend(
        world,
        access_token=STATIC,
        username=USERNAME,
        password=PASSWORD,
        security_token=TOKEN,
        consumer_key=KEY,
        consumer_secret=SECRET,
        instance_url=INSTANCE,
    )
    app = SandboxApp(backend)
    with transport.mount(app, INSTANCE, LOGIN):
        yield Org(backend, app)


def report(key: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": REPORT}, "Jira_Sync_Key__c": key, **fields}


# -- logins ---------------------------------------------------------------------------------


def test_soap_login_with_security_token(org: Org) -> None:
    sf = Salesforce(username=USERNAME, password=PASSWORD, security_token=TOKEN)
    assert sf.sf_instance == "sandbox.my.salesforce.com"
    assert sf.session_id in org.backend.sessions and sf.session_id != STATIC
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 450
    assert org.calls("POST /services/Soap/u/{version}") == 1


def test_soap_login_refuses_a_wrong_password(org: Org) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=USERNAME, password="wrong", security_token=TOKEN)
    assert info.value.code == "INVALID_LOGIN"


def test_oauth_password_grant(org: Org) -> None:
    sf = Salesforce(username=USERNAME, password=PASSWORD, consumer_key=KEY, consumer_secret=SECRET)
    assert sf.sf_instance == "sandbox.my.salesforce.com"
    assert sf.query("SELECT Id FROM User WHERE IsActive = true")["totalSize"] >= 1
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=USERNAME, password=PASSWORD, consumer_key=KEY, consumer_secret="nope")
    assert info.value.code == "invalid_client"


def test_client_credentials_with_my_domain(org: Org) -> None:
    sf = Salesforce(consumer_key=KEY, consumer_secret=SECRET, domain="sandbox.my")
    assert sf.sf_instance == "sandbox.my.salesforce.com"
    assert sf.query("SELECT COUNT() FROM Case")["totalSize"] == len(org.backend.records("Case"))
    assert org.calls("POST /services/oauth2/token") == 1


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_jwt_bearer_flow(org: Org) -> None:
    private, public = _rsa_pair()
    org.backend.jwt_public_key = public
    sf = Salesforce(username=USERNAME, consumer_key=KEY, privatekey=private)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 450
    other, _ = _rsa_pair()
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=USERNAME, consumer_key=KEY, privatekey=other)
    assert info.value.code == "invalid_grant"
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=USERNAME, consumer_key="someone-else", privatekey=private)
    assert info.value.code == "invalid_client_id"


def test_jwt_bearer_rejects_an_expired_assertion(org: Org) -> None:
    private, _ = _rsa_pair()
    org.backend.clock = lambda: datetime.now(UTC) + timedelta(minutes=10)
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=USERNAME, consumer_key=KEY, privatekey=private)
    assert info.value.code == "invalid_grant"


def test_session_id_and_instance_url(org: Org) -> None:
    sf = org.direct()
    assert sf.query("SELECT Id FROM Account LIMIT 3")["totalSize"] == 3
    bad = Salesforce(instance_url=INSTANCE, session_id="00D!forged")
    with pytest.raises(SalesforceExpiredSession) as info:
        bad.query("SELECT Id FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


# -- queries --------------------------------------------------------------------------------


def test_query_all_iter_pages_lazily_with_batch_size(org: Org) -> None:
    sf = org.direct()
    pages = sf.query_all_iter(
        "SELECT Id, Name, Owner.Name FROM Account ORDER BY Id",
        headers={"Sforce-Query-Options": "batchSize=200"},
    )
    first = [next(pages) for _ in range(200)]
    assert org.calls("GET /services/data/v{version}/query") == 1
    assert org.calls("GET /services/data/v{version}/query/{locator}") == 0
    rest = list(pages)
    assert len(first) + len(rest) == 450
    assert len({r["Id"] for r in first + rest}) == 450
    assert org.calls("GET /services/data/v{version}/query/{locator}") == 2
    assert first[0]["Owner"]["Name"]
    assert any("（" in r["Name"] for r in first + rest)  # UTF-8 both ways
    assert sf.api_usage["api-usage"].used == 3


def test_default_page_is_2000_and_batch_size_is_clamped(org: Org) -> None:
    for i in range(1600):
        org.backend.create_record("Case", Subject=f"bulk {i}")
    total = len(org.backend.records("Case"))
    sf = org.direct()
    first = sf.query("SELECT Id FROM Case")
    assert len(first["records"]) == 2000 and first["totalSize"] == total
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    small = sf.query("SELECT Id FROM Case", headers={"Sforce-Query-Options": "batchSize=50"})
    assert len(small["records"]) == 200
    assert len(sf.query_all("SELECT Id FROM Case")["records"]) == total


def test_query_all_shows_deleted_rows(org: Org) -> None:
    sf = org.direct()
    victims = [r["Id"] for r in sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 2")["records"]]
    for victim in victims:
        assert sf.Account.delete(victim) == 204
    live = sf.query_all("SELECT Id FROM Account")
    assert live["totalSize"] == 448
    everything = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    assert everything["totalSize"] == 450
    deleted = [r["Id"] for r in everything["records"] if r["IsDeleted"]]
    assert sorted(deleted) == sorted(victims)
    found = sf.query_all("SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert sorted(r["Id"] for r in found["records"]) == sorted(victims)
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Account.get(victims[0])
    assert info.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_query_all_cursor_pages_include_deleted(org: Org) -> None:
    sf = org.direct()
    for record in org.backend.records("Account")[:5]:
        org.backend.delete_record("Account", record["Id"])
    rows = list(
        sf.query_all_iter(
            "SELECT Id, IsDeleted FROM Account",
            include_deleted=True,
            headers={"Sforce-Query-Options": "batchSize=200"},
        )
    )
    assert len(rows) == 450 and sum(r["IsDeleted"] for r in rows) == 5
    # As Salesforce does, queryAll's next pages are at /query/<locator> (pages of at most
    # 200 here, some shorter).
    assert org.calls("GET /services/data/v{version}/query/{locator}") >= 2
    assert org.calls("GET /services/data/v{version}/queryAll/{locator}") == 0


def test_incremental_pull_by_modstamp_sees_helper_updates(org: Org) -> None:
    sf = org.direct()
    org.backend.clock = lambda: datetime(2030, 1, 1, tzinfo=UTC)
    target = org.backend.records("Account")[7]["Id"]
    org.backend.update_record("Account", target, CSAT__c=1.5)
    found = sf.query_all(
        "SELECT Id, CSAT__c, SystemModstamp FROM Account "
        "WHERE SystemModstamp >= 2029-12-31T00:00:00Z ORDER BY SystemModstamp, Id"
    )
    assert [(r["Id"], r["CSAT__c"], r["SystemModstamp"]) for r in found["records"]] == [
        (target, 1.5, "2030-01-01T00:00:00.000+0000")
    ]


def test_soql_errors_reach_the_client(org: Org) -> None:
    sf = org.direct()
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Foo FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Foo' on entity 'Account'" in info.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Account WHERE SystemModstamp > '2020-01-01'")
    assert "should not be enclosed in quotes" in info.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more("/services/data/v59.0/query/01gDn0000000XXXIAA-2000", identifier_is_url=True)
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


# -- describe, versions, limits -------------------------------------------------------------


def test_describe(org: Org) -> None:
    sf = org.direct()
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Case", "User", REPORT, "Survey_Response__c", "ContentVersion"} <= names
    fields = {f["name"]: f for f in getattr(sf, REPORT).describe()["fields"]}
    key = fields["Jira_Sync_Key__c"]
    assert (key["type"], key["externalId"], key["unique"], key["idLookup"]) == (
        "string",
        True,
        True,
        True,
    )
    assert fields["Health__c"]["restrictedPicklist"]
    assert [v["value"] for v in fields["Health__c"]["picklistValues"]] == ["Green", "Amber", "Red"]
    assert fields["Percent_Complete__c"]["type"] == "percent"
    assert fields["Account__c"]["referenceTo"] == ["Account"]
    assert fields["Account__c"]["relationshipName"] == "Account__r"
    assert (fields["Summary__c"]["type"], fields["Summary__c"]["length"]) == ("textarea", 32000)
    assert fields["Next_Milestone_Date__c"]["type"] == "date"
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert account["OwnerId"]["relationshipName"] == "Owner"
    assert account["CSAT__c"]["type"] == "double"
    assert sf.Account.metadata()["objectDescribe"]["keyPrefix"] == "001"
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Opportunity.describe()
    assert info.value.content[0]["message"] == "The requested resource does not exist"


def test_versions_resources_and_limits(org: Org) -> None:
    sf = org.direct()
    versions = requests.get(f"{INSTANCE}/services/data", timeout=5).json()
    assert {"label", "url", "version"} <= set(versions[0])
    assert "59.0" in [v["version"] for v in versions]
    assert sf.restful("")["query"] == "/services/data/v59.0/query"
    limits = sf.limits()
    used, limit = org.backend.api_usage
    assert limits["DailyApiRequests"] == {"Max": limit, "Remaining": limit - used}
    old = Salesforce(instance_url=INSTANCE, session_id=STATIC, version="12.0")
    with pytest.raises(SalesforceResourceNotFound):
        old.query("SELECT Id FROM Account")


def test_api_usage_header_is_parsed(org: Org) -> None:
    sf = org.direct()
    sf.query("SELECT Id FROM Account LIMIT 1")
    sf.query("SELECT Id FROM Account LIMIT 1")
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == org.backend.api_usage == (2, 100_000)


def test_request_limit_exceeded(org: Org) -> None:
    org.backend.daily_api_limit = 3
    sf = org.direct()
    for _ in range(3):
        sf.query("SELECT Id FROM Account LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert info.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    # Logins do not count against the budget, and the budget refills the next day.
    Salesforce(username=USERNAME, password=PASSWORD, security_token=TOKEN)
    org.backend.clock = lambda: datetime.now(UTC) + timedelta(days=1)
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


# -- sessions -------------------------------------------------------------------------------


def test_expired_session_is_reestablished_by_login_based_auth(org: Org) -> None:
    sf = Salesforce(username=USERNAME, password=PASSWORD, security_token=TOKEN)
    first = sf.session_id
    fault = requests.post(
        f"{INSTANCE}/_sandbox/faults", json={"kind": "expired_session"}, timeout=5
    )
    assert fault.status_code == 201
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 450
    assert sf.session_id != first and first not in org.backend.sessions
    assert org.calls("POST /services/Soap/u/{version}") == 2
    assert org.calls("GET /services/data/v{version}/query") == 2
    # A bare session id cannot be refreshed: the revoked static token stays refused.
    with pytest.raises(SalesforceExpiredSession):
        org.direct().query("SELECT Id FROM Account")


def test_expire_sessions_hook_and_reset(org: Org) -> None:
    response = org.backend.expire_sessions()
    assert response.status == 401
    with pytest.raises(SalesforceExpiredSession):
        org.direct().query("SELECT Id FROM Account")
    assert requests.post(f"{INSTANCE}/_sandbox/reset", timeout=5).status_code == 200
    assert org.direct().query("SELECT COUNT() FROM Account")["totalSize"] == 450


# -- single-record writes -------------------------------------------------------------------


def test_single_upsert_201_204_300(org: Org) -> None:
    sf = org.direct()
    account = org.backend.records("Account")[0]["Id"]
    status = getattr(sf, REPORT)
    created = status.upsert(
        "Jira_Sync_Key__c/APOLLO:" + account,
        {"Account__c": account, "Health__c": "Green"},
        raw_response=True,
    )
    assert created.status_code == 201
    assert created.json()["created"] is True and created.json()["success"] is True
    assert status.upsert("Jira_Sync_Key__c/APOLLO:" + account, {"Health__c": "Red"}) == 204
    record = status.get_by_custom_id("Jira_Sync_Key__c", "APOLLO:" + account)
    assert (record["Id"], record["Health__c"]) == (created.json()["id"], "Red")
    # Two records with one key (the API forbids it; the helper can): HTTP 300.
    org.backend.create_record(REPORT, Jira_Sync_Key__c="DUP:1")
    org.backend.create_record(REPORT, Jira_Sync_Key__c="dup:1")
    with pytest.raises(SalesforceMoreThanOneRecord) as info:
        status.upsert("Jira_Sync_Key__c/DUP:1", {"Health__c": "Red"})
    assert len(info.value.content) == 2
    with pytest.raises(SalesforceResourceNotFound):
        status.upsert("Health__c/Green", {"Health__c": "Red"})


def test_crud_round_trip(org: Org) -> None:
    sf = org.direct()
    created = sf.Account.create({"Name": "Crud Co", "Segment__c": "SMB", "CSAT__c": 4.25})
    assert created["success"] is True and created["errors"] == []
    record = sf.Account.get(created["id"])
    assert (record["Name"], record["CSAT__c"], record["OwnerId"]) == (
        "Crud Co",
        4.3,
        org.backend.user_id,
    )  # CSAT__c has scale 1
    assert sf.Account.update(created["id"], {"Website": "https://crud.example"}) == 204
    narrow = sf.Account.get(created["id"], params={"fields": "Name,Website"})
    assert set(narrow) == {"attributes", "Name", "Website"}
    assert sf.Account.delete(created["id"]) == 204
    assert org.backend.get_record("Account", created["id"])["IsDeleted"] is True


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Name": "x", "Foo__c": 1}, "INVALID_FIELD"),
        ({"Name": "x", "CreatedDate": "2020-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"Name": "x" * 256}, "STRING_TOO_LONG"),
        ({"Name": "x", "CSAT__c": {"a": 1}}, "JSON_PARSER_ERROR"),
        ({"Name": "x", "CSAT__c": "high"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
        ({"Name": "x", "OwnerId": "not-an-id"}, "MALFORMED_ID"),
        ({"Name": "x", "OwnerId": "001Dn0000000001IAA"}, "MALFORMED_ID"),
        ({"Name": "x", "OwnerId": "005Dn00000000ZZIAA"}, "INVALID_CROSS_REFERENCE_KEY"),
        ({"Segment__c": "SMB"}, "REQUIRED_FIELD_MISSING"),
    ],
)
def test_create_validation(org: Org, body: dict[str, Any], code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        org.direct().Account.create(body)
    assert info.value.content[0]["errorCode"] == code


def test_restricted_picklist_and_unique_key(org: Org) -> None:
    status = getattr(org.direct(), REPORT)
    with pytest.raises(SalesforceMalformedRequest) as info:
        status.create({"Jira_Sync_Key__c": "K:1", "Health__c": "Purple"})
    assert info.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    first = status.create({"Jira_Sync_Key__c": "K:1"})
    assert org.backend.get_record(REPORT, first["id"])["Name"] == first["id"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        status.create({"Jira_Sync_Key__c": "k:1"})
    assert info.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


def test_content_version_upload_and_download(org: Org) -> None:
    sf = org.direct()
    account = org.backend.records("Account")[0]["Id"]
    created = sf.ContentVersion.create(
        {
            "Title": "Progress",
            "PathOnClient": "progress.html",
            "VersionData": "PGgxPkhpPC9oMT4=",
            "FirstPublishLocationId": account,
        }
    )
    assert sf.ContentVersion.get_base64(created["id"], base64_field="VersionData") == b"<h1>Hi</h1>"
    row = sf.query(
        f"SELECT Title, VersionData, ContentDocumentId FROM ContentVersion "
        f"WHERE Id = '{created['id']}'"
    )["records"][0]
    assert row["VersionData"].endswith(f"/ContentVersion/{created['id']}/VersionData")
    assert row["ContentDocumentId"].startswith("069")


# -- sObject Collections --------------------------------------------------------------------


def test_collections_upsert_200_with_one_failure_in_one_call(org: Org) -> None:
    sf = org.direct()
    org.backend.add_validation_rule(
        REPORT,
        lambda r: r["Jira_Sync_Key__c"] == "P:57",
        "Key P:57 is blocked by a validation rule",
    )
    summary = '进度 "ok" \\ done'  # JSON escapes and UTF-8 on the way in and out
    records = [
        report(f"P:{i}", Issues_Total__c=i, Health__c="Green", Summary__c=summary)
        for i in range(200)
    ]
    before = org.backend.api_usage[0]
    results = sf.restful(UPSERT_PATH, method="PATCH", json={"records": records})
    assert org.backend.api_usage[0] == before + 1
    assert org.calls("PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}") == 1
    assert len(results) == 200
    failed = [i for i, r in enumerate(results) if not r["success"]]
    assert failed == [57]
    assert results[57]["errors"] == [
        {
            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Key P:57 is blocked by a validation rule",
            "fields": [],
        }
    ]
    assert all(r["created"] for i, r in enumerate(results) if i != 57)
    assert len(org.backend.records(REPORT)) == 199
    stored = sf.query_all(f"SELECT Summary__c FROM {REPORT}")["records"]
    assert {r["Summary__c"] for r in stored} == {summary}
    again = sf.restful(UPSERT_PATH, method="PATCH", json={"records": records})
    assert [r["created"] for i, r in enumerate(again) if i != 57] == [False] * 199
    assert [r.get("id") for r in again] == [r.get("id") for r in results]
    assert len(org.backend.records(REPORT)) == 199


def test_collections_reject_more_than_200_records(org: Org) -> None:
    sf = org.direct()
    records = [report(f"Q:{i}") for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful(UPSERT_PATH, method="PATCH", json={"records": records})
    assert info.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert org.backend.records(REPORT) == []


def test_collections_all_or_none_rolls_back(org: Org) -> None:
    sf = org.direct()
    records = [report("A:1"), report("A:2", Health__c="Purple"), report("A:3")]
    results = sf.restful(UPSERT_PATH, method="PATCH", json={"allOrNone": True, "records": records})
    assert [r["success"] for r in results] == [False, False, False]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert {results[0]["errors"][0]["statusCode"], results[2]["errors"][0]["statusCode"]} == {
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    }
    assert org.backend.records(REPORT) == []


def test_collections_duplicate_keys_in_one_batch(org: Org) -> None:
    results = org.direct().restful(
        UPSERT_PATH, method="PATCH", json={"records": [report("D:1"), report("d:1"), report("D:2")]}
    )
    assert [r["success"] for r in results] == [False, False, True]
    assert results[0]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"


def test_collections_create_update_retrieve_delete(org: Org) -> None:
    sf = org.direct()
    created = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "records": [
                {"attributes": {"type": "Account"}, "Name": "Bulk A"},
                {"attributes": {"type": "Account"}, "Segment__c": "SMB"},
                {"attributes": {"type": "Case"}, "Subject": "Bulk case"},
            ]
        },
    )
    assert [r["success"] for r in created] == [True, False, True]
    assert created[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    ids = [created[0]["id"], created[2]["id"]]
    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [
                {
                    "attributes": {"type": "Account"},
                    "Id": ids[0],
                    "Website": "https://bulk.example",
                },
                {"attributes": {"type": "Account"}, "Id": "001Dn00000ZZZZZIAA", "Website": "x"},
            ]
        },
    )
    assert [r["success"] for r in updated] == [True, False]
    fetched = sf.restful(
        "composite/sobjects/Account",
        params={"ids": f"{ids[0]},001Dn00000ZZZZZIAA", "fields": "Name,Website"},
    )
    assert fetched[0]["Website"] == "https://bulk.example" and fetched[1] is None
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})
    assert [r["success"] for r in deleted] == [True, True]
    assert org.backend.get_record("Case", ids[1])["IsDeleted"] is True


# -- Composite ------------------------------------------------------------------------------


def test_composite_with_references_counts_one_call(org: Org) -> None:
    sf = org.direct()
    before = org.backend.api_usage[0]
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Account",
                    "referenceId": "acc",
                    "body": {"Name": "Composite Co"},
                },
                {
                    "method": "PATCH",
                    "url": f"/services/data/v59.0/sobjects/{REPORT}/Jira_Sync_Key__c/C:1",
                    "referenceId": "status",
                    "body": {"Account__c": "@{acc.id}", "Health__c": "Amber"},
                },
                {
                    "method": "GET",
                    "referenceId": "rows",
                    "url": "/services/data/v59.0/query?q=SELECT+Id,Account__r.Name+FROM+"
                    f"{REPORT}+WHERE+Jira_Sync_Key__c='C:1'",
                },
            ]
        },
    )["compositeResponse"]
    assert [a["httpStatusCode"] for a in answer] == [201, 201, 200]
    assert answer[2]["body"]["records"][0]["Account__r"]["Name"] == "Composite Co"
    assert org.backend.api_usage[0] == before + 1
    assert org.app.stats.snapshot()["total"] == 1


def test_composite_all_or_none_and_limit(org: Org) -> None:
    sf = org.direct()
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Account",
                    "referenceId": "a",
                    "body": {"Name": "Rolled Back Co"},
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Account",
                    "referenceId": "b",
                    "body": {"Name": "x", "Nope__c": 1},
                },
            ],
        },
    )["compositeResponse"]
    assert [a["httpStatusCode"] for a in answer] == [400, 400]
    assert answer[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert answer[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert not [a for a in org.backend.records("Account") if a["Name"] == "Rolled Back Co"]
    many = [
        {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": f"r{i}"}
        for i in range(26)
    ]
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json={"compositeRequest": many})


# -- scale ----------------------------------------------------------------------------------


def test_a_20000_account_world_loads() -> None:
    backend = SalesforceBackend(generate_world(issues=0, accounts=20_000, seed=5))
    assert len(backend.records("Account")) == 20_000
    _, rows = backend.run_query(
        "SELECT Id FROM Account WHERE SystemModstamp >= 2000-01-01T00:00:00Z "
        "ORDER BY SystemModstamp, Id LIMIT 2000",
        False,
    )
    assert len(rows) == 2000
