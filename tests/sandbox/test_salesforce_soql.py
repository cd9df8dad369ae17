"""The sandbox's SOQL subset: every operator, precedence, literals and escapes, ordering,
paging, COUNT, relationship paths, and refusals in Salesforce's error shape."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce.format import format_soql

from connectors.sandbox.salesforce import SalesforceBackend
from connectors.sandbox.salesforce.soql import SoqlError, parse
from connectors.sandbox.world import generate_world

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

TRICKY_NAMES = [
    'O\'Brien "Quoted" Ltd',
    "Back\\slash Co",
    "Tab\tNew\nLine\rCarriage Co",
    "Bell\bForm\fFeed Co",
    "华信科技（特殊）",
    "100% Pure_Co",
    "x' OR Name != 'y",
]


@pytest.fixture(scope="module")
def org() -> SalesforceBackend:
    backend = SalesforceBackend(generate_world(issues=0, accounts=40, seed=7), clock=lambda: NOW)
    for name in TRICKY_NAMES:
        backend.create_record("Account", Name=name, Segment__c="SMB")
    backend.create_record("Account", Name="acme lowercase", CSAT__c=None)
    backend.create_record("Account", Name="Exactly Four Point Two", CSAT__c=4.2)
    account = backend.records("Account")[0]["Id"]
    for i, (health, milestone) in enumerate(
        [("Green", date(2026, 12, 1)), ("Amber", date(2027, 1, 15)), ("Red", None)]
    ):
        backend.create_record(
            "Jira_Project_Status__c",
            Jira_Sync_Key__c=f"APOLLO:{i}",
            Account__c=account,
            Health__c=health,
            Next_Milestone_Date__c=milestone,
            Issues_Total__c=10 * i,
            Summary__c="long text",
        )
    return backend


def rows(org: SalesforceBackend, soql: str, include_deleted: bool = False) -> list[dict[str, Any]]:
    compiled, found = org.run_query(soql, include_deleted)
    return [compiled.render(r, "59.0") for r in found]


def names(org: SalesforceBackend, soql: str) -> list[str]:
    return [r["Name"] for r in rows(org, soql)]


def refused(org: SalesforceBackend, soql: str) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        org.run_query(soql, False)
    return info.value


def accounts(org: SalesforceBackend) -> list[dict[str, Any]]:
    return org.records("Account")


# -- comparison operators -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "test"),
    [
        ("=", lambda v: v is not None and v == 4.2),
        ("!=", lambda v: v is None or v != 4.2),
        ("<>", lambda v: v is None or v != 4.2),
        ("<", lambda v: v is not None and v < 4.2),
        ("<=", lambda v: v is not None and v <= 4.2),
        (">", lambda v: v is not None and v > 4.2),
        (">=", lambda v: v is not None and v >= 4.2),
    ],
)
def test_number_operators_follow_soql_null_rules(
    org: SalesforceBackend, op: str, test: Any
) -> None:
    expected = sorted(a["Id"] for a in accounts(org) if test(a["CSAT__c"]))
    found = sorted(r["Id"] for r in rows(org, f"SELECT Id FROM Account WHERE CSAT__c {op} 4.2"))
    assert found == expected
    assert expected  # the seeded data exercises every operator


def test_string_equality_is_case_insensitive_like_salesforce(org: SalesforceBackend) -> None:
    assert names(org, "SELECT Name FROM Account WHERE Name = 'ACME LOWERCASE'") == [
        "acme lowercase"
    ]


def test_in_and_not_in_with_null(org: SalesforceBackend) -> None:
    smb = {a["Id"] for a in accounts(org) if a["Segment__c"] in ("SMB", "大客户")}
    soql = "SELECT Id FROM Account WHERE Segment__c IN ('SMB', '大客户')"
    found = {r["Id"] for r in rows(org, soql)}
    assert found == smb
    no_csat = {a["Id"] for a in accounts(org) if a["CSAT__c"] is None}
    found = {r["Id"] for r in rows(org, "SELECT Id FROM Account WHERE CSAT__c IN (null)")}
    assert found == no_csat
    rest = {a["Id"] for a in accounts(org) if a["Segment__c"] not in ("SMB", "大客户")}
    soql = "SELECT Id FROM Account WHERE Segment__c NOT IN ('SMB', '大客户')"
    found = {r["Id"] for r in rows(org, soql)}
    assert found == rest


def test_null_comparisons(org: SalesforceBackend) -> None:
    with_csat = [r["Id"] for r in rows(org, "SELECT Id FROM Account WHERE CSAT__c != null")]
    without = [r["Id"] for r in rows(org, "SELECT Id FROM Account WHERE CSAT__c = NULL")]
    assert len(with_csat) + len(without) == len(accounts(org))
    assert "acme lowercase" in names(org, "SELECT Name FROM Account WHERE CSAT__c = null")


def test_boolean_literals(org: SalesforceBackend) -> None:
    cases = org.records("Case")
    open_escalated = sorted(c["Id"] for c in cases if c["IsEscalated"] and not c["IsClosed"])
    found = rows(org, "SELECT Id FROM Case WHERE IsEscalated = TRUE AND IsClosed = false")
    assert sorted(r["Id"] for r in found) == open_escalated


def test_id_literal_may_be_15_characters(org: SalesforceBackend) -> None:
    target = accounts(org)[3]
    found = rows(org, f"SELECT Id, Name FROM Account WHERE Id = '{target['Id'][:15]}'")
    assert [r["Id"] for r in found] == [target["Id"]]


# -- LIKE -----------------------------------------------------------------------------------


def test_like_wildcards_and_case(org: SalesforceBackend) -> None:
    assert names(org, "SELECT Name FROM Account WHERE Name LIKE 'ACME%'") == ["acme lowercase"]
    assert names(org, "SELECT Name FROM Account WHERE Name LIKE 'acme_lowercase'") == [
        "acme lowercase"
    ]
    soql = "SELECT Name FROM Account WHERE Name LIKE '华信科技%特殊%'"
    assert names(org, soql) == ["华信科技（特殊）"]


def test_like_escaped_percent_and_underscore_are_literal(org: SalesforceBackend) -> None:
    assert names(org, r"SELECT Name FROM Account WHERE Name LIKE '100\% Pure\_Co'") == [
        "100% Pure_Co"
    ]
    assert names(org, r"SELECT Name FROM Account WHERE Name LIKE '100\%%'") == ["100% Pure_Co"]
    assert names(org, r"SELECT Name FROM Account WHERE Name LIKE '%\_%'") == ["100% Pure_Co"]
    query = format_soql("SELECT Name FROM Account WHERE Name LIKE '{:like}%'", "100% Pure_")
    assert names(org, query) == ["100% Pure_Co"]


# -- escapes: exact matches that never widen ------------------------------------------------


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_escaped_values_match_exactly_one_record(org: SalesforceBackend, name: str) -> None:
    query = format_soql("SELECT Name FROM Account WHERE Name = {}", name)
    assert names(org, query) == [name]


def test_injection_attempt_stays_a_value(org: SalesforceBackend) -> None:
    query = format_soql("SELECT Name FROM Account WHERE Name = {}", "y' OR Name != 'z")
    assert names(org, query) == []


def test_every_escape_sequence_decodes(org: SalesforceBackend) -> None:
    soql = r"SELECT Name FROM Account WHERE Name = 'Tab\tNew\nLine\rCarriage Co'"
    assert names(org, soql) == ["Tab\tNew\nLine\rCarriage Co"]
    assert names(org, r"SELECT Name FROM Account WHERE Name = 'Bell\bForm\fFeed Co'") == [
        "Bell\bForm\fFeed Co"
    ]
    soql = r"SELECT Name FROM Account WHERE Name = 'O\'Brien \"Quoted\" Ltd'"
    assert names(org, soql) == ['O\'Brien "Quoted" Ltd']
    assert names(org, r"SELECT Name FROM Account WHERE Name = 'Back\\slash Co'") == [
        "Back\\slash Co"
    ]
    assert names(org, r"SELECT Name FROM Account WHERE Name = '\u534e\u4fe1科技（特殊）'") == [
        "华信科技（特殊）"
    ]


@pytest.mark.parametrize(
    "literal", [r"'bad \q escape'", r"'100\% outside LIKE'", r"'trailing \'", "'unterminated"]
)
def test_bad_string_literals_are_malformed(org: SalesforceBackend, literal: str) -> None:
    error = refused(org, f"SELECT Id FROM Account WHERE Name = {literal}")
    assert error.code == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in error.message


# -- logic and precedence -------------------------------------------------------------------


def test_parentheses_group_and_or(org: SalesforceBackend) -> None:
    data = accounts(org)
    expected = {
        a["Id"]
        for a in data
        if a["Segment__c"] == "SMB"
        and a["CSAT__c"] is not None
        and (a["CSAT__c"] < 3 or a["CSAT__c"] > 4.5)
    }
    found = rows(
        org, "SELECT Id FROM Account WHERE Segment__c = 'SMB' AND (CSAT__c < 3 OR CSAT__c > 4.5)"
    )
    assert {r["Id"] for r in found} == expected
    expected = {
        a["Id"]
        for a in data
        if (a["Segment__c"] == "SMB" and a["CSAT__c"] is not None and a["CSAT__c"] < 3)
        or (a["CSAT__c"] is not None and a["CSAT__c"] > 4.5)
    }
    found = rows(
        org, "SELECT Id FROM Account WHERE (Segment__c = 'SMB' AND CSAT__c < 3) OR CSAT__c > 4.5"
    )
    assert {r["Id"] for r in found} == expected


def test_not_negates_a_condition(org: SalesforceBackend) -> None:
    data = accounts(org)
    expected = {a["Id"] for a in data if not (a["Segment__c"] == "SMB" or a["CSAT__c"] is None)}
    found = rows(org, "SELECT Id FROM Account WHERE NOT (Segment__c = 'SMB' OR CSAT__c = null)")
    assert {r["Id"] for r in found} == expected
    found = rows(org, "SELECT Id FROM Account WHERE (NOT Name LIKE 'a%') AND CSAT__c > 4")
    assert found and all(not r["Id"].lower().startswith("a") for r in found)


@pytest.mark.parametrize(
    ("soql", "token"),
    [
        ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "'OR'"),
        ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' AND Name = 'c'", "'AND'"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND NOT Name = 'b'", "'Name'"),
    ],
)
def test_mixing_and_or_without_parentheses_is_refused(
    org: SalesforceBackend, soql: str, token: str
) -> None:
    error = refused(org, soql)
    assert error.code == "MALFORMED_QUERY"
    assert f"unexpected token: {token}" in error.message


# -- date and date-time literals ------------------------------------------------------------


def test_datetime_literal_forms_are_equivalent(org: SalesforceBackend) -> None:
    moment = sorted(a["SystemModstamp"] for a in accounts(org))[10]
    utc = moment.strftime("%Y-%m-%dT%H:%M:%S")
    shifted = (moment + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S")
    forms = [f"{utc}Z", f"{utc}.000+0000", f"{utc}+00:00", f"{shifted}+08:00"]
    results = [
        [r["Id"] for r in rows(org, f"SELECT Id FROM Account WHERE SystemModstamp >= {form}")]
        for form in forms
    ]
    assert all(result == results[0] for result in results)
    assert len(results[0]) == sum(1 for a in accounts(org) if a["SystemModstamp"] >= moment)


def test_date_literal_on_a_date_field(org: SalesforceBackend) -> None:
    found = rows(
        org,
        "SELECT Jira_Sync_Key__c FROM Jira_Project_Status__c "
        "WHERE Next_Milestone_Date__c < 2027-01-01",
    )
    assert [r["Jira_Sync_Key__c"] for r in found] == ["APOLLO:0"]


def test_datetime_values_render_like_salesforce(org: SalesforceBackend) -> None:
    row = rows(
        org,
        "SELECT CreatedDate, Next_Milestone_Date__c FROM Jira_Project_Status__c "
        "WHERE Jira_Sync_Key__c = 'APOLLO:0'",
    )[0]
    assert row["CreatedDate"] == "2026-11-21T10:00:00.000+0000"
    assert row["Next_Milestone_Date__c"] == "2026-12-01"


@pytest.mark.parametrize(
    ("soql", "code", "text"),
    [
        (
            "SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "value of filter criterion for field 'SystemModstamp' must be of type dateTime and "
            "should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate > 2026-01-01",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        (
            "SELECT Id FROM Jira_Project_Status__c WHERE Forecast_Date__c = 2026-01-01T00:00:00Z",
            "INVALID_FIELD",
            "must be of type date and",
        ),
        ("SELECT Id FROM Account WHERE CSAT__c = '4'", "INVALID_FIELD", "must be of type double"),
        ("SELECT Id FROM Case WHERE IsClosed = 'true'", "INVALID_FIELD", "must be of type boolean"),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD", "should be enclosed in quotes"),
        (
            "SELECT Id FROM Case WHERE IsClosed > true",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid operator",
        ),
        (
            "SELECT Id FROM Account WHERE Id = 'nope'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: nope",
        ),
        (
            "SELECT Id FROM Account WHERE CSAT__c LIKE '4%'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid operator",
        ),
        (
            "SELECT Id FROM Jira_Project_Status__c WHERE Summary__c = 'x'",
            "INVALID_FIELD",
            "can not be filtered",
        ),
        (
            "SELECT Id FROM Jira_Project_Status__c ORDER BY Summary__c",
            "INVALID_FIELD",
            "can not be sorted",
        ),
        ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "2000"),
    ],
)
def test_type_errors_use_salesforce_codes(
    org: SalesforceBackend, soql: str, code: str, text: str
) -> None:
    error = refused(org, soql)
    assert error.code == code
    assert text in error.message


# -- ORDER BY, LIMIT, OFFSET ----------------------------------------------------------------


def test_order_by_nulls_default_first_and_explicit_last(org: SalesforceBackend) -> None:
    ascending = rows(org, "SELECT Id, CSAT__c FROM Account ORDER BY CSAT__c, Id")
    values = [r["CSAT__c"] for r in ascending]
    nulls = values.count(None)
    assert nulls and values[:nulls] == [None] * nulls
    assert values[nulls:] == sorted(values[nulls:])
    descending = rows(org, "SELECT Id, CSAT__c FROM Account ORDER BY CSAT__c DESC NULLS LAST")
    values = [r["CSAT__c"] for r in descending]
    assert values[-nulls:] == [None] * nulls
    assert values[:-nulls] == sorted(values[:-nulls], reverse=True)
    first = rows(org, "SELECT Id, CSAT__c FROM Account ORDER BY CSAT__c DESC NULLS FIRST")
    assert [r["CSAT__c"] for r in first][:nulls] == [None] * nulls


def test_order_by_several_keys_case_insensitive(org: SalesforceBackend) -> None:
    found = rows(org, "select name, segment__c from account order by SEGMENT__C desc, Name asc")
    keys = [(r["Segment__c"], r["Name"].upper()) for r in found]
    segments = [k[0] for k in keys]
    nulls = segments.count(None)
    assert segments[:nulls] == [None] * nulls  # NULLS FIRST is the default, DESC too
    assert segments[nulls:] == sorted(segments[nulls:], key=str.upper, reverse=True)
    for segment in set(segments):
        group = [k[1] for k in keys if k[0] == segment]
        assert group == sorted(group)
    assert set(found[0]) == {"attributes", "Name", "Segment__c"}  # canonical field names


def test_limit_and_offset(org: SalesforceBackend) -> None:
    every = [r["Id"] for r in rows(org, "SELECT Id FROM Account ORDER BY Id")]
    assert [r["Id"] for r in rows(org, "SELECT Id FROM Account ORDER BY Id LIMIT 5")] == every[:5]
    paged = rows(org, "SELECT Id FROM Account ORDER BY Id LIMIT 5 OFFSET 10")
    assert [r["Id"] for r in paged] == every[10:15]
    assert rows(org, "SELECT Id FROM Account LIMIT 0") == []


def test_modstamp_index_agrees_with_a_full_scan(org: SalesforceBackend) -> None:
    moment = sorted(a["SystemModstamp"] for a in accounts(org))[5]
    literal = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    indexed = rows(
        org,
        f"SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp >= {literal} "
        "ORDER BY SystemModstamp, Id LIMIT 12",
    )
    expected = sorted(
        (a["SystemModstamp"], a["Id"]) for a in accounts(org) if a["SystemModstamp"] >= moment
    )[:12]
    assert [r["Id"] for r in indexed] == [i for _, i in expected]


# -- COUNT ----------------------------------------------------------------------------------


def test_count_forms(org: SalesforceBackend) -> None:
    compiled, found = org.run_query("SELECT COUNT() FROM Account WHERE CSAT__c > 4", False)
    assert compiled.count == "count"
    assert len(found) == sum(1 for a in accounts(org) if (a["CSAT__c"] or 0) > 4)
    compiled, found = org.run_query("SELECT COUNT(CSAT__c) FROM Account", False)
    assert compiled.count == "aggregate"
    assert compiled.aggregate(found) == sum(1 for a in accounts(org) if a["CSAT__c"] is not None)
    assert refused(org, "SELECT COUNT(), Name FROM Account").code == "MALFORMED_QUERY"
    assert refused(org, "SELECT Name, COUNT(Id) FROM Account").code == "MALFORMED_QUERY"


# -- relationship fields --------------------------------------------------------------------


def test_parent_fields_render_nested(org: SalesforceBackend) -> None:
    users = {u["Id"]: u["Name"] for u in org.records("User")}
    row = rows(org, "SELECT Name, Owner.Name, Owner.Email FROM Account LIMIT 1")[0]
    assert row["Owner"]["attributes"]["type"] == "User"
    assert row["Owner"]["Name"] in users.values()
    assert set(row["Owner"]) == {"attributes", "Name", "Email"}
    case = rows(org, "SELECT Id, Account.Name, Account.Owner.Name FROM Case LIMIT 1")[0]
    assert case["Account"]["Name"] and case["Account"]["Owner"]["Name"] in users.values()
    survey = rows(org, "SELECT Score__c, Account__r.Name FROM Survey_Response__c LIMIT 1")[0]
    assert isinstance(survey["Score__c"], float) and survey["Account__r"]["Name"]


def test_null_parent_renders_null(org: SalesforceBackend) -> None:
    case_id = org.create_record("Case", Subject="orphan")
    row = rows(org, f"SELECT Id, Account.Name FROM Case WHERE Id = '{case_id}'")[0]
    assert row["Account"] is None


def test_filter_on_a_parent_field(org: SalesforceBackend) -> None:
    by_account = {a["Id"]: a["Segment__c"] for a in accounts(org)}
    expected = {c["Id"] for c in org.records("Case") if by_account.get(c["AccountId"]) == "SMB"}
    found = rows(org, "SELECT Id FROM Case WHERE Account.Segment__c = 'SMB'")
    assert {r["Id"] for r in found} == expected


# -- refusals -------------------------------------------------------------------------------


def test_unknown_field_reports_position_and_entity(org: SalesforceBackend) -> None:
    error = refused(org, "SELECT Foo FROM Account")
    assert error.code == "INVALID_FIELD"
    expected = "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\n"
    assert error.message.startswith(expected)
    assert "No such column 'Foo' on entity 'Account'" in error.message
    error = refused(org, "SELECT Owner.Foo FROM Account")
    assert "No such column 'Foo' on entity 'User'" in error.message
    error = refused(org, "SELECT Nobody.Name FROM Account")
    assert "Didn't understand relationship 'Nobody'" in error.message


def test_unknown_object(org: SalesforceBackend) -> None:
    error = refused(org, "SELECT Id FROM Opportunity")
    assert error.code == "INVALID_TYPE"
    assert "sObject type 'Opportunity' is not supported." in error.message


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Segment__c, COUNT(Id) FROM Account GROUP BY Segment__c",
        "SELECT Id, (SELECT Id FROM Cases) FROM Account",
        "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Case)",
        "SELECT Id FROM Account WHERE CreatedDate = TODAY",
        "SELECT Id FROM Account WHERE CreatedDate > LAST_N_DAYS:7",
        "SELECT a.Id FROM Account a",
        "SELECT FIELDS(ALL) FROM Account LIMIT 1",
        "SELECT Id FROM Account FOR UPDATE",
        "SELECT Id FROM Account WITH SECURITY_ENFORCED",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account LIMIT 1.5",
        "SELECT Id FROM Account WHERE Name IN ()",
        "SELECT Name, Name FROM Account",
        "DELETE FROM Account",
    ],
)
def test_unsupported_syntax_is_malformed(org: SalesforceBackend, soql: str) -> None:
    error = refused(org, soql)
    assert error.code == "MALFORMED_QUERY", error.message
    assert "ERROR at Row:" in error.message


def test_keywords_and_names_are_case_insensitive() -> None:
    query = parse(
        "select ID, name from ACCOUNT where NAME like 'a%' order by name desc nulls "
        "last limit 3 offset 1"
    )
    assert query.sobject == "ACCOUNT" and query.limit == 3 and query.offset == 1
    assert query.order_by[0].descending and not query.order_by[0].nulls_first


def test_error_rows_count_lines() -> None:
    with pytest.raises(SoqlError) as info:
        parse("SELECT Id\nFROM Account\nWHERE Name = 'a' AND Name = 'b' OR Name = 'c'")
    assert "ERROR at Row:3:Column:" in info.value.message
