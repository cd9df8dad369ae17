"""Property values as HubSpot stores and answers them (strings), checked by type."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import Any

from connectors.sandbox.hubspot.schema import Prop


def iso(ms: int) -> str:
    """Epoch ms as HubSpot writes a datetime: ``2026-11-21T10:00:00.123Z``."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def as_millis(value: Any) -> int | None:
    """Epoch ms of a datetime/date value given as ms or ISO text (None: unreadable)."""
    return _millis(str(value).strip())


@functools.lru_cache(maxsize=1 << 16)
def _millis(text: str) -> int | None:
    # Cached: a search sorts and filters every record on one date each page.
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def stored(prop: Prop, value: Any) -> tuple[str | None, str | None]:
    """(the value as stored, or an error message) for a write of ``value`` to ``prop``."""
    if value is None or value == "":
        return None, None
    if isinstance(value, dict | list):
        return None, f"{value!r} is not a valid value for {prop.name}"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if prop.type == "number":
        try:
            float(text)
        except ValueError:
            return None, f"{text} was not a valid number."
        return text, None
    if prop.type == "bool":
        if text.lower() not in ("true", "false"):
            return None, f"{text} was not a valid boolean (true or false)."
        return text.lower(), None
    if prop.type == "datetime":
        ms = as_millis(text)
        return (iso(ms), None) if ms is not None else (None, f"{text} was not a valid datetime.")
    if prop.type == "date":
        ms = as_millis(text)
        if ms is None:
            return None, f"{text} was not a valid date."
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        if (moment.hour, moment.minute, moment.second) != (0, 0, 0):
            return None, f"{text} is not at midnight UTC: a date property takes whole days."
        return moment.date().isoformat(), None
    enumerated = prop.type == "enumeration" and prop.field_type != "checkbox"
    if enumerated and prop.options and text not in prop.options:
        return None, f"{text} was not one of the allowed options: {', '.join(prop.options)}"
    if len(text) > 65_536:
        return None, f"{prop.name} is longer than 65536 characters."
    return text, None
