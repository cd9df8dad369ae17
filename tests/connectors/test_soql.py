"""SOQL quoting and clause builders (pure; the sandbox round trip is in test_salesforce_pull)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors import soql


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "'plain'"),
        ("O'Brien", r"'O\'Brien'"),
        ("back\\slash", r"'back\\slash'"),
        ('say "hi"', r"'say \"hi\"'"),
        ("line\nbreak\ttab", r"'line\nbreak\ttab'"),
        ("北京客户", "'北京客户'"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (42, "42"),
        (3.5, "3.5"),
        (Decimal("4.50"), "4.50"),
        (date(2026, 11, 21), "2026-11-21"),
        (["a", "b'"], r"('a','b\'')"),
    ],
)
def test_quote(value: object, expected: str) -> None:
    assert soql.quote(value) == expected


def test_datetimes_are_utc_literals_whole_seconds() -> None:
    shanghai = timezone(timedelta(hours=8))
    moment = datetime(2026, 11, 21, 18, 0, 0, 999_000, tzinfo=shanghai)
    assert soql.quote(moment) == "2026-11-21T10:00:00Z"
    assert soql.quote([moment]) == "(2026-11-21T10:00:00Z)"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        soql.quote(datetime(2026, 11, 21, 10, 0))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [], object(), b"bytes"])
def test_unquotable_values_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        soql.quote(value)


def test_injection_stays_inside_the_literal() -> None:
    hostile = "x' OR Name != 'y"
    clause = soql.compare("Name", "=", hostile)
    assert clause == r"Name = 'x\' OR Name != \'y'"
    # Unescaped quotes inside the literal would end it early: there are none.
    body = clause[len("Name = '") : -1]
    assert all(body[i - 1] == "\\" for i, ch in enumerate(body) if ch == "'")


@pytest.mark.parametrize(
    "name", ["Name; DELETE", "Name'", "1Field", "", "Owner..Name", "a b", "Name--"]
)
def test_identifiers_are_checked(name: str) -> None:
    with pytest.raises(ValueError):
        soql.identifier(name)


def test_identifier_accepts_api_names() -> None:
    for name in ("Id", "CSAT__c", "ns__Score__c", "Owner.Name", "Account__r.Name"):
        assert soql.identifier(name) == name


def test_select_builds_a_bounded_ordered_query() -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = soql.select(
        "Account",
        ["Id", "Name", "id", "SystemModstamp"],
        where=soql.and_(soql.compare("SystemModstamp", ">=", since), None, soql.in_("Id", ["1"])),
        order_by=["SystemModstamp", "Id DESC"],
        limit=10,
    )
    assert text == (
        "SELECT Id, Name, SystemModstamp FROM Account "
        "WHERE (SystemModstamp >= 2026-01-02T03:04:05Z) AND (Id IN ('1')) "
        "ORDER BY SystemModstamp, Id DESC LIMIT 10"
    )


def test_builders_refuse_bad_input() -> None:
    with pytest.raises(ValueError):
        soql.compare("Name", "LIKE", "x")
    with pytest.raises(ValueError):
        soql.select("Account", [])
    with pytest.raises(ValueError):
        soql.select("Account", ["Id"], order_by=["Id; DROP"])
    assert soql.and_(None, "") is None
    assert soql.and_("A = 1") == "A = 1"


def test_render_quotes_every_field_and_forbids_literal() -> None:
    assert soql.render("Name = {} AND Id = {id}", "a'b", id="001") == (
        r"Name = 'a\'b' AND Id = '001'"
    )
    assert soql.render("Name LIKE '{:like}%'", "50%_off") == r"Name LIKE '50\%\_off%'"
    with pytest.raises(ValueError, match="literal"):
        soql.render("Name = {:literal}", "x' OR Id != '")
