"""Salesforce records to customers: segment, owner, satisfaction, cases."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mappings.normalise_crm import aggregate_surveys, build_customers, nps_category, project_keys_of
from mappings.rules import AccountFields, SatisfactionRules, SurveyRules
from tests.mappings.factories import ACME, AS_OF, GLOBEX, GONE, RULES, account, case, survey

FIELDS = AccountFields()
SAT = SatisfactionRules()


def customers(accounts, cases=(), surveys=(), rules=SAT, **kw):  # type: ignore[no-untyped-def]
    return build_customers(accounts, cases, surveys, fields=FIELDS, rules=rules, as_of=AS_OF, **kw)


def test_an_account_becomes_a_customer() -> None:
    (acme,) = customers(
        [account(ACME[:15], "Acme Corp", csat=2.8, project_key="apollo, ORION")],
        [
            case(ACME),
            case(ACME, escalated=True),
            case(ACME[:15], closed=True, escalated=True),
            case(GLOBEX, escalated=True),
        ],
        instance_url="https://acme.my.salesforce.com/",
    )
    assert acme.id == ACME  # the 15-character Id normalised
    assert acme.name == "Acme Corp" and acme.segment == "Enterprise"
    assert acme.owner_name == "Olivia Owner" and acme.owner_id is not None
    assert acme.open_cases == 2 and acme.escalated_cases == 1  # closed ones do not count
    assert acme.url == f"https://acme.my.salesforce.com/{ACME}"
    assert acme.project_keys == ("APOLLO", "ORION")
    assert acme.satisfaction is not None
    assert acme.satisfaction.score == 2.8 and acme.satisfaction.scale == 5
    assert acme.satisfaction.source == "account_field" and acme.satisfaction.nps_category is None
    assert acme.satisfaction.measured_at is not None


def test_missing_values_and_deleted_accounts() -> None:
    result = customers(
        [
            account(ACME, csat=None, segment="  ", Owner=None, OwnerId=None, Name=None),
            account(GLOBEX, IsDeleted=True),
            account(GONE),
            {"Id": "garbage"},
        ],
        deleted_ids=[GONE[:15]],
    )
    assert [c.id for c in result] == [ACME]
    (acme,) = result
    assert acme.satisfaction is None and acme.segment is None and acme.owner_name is None
    assert acme.name == ACME and acme.url == ""


def test_case_status_when_is_closed_is_missing() -> None:
    open_case = case(ACME) | {"IsClosed": None, "Status": "Escalated", "IsEscalated": True}
    closed_case = case(ACME) | {"IsClosed": None, "Status": "Closed"}
    (acme,) = customers([account(ACME)], [open_case, closed_case, case(ACME) | {"IsDeleted": True}])
    assert acme.open_cases == 1 and acme.escalated_cases == 1


def test_latest_version_of_an_account_wins_in_any_order() -> None:
    old = account(ACME, "Old name", SystemModstamp="2026-01-01T00:00:00.000+0000")
    new = account(ACME, "New name", SystemModstamp="2026-11-01T00:00:00.000+0000")
    assert customers([old, new])[0].name == customers([new, old])[0].name == "New name"


def test_csat_as_text_is_read() -> None:
    (acme,) = customers([account(ACME, csat=" 3.9 ")])
    assert acme.satisfaction is not None and acme.satisfaction.score == 3.9
    (bad,) = customers([account(ACME, csat="n/a")])
    assert bad.satisfaction is None


def survey_rules(aggregate: str = "mean", scale: int = 10) -> SatisfactionRules:
    return replace(SAT, source="survey", scale=scale, survey=SurveyRules(aggregate=aggregate))  # type: ignore[arg-type]


def test_survey_mean_and_latest_over_the_window() -> None:
    responses = [
        survey(ACME, 10, days=5, number=1),
        survey(ACME, 6, days=40, number=2),
        survey(ACME, 1, days=100, number=3),  # outside the 90-day window
        survey(ACME, 9, days=-1, number=4),  # in the future of the as-of time: ignored
        survey(GLOBEX, 3, days=200, number=5),
        {"Id": "x", "Account__c": ACME, "Score__c": None, "Responded_At__c": None},
    ]
    mean = aggregate_surveys(responses, survey_rules("mean"), AS_OF)
    assert mean[ACME].score == 8.0 and mean[ACME].responses == 2
    assert mean[ACME].nps_category == "passive" and mean[ACME].source == "survey"
    assert GLOBEX not in mean
    latest = aggregate_surveys(responses, survey_rules("latest"), AS_OF)
    assert latest[ACME].score == 10 and latest[ACME].nps_category == "promoter"
    five_point = aggregate_surveys(responses, survey_rules("mean", scale=5), AS_OF)
    assert five_point[ACME].nps_category is None


def test_survey_source_ignores_the_account_field() -> None:
    rules = survey_rules()
    result = customers(
        [account(ACME, csat=5.0), account(GLOBEX, "Globex", csat=5.0)],
        surveys=[survey(ACME, 4, days=1)],
        rules=rules,
    )
    acme, globex = result
    assert acme.satisfaction is not None and acme.satisfaction.score == 4
    assert acme.satisfaction.nps_category == "detractor"
    assert globex.satisfaction is None  # no response in the window: no score


def test_survey_field_names_are_configurable() -> None:
    rules = replace(
        SAT,
        source="survey",
        survey=SurveyRules(account_field="Acct__c", score_field="CSAT__c", date_field="When__c"),
    )
    record = {"Id": "a", "Acct__c": ACME, "CSAT__c": 4.5, "When__c": "2026-11-20"}
    assert aggregate_surveys([record], rules, AS_OF)[ACME].score == 4.5


@pytest.mark.parametrize(
    ("score", "category"),
    [
        (10, "promoter"),
        (9, "promoter"),
        (8.9, "passive"),
        (7, "passive"),
        (6, "detractor"),
        (0, "detractor"),
    ],
)
def test_nps_categories(score: float, category: str) -> None:
    assert nps_category(score) == category


def test_project_keys_of() -> None:
    assert project_keys_of("apollo") == ("APOLLO",)
    assert project_keys_of("ORION; apollo |Apollo\nZED") == ("APOLLO", "ORION", "ZED")
    assert project_keys_of(None) == () and project_keys_of("") == ()


def test_configured_account_fields() -> None:
    fields = AccountFields(
        segment_field="Tier__c", satisfaction_field="Happy__c", project_key_field="Proj__c"
    )
    (acme,) = build_customers(
        [{"Id": ACME, "Name": "Acme", "Tier__c": "Gold", "Happy__c": 4.1, "Proj__c": "APOLLO"}],
        fields=fields,
        rules=RULES.satisfaction,
        as_of=AS_OF,
    )
    assert acme.segment == "Gold" and acme.project_keys == ("APOLLO",)
    assert acme.satisfaction is not None and acme.satisfaction.score == 4.1
