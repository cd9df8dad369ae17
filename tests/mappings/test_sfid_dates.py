"""Salesforce Id forms and vendor timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.dates import iso_date, iso_datetime, parse_date, parse_datetime, utc_date
from mappings.sfid import canonical_id, checksum

ACME_18 = "001Dn0000000001IAA"
ACME_15 = ACME_18[:15]


def test_checksum_of_a_known_id() -> None:
    # 001Dn000000000 1 -> chunks "001Dn", "00000", "00001": D upper in the first (bit 3 = I).
    assert checksum("001Dn0000000001") == "IAA"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (ACME_18, ACME_18),
        (ACME_15, ACME_18),
        (f"  {ACME_18}\n", ACME_18),
        (ACME_18.lower(), ACME_18),  # case restored from the checksum
        (ACME_18.upper(), ACME_18),
        ("001dn0000000001", "001dn0000000001AAA"),  # a different (lower-case) 15-char Id
    ],
)
def test_canonical_id_normalises_both_forms(raw: str, expected: str) -> None:
    assert canonical_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "not-an-id", "001Dn00000000011", "001Dn0000000001I!A", None, 42]
)
def test_canonical_id_rejects_what_is_not_an_id(raw: object) -> None:
    assert canonical_id(raw) is None


def test_a_checksum_marking_a_digit_upper_case_is_not_an_id() -> None:
    assert canonical_id("000000000000000" + "B" + "AA") is None


@given(
    st.text(
        alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        min_size=15,
        max_size=15,
    )
)
def test_15_and_18_forms_agree_and_18_round_trips(base: str) -> None:
    full = canonical_id(base)
    assert full is not None and full[:15] == base
    assert canonical_id(full) == full
    assert canonical_id(full.lower()) == full
    assert canonical_id(full.upper()) == full


def test_parse_datetime_reads_both_vendor_forms() -> None:
    assert parse_datetime("2026-09-06T08:13:46.019+0000") == datetime(
        2026, 9, 6, 8, 13, 46, 19000, tzinfo=UTC
    )
    plus8 = parse_datetime("2026-09-06T16:13:46.019+08:00")
    assert plus8 == datetime(2026, 9, 6, 8, 13, 46, 19000, tzinfo=UTC)
    assert plus8 is not None and plus8.utcoffset() == timedelta(hours=8)
    assert parse_datetime("2026-11-20T10:00:00.000+0000") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_datetime("2026-11-20T10:00:00") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_datetime(" 2026-11-20T10:00:00Z ") == datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.mark.parametrize("raw", [None, "", "yesterday", 12, {"a": 1}])
def test_parse_datetime_tolerates_garbage(raw: object) -> None:
    assert parse_datetime(raw) is None


def test_parse_date() -> None:
    assert parse_date("2026-12-01") == date(2026, 12, 1)
    assert parse_date("2026-12-01T10:00:00.000+0000") == date(2026, 12, 1)
    assert parse_date(datetime(2026, 12, 1, 23, tzinfo=UTC)) == date(2026, 12, 1)
    assert parse_date(None) is None
    assert parse_date("12/01/2026") is None


def test_utc_date_and_iso_rendering() -> None:
    late_evening_west = datetime(2026, 11, 20, 22, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert utc_date(late_evening_west) == date(2026, 11, 21)
    with pytest.raises(ValueError):
        utc_date(datetime(2026, 11, 21))
    assert iso_date(date(2026, 1, 2)) == "2026-01-02"
    assert iso_date(None) is None
    assert iso_datetime(late_evening_west) == "2026-11-21T03:00:00Z"
    assert iso_datetime(None) is None
