"""Date and time parsing for vendor timestamps, tolerant of nulls and garbage.

Jira writes ``2026-09-06T08:13:46.019+0000`` (or ``+08:00``), a CRM as well
``2026-11-20T10:00:00.000+0000`` or ``2026-11-20T10:00:00Z``; dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

__all__ = ["iso_date", "iso_datetime", "parse_date", "parse_datetime", "utc_date"]


def parse_datetime(value: object) -> datetime | None:
    """An aware datetime from a vendor timestamp string; None for null or garbage.

    ``datetime.fromisoformat`` (3.11) reads both vendors' forms, and is cheaper than a cache
    lookup would be. A zone-less timestamp is taken as UTC.
    """
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
    elif isinstance(value, datetime):
        parsed = value
    else:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_date(value: object) -> date | None:
    """A date from ``YYYY-MM-DD`` (a longer timestamp is cut to its date part)."""
    if type(value) is str:
        try:
            return date.fromisoformat(value if len(value) == 10 else value.strip()[:10])
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def utc_date(moment: datetime) -> date:
    """The UTC calendar date of an aware moment (the run's "today")."""
    if moment.tzinfo is None:
        raise ValueError("as-of times must be timezone-aware")
    return moment.astimezone(UTC).date()


def iso_date(value: date | None) -> str | None:
    """``YYYY-MM-DD`` or None."""
    return value.isoformat() if value is not None else None


def iso_datetime(value: datetime | None) -> str | None:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ`` (seconds precision) or None."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
