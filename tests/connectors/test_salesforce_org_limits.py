"""The connector within Salesforce's limits and its refusals (issue 14): at most five
query subrequests a Composite call, no request URI over 16,384 bytes, a session refused
for REST said as such (not as an expired token), and the account owner's name read the
way Salesforce gives it (``Owner.Name``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors import soql
from connectors.crm import (
    CASE,
    CUSTOMER,
    REPORT,
    SURVEY,
    Configured,
    CustomerNeed,
    Needs,
    Read,
    ReportNeed,
    SurveyNeed,
)
from connectors.exceptions import AuthError
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.sandbox.config_file import write_sandbox_config
from connectors.sandbox.stack import (
    IN_PROCESS_JIRA_URL,
    IN_PROCESS_SALESFORCE_URL,
    Endpoints,
    Sandbox,
)
from mappings.normalise_crm import build_customers
from mappings.rules import SatisfactionRules
from sync.config import load_config
from sync.remote import crm_needs
from tests.connectors.test_salesforce_pull import ANCHOR, settings

COMPOSITE = "POST /services/data/v{version}/composite"
SOAP = "POST /services/Soap/u/{version}"


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(issues=0, accounts=40, seed=14, anchor=ANCHOR)
    with sandbox.in_process():
        yield sandbox


def test_more_than_five_objects_go_in_several_composite_calls(box: Sandbox) -> None:
    """Salesforce refuses a sixth query subrequest in one Composite request (so does the
    sandbox now); seven objects take two calls, and every record still comes."""
    crm = SalesforceConnector(settings(box))
    needs = Needs(
        CustomerNeed(Configured("Segment__c", "segment")),
        ReportNeed(Configured("User", "report object"), Configured("Name", "name"), ()),
        SurveyNeed(
            *(Configured(n, n) for n in ("Survey_Response__c", "Account__c", "Score__c")),
            Configured("Responded_At__c", "date"),
        ),
    )
    kinds = [CUSTOMER, CASE, SURVEY, REPORT, CUSTOMER, CASE, REPORT]
    objects = ["Account", "Case", "Survey_Response__c", "User"]
    crm.validate({name: [] for name in objects})
    box.salesforce_app.stats.reset()
    pages = list(crm.changes(needs, [Read(kind) for kind in kinds]))
    read = {name: 0 for name in objects}
    for page in pages:
        read[page.stream] += len(page.live)
    assert read["Account"] == 2 * len(box.salesforce.records("Account"))
    assert read["Case"] == 2 * len(box.salesforce.records("Case"))
    assert read["User"] == 2 * len(box.salesforce.records("User"))
    assert box.salesforce_app.stats.snapshot()["by_endpoint"][COMPOSITE] == 2


def test_the_sandbox_refuses_a_sixth_query_in_one_composite_call(box: Sandbox) -> None:
    crm = SalesforceConnector(settings(box))
    sub = {"method": "GET", "url": "/services/data/v59.0/query?q=SELECT+Id+FROM+Account"}
    body = {"compositeRequest": [{**sub, "referenceId": f"q{i}"} for i in range(6)]}
    response = crm.session.post(
        f"{IN_PROCESS_SALESFORCE_URL}/services/data/v59.0/composite",
        json=body,
        headers={"Authorization": f"Bearer {box.credentials.salesforce_access_token}"},
    )
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
    assert "at most 5" in response.json()[0]["message"]


def test_a_query_too_long_for_the_uri_goes_in_a_composite_body(box: Sandbox) -> None:
    """A SOQL statement past Salesforce's 16,384-byte URI limit (answered 414 by the
    sandbox, as by Salesforce) is sent in a Composite body instead, still one call."""
    ids = [r["Id"] for r in box.salesforce.records("Account")]
    unknown = [f"001{i:015d}" for i in range(900)]
    query = soql.select("Account", ["Id", "Name"], where=soql.in_("Id", [*ids[:3], *unknown]))
    assert len(query) > 16_384
    crm = SalesforceConnector(settings(box))
    crm.connect()
    box.salesforce_app.stats.reset()
    rows = [r for page in crm.query_pages(query) for r in page]
    assert sorted(r["Id"] for r in rows) == sorted(ids[:3])
    assert box.salesforce_app.stats.snapshot()["total"] == 1


def _refuse_rest(box: Sandbox, crm: SalesforceConnector) -> None:
    response = crm.session.post(
        f"{IN_PROCESS_SALESFORCE_URL}/_sandbox/user", json={"api_enabled": False}
    )
    assert response.json() == {"api_enabled": False}


def test_a_session_refused_for_rest_is_said_with_what_to_change(box: Sandbox) -> None:
    """401 "This session is not valid for use with the REST API": the login worked, the
    org refuses REST for it. One login, no loop of re-logins, and the message names the
    'api' scope, 'API Enabled' and the IP policies."""
    crm = SalesforceConnector(settings(box))
    _refuse_rest(box, crm)
    with pytest.raises(AuthError) as caught:
        list(crm.pull_accounts())
    message = str(caught.value)
    assert "not valid for use with the REST API" in message
    assert "'api'" in message and "API Enabled" in message and "IP" in message
    assert "expired" not in message
    assert crm.logins == 1
    assert crm.meter.by_endpoint[SOAP] == 1
    assert box.credentials.salesforce_password not in message


def test_an_access_token_refused_for_rest_is_not_called_expired(box: Sandbox) -> None:
    crm = SalesforceConnector(
        SalesforceSettings(
            auth="session",
            instance_url=IN_PROCESS_SALESFORCE_URL,
            access_token=box.credentials.salesforce_access_token,
        )
    )
    _refuse_rest(box, crm)
    with pytest.raises(AuthError) as caught:
        list(crm.pull_accounts())
    message = str(caught.value)
    assert "connected app that issued the access_token" in message
    assert "API Enabled" in message and "set a fresh" not in message
    assert box.credentials.salesforce_access_token not in message


def test_account_owner_names_come_through_the_owner_relationship(tmp_path: Path) -> None:
    """The cycle's Account query selects Owner.Name, so the model gets the owner's name
    (it was always blank: only OwnerId was selected)."""
    box = Sandbox(issues=20, accounts=30, seed=14, anchor=ANCHOR)
    with box.in_process():
        _owner_names(box, tmp_path)


def _owner_names(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    box.endpoints = Endpoints(IN_PROCESS_JIRA_URL, IN_PROCESS_SALESFORCE_URL, None)
    write_sandbox_config(box, path, state_url="sqlite:///unused.db")
    config = load_config(path)
    crm = SalesforceConnector(settings(box))
    box.salesforce_app.stats.reset()
    needs = crm_needs(config)
    accounts = [
        r.data
        for page in crm.changes(needs, [Read(kind) for kind in needs.pulled])
        if page.kind == CUSTOMER
        for r in page.live
    ]
    users = {u["Id"]: u["Name"] for u in box.salesforce.records("User")}
    assert accounts and all(a["owner_name"] == users[a["owner_id"]] for a in accounts)
    customers = build_customers(
        accounts,
        [],
        [],
        rules=SatisfactionRules(),
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        instance_url=IN_PROCESS_SALESFORCE_URL,
    )
    assert {c.id: c.owner_name for c in customers} == {
        a["id"]: users[a["owner_id"]] for a in accounts
    }
    # Owner.Name costs no describe of User: still one Composite call for the objects.
    assert box.salesforce_app.stats.snapshot()["by_endpoint"][COMPOSITE] == 1
