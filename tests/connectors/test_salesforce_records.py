"""Salesforce records as the model reads them: checked by type at the boundary (a record
the model cannot read is named with its field), then translated to the CRM-neutral form."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.crm import (
    CASE,
    CUSTOMER,
    REPORT,
    SURVEY,
    Configured,
    CustomerNeed,
    Needs,
    ReportNeed,
    SurveyNeed,
)
from connectors.salesforce.records import form, neutral, problem, stored_customer

ACME = "001Dn0000000001IAA"
OWNER = "005Dn0000000001IAA"
REPORT_NEED = ReportNeed(
    Configured("Jira_Project_Status__c", "[push.crm] object"),
    Configured("Jira_Sync_Key__c", "[push.crm] external_id_field"),
    (),
)
#: The example config: satisfaction on the Account, links by a project-key field.
NEEDS = Needs(
    CustomerNeed(
        Configured("Segment__c", "segment_field"),
        Configured("CSAT__c", "satisfaction_field"),
        Configured("Jira_Project_Key__c", "[link] crm_field"),
    ),
    REPORT_NEED,
)
SURVEYS = Needs(
    CustomerNeed(Configured("Segment__c", "segment_field")),
    REPORT_NEED,
    SurveyNeed(
        Configured("Survey_Response__c", "object"),
        Configured("Account__c", "account_field"),
        Configured("Score__c", "score_field"),
        Configured("Responded_At__c", "date_field"),
    ),
)
ACCOUNT = {"Id": ACME, "Name": "Acme", "OwnerId": OWNER}


@pytest.mark.parametrize(
    ("kind", "record", "says"),
    [
        (CUSTOMER, {"Id": ACME, "Name": "A", "CSAT__c": "high"}, "CSAT__c is the text 'high'"),
        (CUSTOMER, {"Id": ACME, "Name": 7}, "Account.Name is the number 7, not a name"),
        (CUSTOMER, {"Id": ACME, "Name": None}, "Account.Name is null, but every Account"),
        (CUSTOMER, {"Id": ACME, "Name": "A", "OwnerId": "nobody"}, "not a Salesforce id"),
        (CUSTOMER, {**ACCOUNT, "Jira_Project_Key__c": 5}, "Jira_Project_Key__c is the number 5"),
        (CASE, {"Id": "500A", "IsEscalated": "true"}, "Case.IsEscalated is the text 'true'"),
        (CASE, {"Id": "500A", "AccountId": 12}, "Case.AccountId is the number 12"),
    ],
)  # fmt: skip
def test_values_of_the_wrong_type_are_named(kind: Any, record: dict[str, Any], says: str) -> None:
    found = problem(NEEDS, kind, record)
    assert found is not None and says in found, found


@pytest.mark.parametrize(
    "record",
    [
        {"Id": ACME, "Name": "Acme", "CSAT__c": 4.5, "Segment__c": None},
        {"Id": ACME, "Name": "Acme", "CSAT__c": "4.5"},  # a number field read as text
        {"Id": ACME, "Name": "Acme"},
    ],
)
def test_readable_accounts_pass(record: dict[str, Any]) -> None:
    assert problem(NEEDS, CUSTOMER, record) is None


def test_an_owner_is_a_parent_record_with_a_name() -> None:
    assert problem(NEEDS, CUSTOMER, {**ACCOUNT, "Owner": {"Name": "Olivia Owner"}}) is None
    assert problem(NEEDS, CUSTOMER, {**ACCOUNT, "Owner": {"Name": None}}) is None
    assert problem(NEEDS, CUSTOMER, {**ACCOUNT, "Owner": None}) is None
    assert problem(NEEDS, CUSTOMER, {**ACCOUNT, "Owner": "Olivia"}) == (
        "Account.Owner is the text 'Olivia', not a user with a Name"
    )
    assert "not a user with a Name" in (
        problem(NEEDS, CUSTOMER, {**ACCOUNT, "Owner": {"Name": 7}}) or ""
    )


def test_fields_the_config_does_not_read_are_not_checked() -> None:
    assert problem(SURVEYS, CUSTOMER, {**ACCOUNT, "CSAT__c": "high"}) is None
    bad = problem(SURVEYS, SURVEY, {"Id": "a0A", "Score__c": "ten"})
    assert bad == "Survey_Response__c.Score__c is the text 'ten', not a number"
    assert problem(NEEDS, SURVEY, {"Id": "a0A", "Score__c": "ten"}) is None
    assert problem(NEEDS, REPORT, {"Id": "a0B", "Jira_Sync_Key__c": 3}) is None


def test_an_account_in_the_neutral_form() -> None:
    raw = {
        **ACCOUNT,
        "Segment__c": "Enterprise",
        "CSAT__c": 4.2,
        "Owner": {"attributes": {"type": "User"}, "Name": "Olivia Owner"},
        "Jira_Project_Key__c": "APOLLO, orion",
        "SystemModstamp": "2026-11-20T10:00:00.000+0000",
    }
    assert neutral(NEEDS, CUSTOMER, raw) == {
        "id": ACME,
        "name": "Acme",
        "segment": "Enterprise",
        "owner_id": OWNER,
        "owner_name": "Olivia Owner",
        "satisfaction": 4.2,
        "project_keys": "APOLLO, orion",
        "changed_at": "2026-11-20T10:00:00.000+0000",
        "deleted": False,
    }
    # Satisfaction from surveys: the Account's score field is not the model's.
    assert neutral(SURVEYS, CUSTOMER, raw)["satisfaction"] is None


def test_a_case_without_is_closed_is_closed_by_its_status() -> None:
    open_case = {"Id": "500A", "AccountId": ACME, "IsClosed": None, "Status": "Escalated"}
    closed = {"Id": "500B", "AccountId": ACME, "IsClosed": None, "Status": "Closed"}
    assert neutral(NEEDS, CASE, open_case | {"IsEscalated": True}) == {
        "id": "500A",
        "customer_id": ACME,
        "closed": False,
        "escalated": True,
        "deleted": False,
    }
    assert neutral(NEEDS, CASE, closed)["closed"] is True
    assert neutral(NEEDS, CASE, {**closed, "IsClosed": False})["closed"] is False
    assert neutral(NEEDS, CASE, {**closed, "IsDeleted": True})["deleted"] is True


def test_a_survey_answer_by_the_configured_fields() -> None:
    raw = {"Id": "a0A", "Account__c": ACME, "Score__c": 9, "Responded_At__c": "2026-11-20"}
    assert neutral(SURVEYS, SURVEY, raw) == {
        "id": "a0A",
        "customer_id": ACME,
        "score": 9,
        "answered_at": "2026-11-20",
        "deleted": False,
    }


def test_accounts_stored_before_the_seam_are_read_in_the_neutral_form() -> None:
    legacy = {**ACCOUNT, "Segment__c": "SMB", "Owner": {"Name": "Olivia Owner"}}
    translated = stored_customer(NEEDS, legacy)
    assert translated["id"] == ACME and translated["segment"] == "SMB"
    assert translated["owner_name"] == "Olivia Owner"
    assert stored_customer(NEEDS, translated) == translated  # a neutral row stays as it is
    assert form(NEEDS).stored_customer(legacy) == translated


def test_the_form_gives_ids_in_their_18_character_form() -> None:
    ids = form(NEEDS).customer_id
    assert ids(ACME[:15]) == ACME and ids(ACME.lower()) == ACME
    assert ids("nobody") is None and ids(None) is None
