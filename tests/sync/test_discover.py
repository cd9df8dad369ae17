"""Discovery's decisions (sync.discover, and Salesforce's side in
connectors.salesforce.discover), from answers shaped like the sites': fields are
judged by type and by what they hold, never by their names, and what init writes from the
result loads as a config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.salesforce.discover import (
    TERMS,
    crm_link_choice,
    judge,
    object_choices,
    objects_to_describe,
    satisfaction_choice,
    segment_choice,
)
from sync.config import load_config
from sync.discover import Project, Sample, decide
from sync.discover.jira_fields import (
    EPIC_LINK_TYPE,
    STORY_POINT_ESTIMATE_TYPE,
    account_link_choice,
    epic_link_choice,
    sample_fields,
    story_points_choice,
)
from sync.init_config import Answers, example_text, render

TEXT = "com.atlassian.jira.plugin.system.customfieldtypes:textfield"
SELECT = "com.atlassian.jira.plugin.system.customfieldtypes:select"
FLOAT = "com.atlassian.jira.plugin.system.customfieldtypes:float"
ACME = "001Dn00000AbCdEIAV"  # 18 characters, Account key prefix
GLOBEX = "001Dn00000XyZaBIAV"
OPPORTUNITY = "006Dn00000AbCdEIAV"  # an Id, but not an Account's


def jira_field(field_id: str, name: str, kind: str, custom: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if custom:
        schema["custom"] = custom
    return {"id": field_id, "name": name, "custom": custom is not None, "schema": schema}


SYSTEM = [
    jira_field("summary", "Summary", "string"),
    jira_field("status", "Status", "status"),
    jira_field("issuetype", "Issue Type", "issuetype"),
    jira_field("updated", "Updated", "datetime"),
]


def issues(*values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": f"P-{n}", "fields": fields} for n, fields in enumerate(values, 1)]


def sf_field(name: str, kind: str, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": more.pop("label", name),
        "type": kind,
        "custom": "__c" in name,
        **more,
    }


# -- Jira --------------------------------------------------------------------------------------


def test_the_account_field_is_found_by_its_values_not_its_name() -> None:
    fields = [
        *SYSTEM,
        jira_field("customfield_1", "Salesforce Account", "string", TEXT),  # the default name
        jira_field("customfield_2", "客户编号", "string", TEXT),  # holds the ids
        jira_field("customfield_3", "Deal", "string", TEXT),  # Opportunity ids
    ]
    sample = issues(
        {"customfield_1": "n/a", "customfield_2": ACME, "customfield_3": OPPORTUNITY},
        {"customfield_1": "Acme", "customfield_2": " 001Dn00000AbCdE ", "customfield_3": None},
        {"customfield_2": GLOBEX},
        {},
    )
    choice = account_link_choice(fields, sample, TERMS, known={ACME, GLOBEX})
    assert choice.chosen is not None
    assert (choice.chosen.value, choice.chosen.aside) == ("客户编号", "customfield_2")
    assert choice.chosen.evidence == (
        "text field; 3 of 4 sampled issues hold an Account Id, 2 distinct, all of them "
        "Accounts in Salesforce"
    )
    assert [c.hits for c in choice.others] == [0, 0]  # the name, and the Opportunity ids
    assert "customfield_1" in sample_fields(fields) and "summary" not in sample_fields(fields)


def test_ids_salesforce_holds_outrank_more_ids_it_does_not() -> None:
    fields = [
        jira_field("customfield_1", "Old CRM", "string", TEXT),
        jira_field("customfield_2", "Kunde", "option", SELECT),
    ]
    sample = issues(
        {"customfield_1": GLOBEX, "customfield_2": {"value": ACME}},
        {"customfield_1": GLOBEX},
        {"customfield_1": GLOBEX},
    )
    chosen = account_link_choice(fields, sample, TERMS, known={ACME}).chosen
    assert chosen is not None and chosen.value == "Kunde"
    assert chosen.evidence.startswith("select field; 1 of 3 sampled issues")
    # Without Salesforce's answer (check --online's Jira hints) the count decides.
    unconfirmed = account_link_choice(fields, sample, TERMS).chosen
    assert unconfirmed is not None and unconfirmed.value == "Old CRM"


def test_a_field_whose_name_repeats_is_written_by_its_id() -> None:
    fields = [
        jira_field("customfield_1", "Customer", "string", TEXT),
        jira_field("customfield_2", "customer", "option", SELECT),
    ]
    chosen = account_link_choice(fields, issues({"customfield_1": ACME}), TERMS).chosen
    assert chosen is not None
    assert (chosen.value, chosen.aside) == ("customfield_1", "Customer")


def test_no_account_field_leaves_the_rule_out() -> None:
    fields = [jira_field("customfield_1", "Notes", "string", TEXT)]
    choice = account_link_choice(fields, issues({"customfield_1": "call back"}), TERMS, known=set())
    assert choice.chosen is None
    assert "no text field holds an Account Id in 1 sampled issues" in choice.line()
    assert choice.hint() == ""


def test_story_points_by_estimate_shaped_values_when_the_name_is_unknown() -> None:
    fields = [
        jira_field("customfield_1", "Business Value", "number", FLOAT),  # money-like
        jira_field("customfield_2", "工作量", "number", FLOAT),  # estimates
    ]
    sample = issues(
        {"customfield_1": 12000.0, "customfield_2": 3.0},
        {"customfield_1": 450.5, "customfield_2": 8},
        {"customfield_1": 990.0, "customfield_2": 13.0},
        {"customfield_1": 70.0},
    )
    choice = story_points_choice(fields, sample)
    assert choice.chosen is not None and choice.chosen.value == "工作量"
    assert choice.chosen.evidence == "number field; 3 of 4 sampled issues hold a value, 3 to 13"


def test_story_points_prefer_the_field_that_holds_them_over_an_empty_typed_one() -> None:
    fields = [
        jira_field("customfield_1", "Story point estimate", "number", STORY_POINT_ESTIMATE_TYPE),
        jira_field("customfield_2", "Story Points", "number", FLOAT),
    ]
    holding = story_points_choice(fields, issues({"customfield_2": 5}, {"customfield_2": 2}))
    assert holding.chosen is not None and holding.chosen.value == "Story Points"
    assert holding.chosen.evidence.startswith("number field named like story points; 2 of 2")
    # Nothing sampled holds a value: Jira Software's own estimate type is the guess.
    empty = story_points_choice(fields, issues({}))
    assert empty.chosen is not None and empty.chosen.value == "Story point estimate"
    # A number field with neither the type, nor the name, nor estimates is not chosen.
    other = [jira_field("customfield_3", "Kosten", "number", FLOAT)]
    assert story_points_choice(other, issues({"customfield_3": 1234.5})).chosen is None


def test_the_epic_link_is_found_by_its_type_under_a_localised_name() -> None:
    fields = [*SYSTEM, jira_field("customfield_10014", "史诗链接", "any", EPIC_LINK_TYPE)]
    chosen = epic_link_choice(fields).chosen
    assert chosen is not None and chosen.value == "史诗链接" and chosen.aside == "customfield_10014"
    assert epic_link_choice(SYSTEM).chosen is None


# -- Salesforce --------------------------------------------------------------------------------

ACCOUNT = {
    "name": "Account",
    "fields": [
        sf_field("Id", "id"),
        sf_field("Name", "string"),
        sf_field("Industry", "picklist"),  # standard: a custom picklist goes first
        sf_field("Kundengruppe__c", "picklist", label="Kundengruppe"),
        sf_field("AnnualRevenue", "currency"),
        sf_field("Umsatz__c", "double"),  # money in a number field: not a score
        sf_field("Zufriedenheit__c", "double", label="Zufriedenheit"),
        sf_field("Jira_Schluessel__c", "string"),
        sf_field("Notiz__c", "string"),
    ],
}
ACCOUNTS = [
    {"Id": ACME, "Industry": "Retail", "Kundengruppe__c": "Großkunde", "Umsatz__c": 2.5e6,
     "Zufriedenheit__c": 4.5, "Jira_Schluessel__c": "APOLLO, orion", "Notiz__c": "APOLLO?"},
    {"Id": GLOBEX, "Industry": "Energy", "Kundengruppe__c": "KMU", "Umsatz__c": 9e5,
     "Zufriedenheit__c": 2.0, "Jira_Schluessel__c": None, "Notiz__c": "see ORION"},
    {"Id": "001Dn00000QqQqQIAV", "Industry": None, "Kundengruppe__c": "KMU",
     "Umsatz__c": None, "Zufriedenheit__c": None, "Jira_Schluessel__c": "HR"},
]  # fmt: skip


def test_account_fields_are_found_by_type_and_values() -> None:
    segment = segment_choice(ACCOUNT, ACCOUNTS).chosen
    assert segment is not None and segment.value == "Kundengruppe__c"
    assert segment.evidence == "picklist; 3 of 3 sampled Accounts hold a value: KMU, Großkunde"
    score = satisfaction_choice(ACCOUNT, ACCOUNTS)
    assert score.chosen is not None and score.chosen.value == "Zufriedenheit__c"
    assert score.chosen.evidence == "number field; 2 of 3 sampled Accounts hold a value, 2 to 4.5"
    assert [c.value for c in score.others] == ["Umsatz__c"]  # currency is not a candidate
    link = crm_link_choice(ACCOUNT, ACCOUNTS, ["APOLLO", "ORION"])
    assert link.chosen is not None and link.chosen.value == "Jira_Schluessel__c"
    assert link.chosen.evidence.endswith(
        "1 of 3 sampled Accounts name a project in scope: APOLLO, ORION"
    )


def test_scores_above_the_scale_say_so() -> None:
    nps = {"name": "Account", "fields": [sf_field("NPS__c", "int")]}
    chosen = satisfaction_choice(nps, [{"NPS__c": 9}, {"NPS__c": 3}]).chosen
    assert chosen is not None
    assert chosen.evidence.endswith("above 5: set [satisfaction] scale and thresholds to match")


def describe(name: str, *fields: dict[str, Any], label: str = "") -> dict[str, Any]:
    return {"name": name, "label": label or name, "custom": True, "fields": list(fields)}


LOOKUP = {"referenceTo": ["Account"]}
REPORT = describe(
    "Projektstatus__c",
    sf_field("Id", "id"),
    sf_field("Schluessel__c", "string", externalId=True, unique=True),
    sf_field("Account__c", "reference", **LOOKUP),
    *(sf_field(name, "double") for name in (
        "Jira_Project_Key__c", "Issues_Total__c", "Issues_Done__c", "Issues_In_Progress__c",
        "Issues_To_Do__c", "Issues_Overdue__c", "Percent_Complete__c", "Health__c",
    )),
)  # fmt: skip
SURVEY = describe(
    "Umfrage__c",
    sf_field("Id", "id"),
    sf_field("Kunde__c", "reference", **LOOKUP),
    sf_field("Punkte__c", "double"),
    sf_field("Beantwortet__c", "datetime"),
    sf_field("CreatedDate", "datetime"),
    label="Umfrageantwort",
)
OTHER = describe("Lizenz__c", sf_field("Kunde__c", "reference", **LOOKUP))


def test_the_report_and_survey_objects_are_told_apart_by_their_fields() -> None:
    survey, report = object_choices([OTHER, SURVEY, REPORT])
    assert report.chosen is not None and report.chosen.value == "Projektstatus__c"
    assert report.chosen.also == (("external_id_field", "Schluessel__c"),)
    assert "holds 9 of the 15 report fields; lacks Health_Reasons__c, Next_Milestone__c" in (
        report.chosen.evidence
    )
    assert survey.chosen is not None and survey.chosen.value == "Umfrage__c"
    assert survey.chosen.also == (
        ("account_field", "Kunde__c"),
        ("score_field", "Punkte__c"),
        ("date_field", "Beantwortet__c"),
    )


def test_a_report_object_without_an_external_id_says_so() -> None:
    fields = [f for f in REPORT["fields"] if not f.get("externalId")]
    _survey, report = object_choices([describe("Projektstatus__c", *fields)])
    assert report.chosen is not None and report.chosen.also == ()
    assert "has no External ID text field: add one (Unique)" in report.chosen.evidence
    _none, missing = object_choices([OTHER])
    assert missing.chosen is None and "create the report object" in missing.line()


def test_few_objects_are_described_configured_and_survey_like_first() -> None:
    listed = [{"name": f"Obj{i}__c", "label": f"Object {i}"} for i in range(20)]
    listed += [
        {"name": "Setting__c", "customSetting": True},
        {"name": "Account"},
        {"name": "Kundenfeedback__c", "label": "Feedback"},
        {"name": "Status__c", "label": "Status"},
    ]
    names = objects_to_describe(listed, ["Status__c"])
    assert names[:2] == ["Status__c", "Kundenfeedback__c"]
    assert len(names) == 8 and "Setting__c" not in names and "Account" not in names


# -- what init writes --------------------------------------------------------------------------


ENV = {"JIRA_API_TOKEN": "t", "SALESFORCE_CONSUMER_KEY": "k", "SALESFORCE_CONSUMER_SECRET": "s"}


def answers() -> Answers:
    return Answers(
        jira_url="https://acme.atlassian.net",
        jira_auth="cloud",
        jira_email="ops@acme.example",
        projects=("APOLLO", "ORION"),
        salesforce_auth="client_credentials",
        salesforce_login_url="https://acme.my.salesforce.com",
        salesforce_instance_url="",
        salesforce_username=None,
        salesforce_private_key_file=None,
        state_url=None,
    )


def test_the_discovered_config_loads_with_every_choice_and_its_reason(tmp_path: Path) -> None:
    fields = [
        *SYSTEM,
        jira_field("customfield_2", "客户编号", "string", TEXT),
        jira_field("customfield_3", "Story Points", "number", FLOAT),
    ]
    sample = Sample(
        fields=fields, issues=issues({"customfield_2": ACME, "customfield_3": 3}), known={ACME}
    )
    crm = judge(ACCOUNT, ACCOUNTS, [SURVEY, REPORT], ["APOLLO", "ORION"])
    found = decide(["APOLLO", "ORION"], [Project("APOLLO", "Apollo")], sample, crm, TERMS)
    path = tmp_path / "c.toml"
    path.write_text(render(example_text(), answers(), found), encoding="utf-8")
    config = load_config(path, environ=ENV)
    assert config.link.jira_field == "客户编号"
    assert config.link.crm_field == "Jira_Schluessel__c"
    assert config.link.order == ("jira_field", "crm_field", "static")
    assert config.progress.story_points_field == "Story Points"
    assert config.crm.salesforce.account.segment_field == "Kundengruppe__c"
    assert config.crm.salesforce.account.satisfaction_field == "Zufriedenheit__c"
    assert config.satisfaction.source == "account_field"
    assert (config.satisfaction.survey.object, config.satisfaction.survey.score_field) == (
        "Umfrage__c",
        "Punkte__c",
    )
    assert (config.push.crm.object, config.push.crm.external_id_field) == (
        "Projektstatus__c",
        "Schluessel__c",
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    at = lines.index('jira_field = "客户编号"')
    assert lines[at - 1].startswith("#") and "1 of 1 sampled issues hold an Account Id" in (
        lines[at - 2] + lines[at - 1]
    )


def test_nothing_found_leaves_rules_out_and_falls_back_to_a_survey(tmp_path: Path) -> None:
    bare = {"name": "Account", "fields": [sf_field("Id", "id"), sf_field("Name", "string")]}
    sample = Sample(fields=SYSTEM, issues=issues({}), known=set())
    crm = judge(bare, [], [SURVEY], ["APOLLO"])
    found = decide(["APOLLO"], [Project("APOLLO", "Apollo")], sample, crm, TERMS)
    path = tmp_path / "c.toml"
    path.write_text(render(example_text(), answers(), found), encoding="utf-8")
    config = load_config(path, environ=ENV)
    assert config.link.order == ("static",)
    assert config.progress.story_points_field == ""
    assert config.satisfaction.source == "survey"
    assert config.satisfaction.survey.object == "Umfrage__c"
    printed = "\n".join(found.lines())
    assert "[link] jira_field: no text field holds an Account Id" in printed
    assert "[crm.salesforce.account] segment_field: Account has no picklist" in printed


def test_names_from_a_site_cannot_write_toml_lines(tmp_path: Path) -> None:
    hostile = 'x"\n[state]\nurl = "postgresql://evil"\n#'
    fields = [  # the name repeats: the id is written, the name goes into the comment
        jira_field("customfield_2", hostile, "string", TEXT),
        jira_field("customfield_3", hostile, "string", TEXT),
    ]
    account = {"name": "Account", "fields": [sf_field("Seg__c", "picklist", label=hostile)]}
    sample = Sample(fields=fields, issues=issues({"customfield_2": ACME}))
    crm = judge(account, [], [], ["APOLLO"])
    found = decide(["APOLLO"], [Project("APOLLO", hostile)], sample, crm, TERMS)
    path = tmp_path / "c.toml"
    path.write_text(render(example_text(), answers(), found), encoding="utf-8")
    config = load_config(path, environ=ENV)
    assert config.link.jira_field == "customfield_2"
    assert config.crm.salesforce.account.segment_field == "Seg__c"
    assert config.state.url is None
    assert path.read_text(encoding="utf-8").count("postgresql://evil") == 2  # in comments
    assert all("\n" not in line for line in found.lines())


def test_ids_the_crm_does_not_hold_are_not_taken_for_a_link_field() -> None:
    from connectors.hubspot.discover import TERMS as HUBSPOT

    # Digits look like HubSpot company ids; only those HubSpot confirms make the field.
    fields = [*SYSTEM, jira_field("customfield_1", "Ticket no.", "string", TEXT)]
    sample = issues({"customfield_1": "4711"})
    assert account_link_choice(fields, sample, HUBSPOT, known=set()).chosen is None
    chosen = account_link_choice(fields, sample, HUBSPOT, known={"4711"}).chosen
    assert chosen is not None and "all of them companies in HubSpot" in chosen.evidence
