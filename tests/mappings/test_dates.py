"""Vendor timestamps and dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mappings.dates import iso_date, iso_datetime, parse_date, parse_datetime, utc_date


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
