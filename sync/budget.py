"""The API budget of a cycle per side, from ``[limits]``, and what to say when it stops one.

A cycle may spend, per side, the per-cycle limit or what is left of the day's, whichever is
less; it reserves that much in the store at its start, so cycles running at once (serve
jobs on several workers) count each other's reservations as spent until they end. When a
side's calls run out the cycle stops cleanly (SPEC section 7): this module names which
budget it was (per cycle, per day, or the remote's own daily limit), how many writes wait
in the outbox, and when the work resumes (the next cycle; 00:00 UTC for the daily budget;
when the remote frees calls of its own limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from sync.config import CRM_NAMES, Config

#: The [limits] keys of each side: (per cycle, per day).
JIRA_SETTINGS = ("jira_calls_per_cycle", "jira_calls_per_day")
CRM_SETTINGS = ("crm_calls_per_cycle", "crm_calls_per_day")

Limit = Literal["per_cycle", "per_day", "remote"]


@dataclass(frozen=True)
class Allowance:
    """What one side may spend this cycle, and which limit sets it."""

    side: str
    per_cycle: int
    per_day: int
    used_today: int  # before this cycle: calls made today, and other running cycles' reservations
    #: The side as people read it (``Jira``), and whose own daily limit the remote keeps.
    name: str = ""
    holder: str = ""
    #: Its [limits] keys: (per cycle, per day).
    settings: tuple[str, str] = JIRA_SETTINGS
    #: When the remote's own daily limit frees calls again, as people read it.
    resets: str = ""

    @property
    def left_today(self) -> int:
        """Calls left of the day's budget when the cycle started."""
        return max(0, self.per_day - self.used_today)

    @property
    def calls(self) -> int:
        """The cycle's budget: the per-cycle limit within what is left of the day."""
        return min(self.per_cycle, self.left_today)

    @property
    def binding(self) -> Limit:
        """The limit that sets :attr:`calls` (per day when the day's rest is the smaller)."""
        return "per_day" if self.left_today <= self.per_cycle else "per_cycle"


def allowances(config: Config, used_today: dict[str, int]) -> dict[str, Allowance]:
    """Each side's allowance for a cycle, given the calls already made today (UTC)."""
    limits, crm = config.limits, config.crm.side
    _, holder, resets = CRM_NAMES.get(config.crm.kind, ("", "the account", ""))
    return {
        "jira": Allowance(
            "jira",
            limits.jira_calls_per_cycle,
            limits.jira_calls_per_day,
            used_today.get("jira", 0),
            "Jira",
            "the site",
            JIRA_SETTINGS,
        ),
        crm: Allowance(
            crm,
            limits.crm_calls_per_cycle,
            limits.crm_calls_per_day,
            used_today.get(crm, 0),
            config.crm.name,
            holder,
            CRM_SETTINGS,
            resets,
        ),
    }


def limits(config: Config) -> dict[str, tuple[int, int]]:
    """Each side's (per cycle, per day) limits of ``[limits]``, as a cycle reserves them
    in the store at its start (sync.store.repo.reserve_calls)."""
    return {side: (a.per_cycle, a.per_day) for side, a in allowances(config, {}).items()}


def next_midnight(now: datetime) -> datetime:
    """00:00 UTC after ``now``: when the daily budget (counted per UTC day) starts again."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=UTC)


def left_today(given: dict[str, Allowance], calls: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Calls left of each side's daily budget after this cycle's ``calls``."""
    return {
        side: max(0, a.left_today - int((calls.get(side) or {}).get("total", 0)))
        for side, a in given.items()
    }


def state(given: dict[str, Allowance], calls: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``budget`` object of a cycle the budget did not stop."""
    return {"stopped": False, "left_today": left_today(given, calls)}


def stopped(
    side: str,
    given: dict[str, Allowance],
    calls: dict[str, dict[str, Any]],
    *,
    spent: bool,
    queued: int | None,
    stage: str,
    now: datetime,
    reason: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The message and ``budget`` object of a cycle stopped by ``side``'s budget.

    ``spent``: our meter refused the call (our [limits]); otherwise the remote refused it
    (e.g. the CRM's own daily limit for the org), or the connector stopped short of that
    limit for ``reason`` (the usage the remote reported and the reserve kept free)."""
    allowance = given.get(side)
    name = allowance.name if allowance is not None and allowance.name else side
    limit: Limit = allowance.binding if spent and allowance is not None else "remote"
    setting: str | None = None
    allowed: int | None = None
    resumes_at: datetime | None = None
    if limit == "remote":
        holder = allowance.holder if allowance is not None and allowance.holder else "the org"
        what = f"{name}'s own daily API limit for {holder}"
        if reason:
            what += f" ({reason})"
        resets = allowance.resets if allowance is not None and allowance.resets else ""
        resumes = f"when {name} frees calls ({resets})" if resets else f"when {name} frees calls"
    else:
        assert allowance is not None
        per_cycle, per_day = allowance.settings
        setting = per_cycle if limit == "per_cycle" else per_day
        allowed = allowance.per_cycle if limit == "per_cycle" else allowance.per_day
        when = "per cycle" if limit == "per_cycle" else "per day"
        what = f"the {name} API budget {when} ([limits] {setting} = {allowed})"
        if limit == "per_cycle":
            resumes = "next cycle"
        else:
            resumes_at = next_midnight(now)
            resumes = f"at 00:00 UTC ({resumes_at:%Y-%m-%d %H:%MZ}), when the day's budget resets"
    waiting = "" if queued is None else f"; {queued} write(s) left queued"
    message = f"stopped by {what} during the {stage}{waiting}; resumes {resumes}"
    return message, {
        "stopped": True,
        "side": side,
        "limit": limit,
        "setting": setting,
        "allowed": allowed,
        "stage": stage,
        "queued_writes": queued,
        "resumes": resumes,
        "resumes_at": resumes_at.isoformat() if resumes_at else None,
        "left_today": left_today(given, calls),
    }
