"""HubSpot's side of discovery against the sandbox portal in-process: the company
properties, survey answers and report object judged by type and value in a handful of
calls; the company ids a Jira field holds confirmed; the scopes the token lacks found by
one cheap call each, writing nothing, and named with the fix."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.crm import Discoverable
from connectors.discovery import AccessCheck
from connectors.exceptions import AuthError
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.discover import (
    CONFIG_NAMES,
    REPORT_PROPERTIES,
    HubSpotDiscovery,
    survey_choice,
)
from connectors.retry import RetryPolicy
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.hubspot import HubSpotBackend
from connectors.sandbox.hubspot.schema import STANDARD_TYPES, Prop
from connectors.sandbox.hubspot.standalone import REPORT_FIELDS
from connectors.sandbox.hubspot.transport import IN_PROCESS_URL, InProcessTransport
from connectors.sandbox.world import generate_world
from tests.connectors.hubspot_portal import FakeClock, Portal, needs

COMPANIES = STANDARD_TYPES["companies"]


def portal(**kwargs: Any) -> Portal:
    """A portal of a world with Jira projects (companies name their keys)."""
    clock = FakeClock()
    world = generate_world(issues=60, accounts=30, seed=2)
    backend = HubSpotBackend(world, clock=clock, **kwargs)
    app = SandboxApp(backend)
    app.sleep = clock.sleep
    return Portal(backend, app, clock, IN_PROCESS_URL, None, InProcessTransport(app))


def signed_in(box: Portal, **settings: Any) -> HubSpotConnector:
    crm = box.connector(**settings)
    crm.connect()
    return crm


def projects(box: Portal) -> list[str]:
    return [p.key for p in box.backend.world.projects]


def test_every_choice_is_found_by_type_and_value_in_a_handful_of_calls() -> None:
    box = portal()
    crm = signed_in(box)
    assert isinstance(crm, Discoverable)
    before, version = crm.meter.total, box.backend.version

    found = crm.discovery().choices(projects(box), None)

    assert crm.meter.total - before <= 7
    assert box.backend.version == version  # nothing written
    assert found.segment.chosen is not None and found.segment.chosen.value == "customer_group"
    assert "30 of 30 sampled companies hold a value" in found.segment.chosen.evidence
    assert found.satisfaction.chosen is not None
    assert found.satisfaction.chosen.value == "csat_score"
    assert found.crm_link.chosen is not None
    assert found.crm_link.chosen.value == "jira_project_keys"
    assert "name a project in scope" in found.crm_link.chosen.evidence
    survey = found.survey.chosen
    assert survey is not None and survey.value == "feedback_submissions"
    assert dict(survey.also) == {
        "account_field": "company",
        "score_field": "hs_response_value",
        "date_field": "hs_submission_timestamp",
    }
    assert "NPS is 0 to 10" in survey.evidence  # the scale to set with source = "survey"
    report = found.report.chosen
    assert report is not None and report.value == "jira_project_status"
    assert dict(report.also) == {"external_id_field": "jira_sync_key"}
    assert "holds all 15 report properties" in report.evidence
    # Without the custom object the companies would serve: offered behind it.
    assert [c.value for c in found.report.others] == ["companies"]


def test_names_do_not_decide_values_do() -> None:
    box = portal()
    props = box.backend.schema.props[COMPANIES]
    # An empty dropdown named like a customer group, and a number "score" above any scale.
    props["customer_segment"] = Prop(
        "customer_segment", "enumeration", "select", ("A",), custom=True
    )
    props["csat_rating"] = Prop("csat_rating", "number", "number", custom=True)
    for n, company in enumerate(box.backend.records[COMPANIES].values()):
        company.properties["csat_rating"] = str(50 + n)
    crm = signed_in(box)

    found = crm.discovery().choices(projects(box), None)

    assert found.segment.chosen is not None and found.segment.chosen.value == "customer_group"
    assert found.satisfaction.chosen is not None
    assert found.satisfaction.chosen.value == "csat_score"
    rating = next(c for c in found.satisfaction.others if c.value == "csat_rating")
    assert "above 5: set [satisfaction] scale" in rating.evidence and rating.hits == 0


def test_without_an_enterprise_hub_reports_go_to_the_companies() -> None:
    box = portal(enterprise=False)
    crm = signed_in(box)

    report = crm.discovery().choices(projects(box), None).report

    assert report.chosen is not None and report.chosen.value == "companies"
    assert dict(report.chosen.also) == {"external_id_field": "jira_sync_key"}
    assert "Enterprise hub" in report.chosen.evidence
    assert report.chosen.hits == 14  # every report property but the company id


def test_a_report_object_lacking_properties_says_which() -> None:
    box = portal()
    del box.backend.schema.props["2-1001"]["health"]
    crm = signed_in(box)

    report = crm.discovery().choices(projects(box), None).report

    assert report.chosen is not None and report.chosen.value == "jira_project_status"
    assert "holds 14 of the 15 report properties; lacks health" in report.chosen.evidence


def test_survey_answers_of_other_types_are_not_proposed() -> None:
    answers = [
        {"properties": {"hs_survey_type": "CSAT", "hs_response_value": "4"}},
        {"properties": {"hs_survey_type": "CES", "hs_response_value": "6"}},
    ]
    props = [{"name": "hs_response_value"}, {"name": "hs_submission_timestamp"}]
    choice = survey_choice(props, answers, ("NPS",))
    assert choice.chosen is None
    assert "survey_types (NPS); types seen: CES, CSAT" in choice.missing
    assert survey_choice(props, answers, ("CSAT",)).chosen is not None
    assert survey_choice(None, answers, ("NPS",)).chosen is None  # may not read them


def test_company_ids_from_jira_are_confirmed_in_one_call() -> None:
    box = portal()
    crm = signed_in(box)
    real = sorted(box.backend.records[COMPANIES])[:3]
    before = crm.meter.total

    known = crm.discovery().known_customers([*real, " 99999999 ", "001Dn00000AbCdEIAV", ""])

    assert known == set(real)
    assert crm.meter.total - before == 1
    terms = crm.discovery().terms
    assert (terms.name, terms.customer) == ("HubSpot", "company")
    assert terms.customer_id(" 1234 ") == "1234" and terms.customer_id("Acme") is None


def test_hints_spend_calls_only_on_what_failed() -> None:
    box = portal()
    crm = signed_in(box)
    side = crm.discovery()
    before = crm.meter.total

    hints = side.hints({"external_id"}, projects(box), None, "jira_project_status")

    assert crm.meter.total - before == 2  # the schemas and the object's properties
    assert hints["external_id"].chosen is not None
    assert hints["external_id"].chosen.value == "jira_sync_key"
    hints = side.hints({"segment"}, projects(box), None, "jira_project_status")
    assert set(hints) == {"segment"}
    assert 'did you mean "customer_group"' in hints["segment"].hint()


def test_every_scope_held_costs_one_call_each_and_writes_nothing() -> None:
    box = portal()
    crm = signed_in(box)
    side = crm.discovery()
    assert isinstance(side, AccessCheck)
    before, version = crm.meter.total, box.backend.version

    made, lacking = side.missing_access(needs(), upload=True)

    assert lacking == []
    # The schemas (to find the report object), then one call per scope.
    assert made == crm.meter.total - before == 11
    assert box.backend.version == version


@pytest.mark.parametrize("auth", ["private_app", "oauth"])
def test_scopes_the_token_lacks_are_named_with_the_fix(auth: str) -> None:
    box = portal()
    box.backend.scopes -= {
        "crm.objects.custom.write",
        "crm.objects.feedback_submissions.read",
        "crm.schemas.custom.read",
    }
    crm = signed_in(box, auth=auth)

    _made, lacking = crm.discovery().missing_access(needs())

    by_name = {lack.name: lack.detail for lack in lacking}
    assert set(by_name) == {
        "scope crm.objects.feedback_submissions.read",
        "scope crm.schemas.custom.read",
        "scope crm.objects.custom.write",
    }
    write = by_name["scope crm.objects.custom.write"]
    assert write.startswith("needed to upsert the progress reports into jira_project_status")
    if auth == "oauth":
        assert "to the OAuth app's scopes, then re-authorize" in write
    else:
        assert "add scope crm.objects.custom.write to the private app (Settings" in write
    # Without the schemas scope the custom object is invisible: the fix says what it costs.
    assert "without it reports go to company properties" in by_name["scope crm.schemas.custom.read"]


def test_a_refused_token_is_not_taken_for_a_missing_scope() -> None:
    box = portal()
    crm = signed_in(box)
    box.backend.private_app_token = "pat-na1-rotated"
    with pytest.raises(AuthError, match="HubSpot refused the token"):
        crm.discovery().missing_access(needs())


def test_the_names_init_writes_are_the_sandbox_portals() -> None:
    assert dict(REPORT_PROPERTIES) == REPORT_FIELDS
    written = {(section, key): value for section, key, value in CONFIG_NAMES}
    assert written[("push.crm", "object")] == "jira_project_status"
    assert HubSpotDiscovery.terms.name == "HubSpot"


def test_discovery_needs_no_call_to_build() -> None:
    box = portal()
    crm = HubSpotConnector(box.settings(), transport=box.transport, retry=RetryPolicy(attempts=1))
    crm.discovery()
    assert crm.meter.total == 0
