"""Upserts through sObject Collections against the sandbox: batching and per-record results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.exceptions import ConfigError, RejectedRecord
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.stack import Sandbox

OBJECT = "Jira_Project_Status__c"
KEY = "Jira_Sync_Key__c"
COLLECTION = "PATCH /services/data/v59.0/composite/sobjects/{sobject}/{field}"


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=0, accounts=50, seed=5)
    with sandbox.in_process():
        yield sandbox


def connector_for(box: Sandbox, **kwargs: Any) -> SalesforceConnector:
    c = box.credentials
    return SalesforceConnector(
        SalesforceSettings(
            username=c.salesforce_username,
            password=c.salesforce_password,
            security_token=c.salesforce_security_token,
        ),
        **kwargs,
    )


def reports(box: Sandbox, count: int, project: str = "PRJ") -> list[dict[str, Any]]:
    accounts = box.world.accounts
    return [
        {
            KEY: f"{project}{i}:{accounts[i % len(accounts)].id}",
            "Account__c": accounts[i % len(accounts)].id,
            "Jira_Project_Key__c": f"{project}{i}",
            "Issues_Total__c": i,
            "Percent_Complete__c": 50.0,
            "Health__c": "Green",
            "Next_Milestone_Date__c": date(2026, 12, 1),
            "Last_Synced__c": datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        }
        for i in range(count)
    ]


def test_200_records_one_rejected_in_one_call(box: Sandbox) -> None:
    box.salesforce.add_validation_rule(
        OBJECT, lambda r: r.get("Jira_Project_Key__c") == "PRJ17", "Project PRJ17 is frozen"
    )
    connector = connector_for(box)
    records = reports(box, 200)
    results = connector.upsert(OBJECT, KEY, records)

    assert connector.meter.by_endpoint[COLLECTION] == 1
    assert [r.key for r in results] == [r[KEY] for r in records]
    failed = [r for r in results if not r.success]
    assert [r.key for r in failed] == [records[17][KEY]]
    (error,) = failed[0].errors
    assert error.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert "frozen" in error.message
    assert all(r.created and r.id for r in results if r.success)
    assert sum(r.success for r in results) == 199
    assert len(box.salesforce.records(OBJECT)) == 199

    # The same upsert again updates, never duplicates.
    box.salesforce.clear_validation_rules()
    again = connector.upsert(OBJECT, KEY, records)
    assert all(r.success for r in again)
    assert [r.created for r in again] == [i == 17 for i in range(200)]
    assert len(box.salesforce.records(OBJECT)) == 200
    stored = {r[KEY]: r for r in box.salesforce.records(OBJECT)}
    assert stored[records[3][KEY]]["Issues_Total__c"] == 3


def test_450_records_take_3_calls_in_input_order(box: Sandbox) -> None:
    connector = connector_for(box)
    records = reports(box, 450)
    results = connector.upsert(OBJECT, KEY, records)
    assert connector.meter.by_endpoint[COLLECTION] == 3
    sandbox_counts = box.salesforce_app.stats.snapshot()["by_endpoint"]
    assert sum(n for k, n in sandbox_counts.items() if "composite" in k) == 3
    assert [r.key for r in results] == [r[KEY] for r in records]
    assert all(r.success for r in results)


def test_nothing_to_write_makes_no_call(box: Sandbox) -> None:
    connector = connector_for(box)
    assert connector.upsert(OBJECT, KEY, []) == []
    assert connector.meter.total == 0


def test_row_locks_retry_only_the_locked_records(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = box.salesforce_app
    original = app.handle
    sent: list[int] = []
    lock = {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"}

    def locking(request: SandboxRequest) -> SandboxResponse:
        response = original(request)
        if request.method == "PATCH" and "/composite/sobjects/" in request.path:
            sent.append(len(json.loads(request.body)["records"]))
            if len(sent) == 1:  # the first answer claims records 3 and 7 were locked
                body = json.loads(response.body)
                body[3] = body[7] = {"success": False, "errors": [lock]}
                response.body = json.dumps(body).encode()
        return response

    monkeypatch.setattr(app, "handle", locking)
    sleeps: list[float] = []
    connector = connector_for(box, sleep=sleeps.append)
    records = reports(box, 10)
    results = connector.upsert(OBJECT, KEY, records)
    assert sent == [10, 2]
    assert sleeps == [1.0]
    assert all(r.success for r in results)
    assert [r.key for r in results] == [r[KEY] for r in records]


def test_records_still_locked_after_the_last_attempt_come_back_failed(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = box.salesforce_app
    original = app.handle
    lock = {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"}

    def always_locked(request: SandboxRequest) -> SandboxResponse:
        response = original(request)
        if request.method == "PATCH" and "/composite/sobjects/" in request.path:
            body = json.loads(response.body)
            body[0] = {"success": False, "errors": [lock]}
            response.body = json.dumps(body).encode()
        return response

    monkeypatch.setattr(app, "handle", always_locked)
    sleeps: list[float] = []
    connector = connector_for(box, sleep=sleeps.append, retry=RetryPolicy(attempts=3))
    results = connector.upsert(OBJECT, KEY, reports(box, 4))
    assert connector.meter.by_endpoint[COLLECTION] == 3
    assert sleeps == [1.0, 2.0]
    assert [r.success for r in results] == [False, True, True, True]
    assert not results[0].success and [e.code for e in results[0].errors] == ["UNABLE_TO_LOCK_ROW"]


def test_unknown_target_field_is_a_config_error_before_writing(box: Sandbox) -> None:
    connector = connector_for(box)
    records = [dict(r, Helth__c="Green") for r in reports(box, 2)]
    with pytest.raises(ConfigError, match=r"Helth__c.*Health__c"):
        connector.upsert(OBJECT, KEY, records)
    parented = [dict(r, Acount__r={"Name": "x"}) for r in reports(box, 1)]
    with pytest.raises(ConfigError, match="no parent relationship 'Acount__r'"):
        connector.upsert(OBJECT, KEY, parented)
    with pytest.raises(ConfigError, match="not an External ID"):
        connector.upsert(OBJECT, "Jira_Project_Key__c", reports(box, 1))
    assert COLLECTION not in connector.meter.by_endpoint


def test_create_one_record_and_rejection(box: Sandbox) -> None:
    connector = connector_for(box)
    new_id = connector.create("Account", {"Name": "单条 create", "Segment__c": "SMB"})
    assert box.salesforce.get_record("Account", new_id) is not None
    box.salesforce.add_validation_rule("Account", lambda r: r.get("Name") == "Nope", "No")
    with pytest.raises(RejectedRecord) as caught:
        connector.create("Account", {"Name": "Nope"})
    assert caught.value.errors[0].code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"


def test_a_create_is_not_repeated_after_a_server_error(box: Sandbox) -> None:
    from connectors.exceptions import RetriableError
    from connectors.sandbox.faults import Fault

    sleeps: list[float] = []
    connector = connector_for(box, sleep=sleeps.append)
    connector.connect()
    box.salesforce_app.faults.add(
        Fault("429", count=1, retry_after=3, method="POST", endpoint="sobjects")
    )
    assert connector.create("Account", {"Name": "After a 429"})
    assert sleeps == [3.0]
    box.salesforce_app.faults.add(Fault("503", count=1, method="POST", endpoint="sobjects"))
    with pytest.raises(RetriableError, match="may have been applied"):
        connector.create("Account", {"Name": "After a 503"})
    assert connector.meter.by_endpoint["POST /services/data/v59.0/sobjects/{sobject}"] == 3
