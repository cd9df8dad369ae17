"""Reading the remotes' timestamps (no I/O).

Jira and Salesforce write a moment as ISO 8601 with milliseconds and the zone as
``+0000`` (``2013-05-20T20:49:32.000+0000``); ``Z`` and ``+00:00`` are read too.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_timestamp(text: str) -> datetime:
    """``text`` as an aware UTC datetime (no zone: UTC); ValueError when it is not one."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = value[:-2] + ":" + value[-2:]
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
