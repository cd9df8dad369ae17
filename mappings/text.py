"""Plain-text English a customer or an engineer can read: numbers, summaries, comments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from mappings.model import Customer, FlagLevel, Forecast, Milestone, SatisfactionFlag

__all__ = [
    "LEVEL_WORDS",
    "covered_items",
    "flag_comment",
    "flag_marker",
    "join_reasons",
    "number",
    "parse_marker",
    "percent",
    "plural",
    "progress_summary",
    "truncate",
]

LEVEL_WORDS: dict[FlagLevel, str] = {"ok": "OK", "watch": "on watch", "at_risk": "at risk"}
MARKER_PREFIX = "[jira-crm-sync:flag:"


def number(value: float) -> str:
    """A score or threshold: one decimal at least, two at most (2.8, 4.0, 3.45)."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def percent(value: float) -> str:
    """A percentage without a needless ``.0`` (75, 62.5)."""
    rounded = round(value, 1)
    return f"{rounded:.0f}" if rounded == int(rounded) else f"{rounded:.1f}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 item``, ``2 items``."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def truncate(text: str, limit: int) -> str:
    """Cut to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def join_reasons(reasons: Sequence[str]) -> str:
    """Reasons as one line."""
    return "; ".join(reasons)


def _milestone_sentence(milestone: Milestone) -> str:
    due = milestone.release_date.isoformat()
    when = f"was due {due} and is not released yet" if milestone.overdue else f"is due {due}"
    return (
        f"Next milestone {milestone.name} {when}; "
        f"{milestone.items_done} of {plural(milestone.items_total, 'item')} "
        f"done ({percent(milestone.percent_complete)}%)."
    )


def _forecast_sentence(forecast: Forecast) -> str:
    if forecast.date is not None:
        return f"At the recent pace the remaining work should be done by {forecast.date}."
    if forecast.note == "all work done":
        return "All work is done."
    if forecast.note == "no work items":
        return ""
    return f"No completion forecast yet ({forecast.note})."


def covered_items(
    total: int, project_total: int | None, project_name: str, customer_name: str | None
) -> str | None:
    """What a pair's numbers count when it is not the whole project ("16 of the 40 items of
    Orion Rollout linked to Acme Corp"); None when they count the whole project (or the
    project's size is not known).

    Several accounts can share a project (the crm_field rule links its unattributed items
    to each of them): without this a shared subset reads as the project's own progress.
    """
    if project_total is None or total == 0 or total >= project_total:
        return None
    whom = f" linked to {customer_name}" if customer_name else " linked"
    return f"{total} of the {project_total} items of {project_name}{whom}"


def progress_summary(
    *,
    project_name: str,
    total: int,
    done: int,
    in_progress: int,
    overdue: int,
    blocked: int,
    percent_complete: float,
    milestone: Milestone | None,
    forecast: Forecast,
    health: str,
    health_reasons: Sequence[str],
    customer_name: str | None = None,
    project_total: int | None = None,
) -> str:
    """A short plain-text progress summary in English.

    ``project_total`` is the number of counted items of the whole project: when the pair
    counts fewer, the summary opens with what its numbers cover (:func:`covered_items`).
    """
    if total == 0:
        return f"{project_name}: no work items are linked yet."
    covered = covered_items(total, project_total, project_name, customer_name)
    if covered is not None:
        opening = (
            f"{covered}: {percent(percent_complete)}% complete, "
            f"{done} done and {in_progress} in progress."
        )
    else:
        opening = (
            f"{project_name}: {percent(percent_complete)}% complete, "
            f"{done} of {plural(total, 'item')} done and {in_progress} in progress."
        )
    parts = [opening]
    concerns = []
    if overdue:
        concerns.append(f"{overdue} overdue")
    if blocked:
        concerns.append(f"{blocked} blocked")
    if concerns:
        parts.append(f"Open items: {' and '.join(concerns)}.")
    if milestone is not None:
        parts.append(_milestone_sentence(milestone))
    forecast_text = _forecast_sentence(forecast)
    if forecast_text:
        parts.append(forecast_text)
    if health_reasons:
        parts.append(f"Status {health.capitalize()}: {join_reasons(health_reasons)}.")
    else:
        parts.append(f"Status {health.capitalize()}: on track.")
    return " ".join(parts)


def flag_marker(customer_id: str, level: FlagLevel) -> str:
    """The machine-findable marker a flag comment carries."""
    return f"{MARKER_PREFIX}{customer_id}:{level}]"


def parse_marker(text: str) -> list[tuple[str, str]]:
    """Every (customer id, level) marker in a comment body, in order."""
    found: list[tuple[str, str]] = []
    start = text.find(MARKER_PREFIX)
    while start != -1:
        end = text.find("]", start)
        if end == -1:
            break
        customer_id, _, level = text[start + len(MARKER_PREFIX) : end].partition(":")
        if customer_id and level in LEVEL_WORDS:
            found.append((customer_id, level))
        start = text.find(MARKER_PREFIX, end)
    return found


def flag_comment(customer: Customer | None, flag: SatisfactionFlag, since: date | None) -> str:
    """The comment posted on linked work when a customer's level changes."""
    name = customer.name if customer is not None else flag.customer_id
    words = LEVEL_WORDS[flag.level]
    if flag.level == "ok":
        head = f"Customer {name} is no longer flagged: satisfaction is OK."
    else:
        head = f"Customer {name} is {words}"
        head += f": {join_reasons(flag.reasons)}." if flag.reasons else "."
    when = f" (since {since.isoformat()})" if since is not None else ""
    return f"{head}{when} {flag_marker(flag.customer_id, flag.level)}"
