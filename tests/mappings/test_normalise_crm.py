"""CRM-neutral records to customers: segment, owner, satisfaction, cases."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mappings.normalise_crm import aggregate_surveys, build_customers, nps_category, project_keys_of
from mappings.rules import SatisfactionRules, SurveyRules
from tests.mappings.factories import ACME, AS_OF, GLOBEX, GONE, IDS, account, case, survey

SAT = SatisfactionRules()


def customers(accounts, cases=(), surveys=(), rules=SAT, **kw):  # type: ignore[no-untyped-def]
    return build_customers(accounts, cases, surveys, rules=rules, as_of=AS_OF, **kw)


def upper_id(value: object) -> str | None:
    """A CRM whose ids are case-insensitive: the canonical form is upper case."""
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def test_a_customer_record_becomes_a_customer() -> None:
    (acme,) = customers(
        [account(" c-acme", "Acme Corp", csat=2.8, project_key="apollo, ORION")],
        [
            case("C-ACME"),
            case("c-acme", escalated=True),
            case("C-acme", closed=True, escalated=True),
            case("C-GLOBEX", escalated=True),
        ],
        instance_url="https://crm.example/",
        ids=upper_id,
    )
    assert acme.id == "C-ACME"  # ids compared in the CRM's canonical form
    assert acme.name == "Acme Corp" and acme.segment == "Enterprise"
    assert acme.owner_name == "Olivia Owner" and acme.owner_id is not None
    assert acme.open_cases == 2 and acme.escalated_cases == 1  # closed ones do not count
    assert acme.url == "https://crm.example/C-ACME"
    assert acme.project_keys == ("APOLLO", "ORION")
    assert acme.satisfaction is not None
    assert acme.satisfaction.score == 2.8 and acme.satisfaction.scale == 5
    assert acme.satisfaction.source == "account_field" and acme.satisfaction.nps_category is None
    assert acme.satisfaction.measured_at is not None


def test_missing_values_and_deleted_accounts() -> None:
    result = customers(
        [
            account(ACME, csat=None, segment="  ", owner_name=None, owner_id=None, name=None),
            account(GLOBEX, deleted=True),
            account(GONE),
            {"name": "no id"},
        ],
        deleted_ids=[f" {GONE} "],
    )
    assert [c.id for c in result] == [ACME]
    (acme,) = result
    assert acme.satisfaction is None and acme.segment is None and acme.owner_name is None
    assert acme.name == ACME and acme.url == ""


def test_deleted_and_closed_cases_do_not_count() -> None:
    cases = [case(ACME, escalated=True), case(ACME, closed=True), case(ACME) | {"deleted": True}]
    (acme,) = customers([account(ACME)], cases)
    assert acme.open_cases == 1 and acme.escalated_cases == 1


def test_latest_version_of_an_account_wins_in_any_order() -> None:
    old = account(ACME, "Old name", changed_at="2026-01-01T00:00:00.000+0000")
    new = account(ACME, "New name", changed_at="2026-11-01T00:00:00.000+0000")
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
        {"id": "x", "customer_id": ACME, "score": None, "answered_at": None},
        survey(ACME, 2, days=3, number=6) | {"deleted": True},
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


def test_survey_answers_given_as_a_date_and_score_as_text() -> None:
    rules = replace(SAT, source="survey")
    record = {"id": "a", "customer_id": ACME, "score": "4.5", "answered_at": "2026-11-20"}
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


def test_a_merged_away_customers_cases_and_answers_count_for_the_survivor() -> None:
    """The CRM merged GONE into ACME: GONE is no customer, and the cases and survey answers
    still naming it (not re-read since the merge) count for ACME."""
    rules = survey_rules("mean")
    got = customers(
        [account(ACME, "Acme", merged_ids=[GONE[:15], "not an id", ACME])],
        [case(GONE, escalated=True), case(ACME)],
        [survey(GONE, 2, days=5, number=1), survey(ACME, 4, days=4, number=2)],
        rules=rules,
        deleted_ids=[GONE],
        ids=IDS,
    )
    (acme,) = got
    assert acme.id == ACME and acme.merged_ids == (GONE,)
    assert (acme.open_cases, acme.escalated_cases) == (2, 1)
    assert acme.satisfaction is not None and acme.satisfaction.score == 3.0


def test_a_merge_undone_brings_the_id_back_as_its_own_customer() -> None:
    got = customers(
        [account(ACME, "Acme", merged_ids=[GLOBEX]), account(GLOBEX, "Globex")],
        [case(GLOBEX, escalated=True)],
    )
    assert [(c.id, c.escalated_cases) for c in got] == [(ACME, 0), (GLOBEX, 1)]
