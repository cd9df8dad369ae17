"""The Salesforce sandbox over real HTTPS on loopback, with the unmodified simple-salesforce."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.salesforce import SalesforceBackend
from connectors.sandbox.server import Tls
from connectors.sandbox.world import generate_world

TOKEN = "00DSANDBOX!https-token"
REPORT = "Jira_Project_Status__c"


@pytest.fixture
def served(serve: Callable[[SandboxApp], str], tls: Tls) -> tuple[SandboxApp, Salesforce]:
    backend = SalesforceBackend(generate_world(issues=0, accounts=650, seed=21), access_token=TOKEN)
    app = SandboxApp(backend)
    url = serve(app)
    session = requests.Session()
    session.verify = str(tls.ca_path)
    return app, Salesforce(instance_url=url, session_id=TOKEN, session=session)


def test_query_all_iter_pages_over_https(served: tuple[SandboxApp, Salesforce]) -> None:
    app, sf = served
    rows = list(
        sf.query_all_iter(
            "SELECT Id, Name, Owner.Name FROM Account ORDER BY Id",
            headers={"Sforce-Query-Options": "batchSize=200"},
        )
    )
    assert len(rows) == 650 and len({r["Id"] for r in rows}) == 650
    assert any("（" in r["Name"] for r in rows)  # UTF-8 survives the wire
    stats = app.stats.snapshot()["by_endpoint"]
    assert stats["GET /services/data/v{version}/query"] == 1
    assert stats["GET /services/data/v{version}/query/{locator}"] == 3
    assert sf.api_usage["api-usage"].used == 4


def test_collections_upsert_over_https(served: tuple[SandboxApp, Salesforce]) -> None:
    app, sf = served
    backend = app.backend
    assert isinstance(backend, SalesforceBackend)
    backend.add_validation_rule(REPORT, lambda r: r["Issues_Total__c"] == 13, "unlucky")
    records = [
        {
            "attributes": {"type": REPORT},
            "Jira_Sync_Key__c": f"HTTPS:{i}",
            "Issues_Total__c": i,
            "Summary__c": '进度 "ok" \\ done',
        }
        for i in range(200)
    ]
    results = sf.restful(
        f"composite/sobjects/{REPORT}/Jira_Sync_Key__c",
        method="PATCH",
        json={"allOrNone": False, "records": records},
    )
    assert [i for i, r in enumerate(results) if not r["success"]] == [13]
    assert app.stats.snapshot()["writes"] == 1
    stored = sf.query_all(f"SELECT Jira_Sync_Key__c, Summary__c FROM {REPORT}")
    assert stored["totalSize"] == 199
    assert {r["Summary__c"] for r in stored["records"]} == {'进度 "ok" \\ done'}


def test_injected_session_expiry_over_https(served: tuple[SandboxApp, Salesforce]) -> None:
    _, sf = served
    fault = sf.session.post(
        f"https://{sf.sf_instance}/_sandbox/faults", json={"kind": "expired_session"}
    )
    assert fault.status_code == 201
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Account LIMIT 1")
