"""When `serve` runs a cycle: ``[schedule] every`` is an interval ("90s", "15m", "1h")
or a cron expression ("*/15 * * * *", evaluated in UTC)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScheduleError(ValueError):
    """``[schedule] every`` is neither an interval nor a cron expression."""


@dataclass(frozen=True)
class Schedule:
    """A parsed ``[schedule] every``."""

    text: str
    interval: timedelta | None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse an interval or a five-field cron expression (ScheduleError with the fix)."""
        found = _INTERVAL.match(text)
        if found:
            seconds = int(found.group(1)) * _UNITS[found.group(2)]
            if seconds < 1:
                raise ScheduleError("[schedule] every: an interval must be at least 1s")
            return cls(text, timedelta(seconds=seconds))
        if len(text.split()) != 5 or not croniter.is_valid(text):
            raise ScheduleError(
                f'[schedule] every = {text!r} is neither an interval (like "15m", "1h", '
                '"90s") nor a five-field cron expression (like "*/15 * * * *")'
            )
        return cls(text, None)

    def next_after(self, moment: datetime) -> datetime:
        """The next time a cycle starts after ``moment`` (aware, UTC)."""
        if self.interval is not None:
            return moment + self.interval
        following = croniter(self.text, moment.astimezone(UTC)).get_next(datetime)
        return following.replace(tzinfo=UTC) if following.tzinfo is None else following
