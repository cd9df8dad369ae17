"""Plain-text English a customer or an engineer can read: numbers, summaries, comments."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from mappings.model import Customer, FlagLevel, Forecast, Milestone, SatisfactionFlag

__all__ = [
    "LEVEL_WORDS",
    "MARKER_PHRASE",
    "FlagChange",
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
    "wiki_escape",
]

LEVEL_WORDS: dict[FlagLevel, str] = {"ok": "OK", "watch": "on watch", "at_risk": "at risk"}
MARKER_PREFIX = "[jira-crm-sync:flag:"
#: The words of :data:`MARKER_PREFIX` as Jira's text index splits them (punctuation is not
#: indexed): a phrase search for them finds every comment that carries a marker.
MARKER_PHRASE = "jira crm sync flag"

#: What Jira's wiki renderer takes a backslash before as an escape (atlassian-renderer's
#: BackslashEscapeRendererComponent): each of these is written ``\X`` in CRM text.
_WIKI_SPECIAL = frozenset("!#[]^~+?%{}()*_-|@")
#: Schemes the renderer turns into links by themselves (``https://x`` with no brackets).
_AUTO_LINK = re.compile(r"(?i)\b(https?|ftps?|file|mailto|news|nntp|irc|sftp|ssh|telnet):")
_ZERO_WIDTH_SPACE = "\u200b"
_UNESCAPE = re.compile(r"\\([!#\[\]^~+?%{}()*_\-|@])")
#: Per line of a comment naming several customers: name and reasons cut to these.
_NAME_CHARS = 200
_REASON_CHARS = 300


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


def wiki_escape(text: str) -> str:
    """``text`` (a CRM value: a name, a reason, an id) as Jira wiki markup that shows exactly
    that text and nothing more: no link, mention, macro, colour, image or table.

    Comment bodies are wiki markup on API v2 (and on Server/DC, which has no v3), so an
    account named ``[click|https://evil.example] {color:red}@admin{color}`` would otherwise
    plant a link in a comment the integration user posts. Every character the renderer
    reads as markup is backslash-escaped (the set atlassian-renderer's ``escapeWiki``
    escapes, plus ``#``); line breaks and control characters become spaces, so nothing can
    start a heading, list or table line; a backslash is shown as U+29F5 ``⧵`` (``\\`` is a
    line break, and ``\\`` before an escaped character would undo its escape); and a URL
    scheme gets a zero-width space after its colon, which the renderer's automatic links
    do not match (the text reads the same).
    """
    out: list[str] = []
    for char in text:
        if char in _WIKI_SPECIAL:
            out.append("\\" + char)
        elif char == "\\":
            out.append("\u29f5")
        elif char < " " or char in "\x7f\u2028\u2029":
            out.append(" ")
        else:
            out.append(char)
    escaped = "".join(out)
    if ":" in escaped:
        escaped = _AUTO_LINK.sub(lambda m: m.group(0) + _ZERO_WIDTH_SPACE, escaped)
    return escaped


def flag_marker(customer_id: str, level: FlagLevel) -> str:
    """The machine-findable marker a flag comment carries (as text, before markup)."""
    return f"{MARKER_PREFIX}{customer_id}:{level}]"


def _marker_markup(customer_id: str, level: FlagLevel) -> str:
    """The marker as a comment body holds it: brackets escaped so Jira shows it as text, not
    as a link; the prefix stays verbatim, so the body still contains ``[jira-crm-sync:flag:``."""
    return f"\\{MARKER_PREFIX}{wiki_escape(customer_id)}:{level}\\]"


def parse_marker(text: str) -> list[tuple[str, str]]:
    """Every (customer id, level) marker in a comment body, in order: plain markers (older
    comments) and wiki-escaped ones (``\\[...\\]``, and however Jira re-escapes them)."""
    if "\\" in text:
        text = _UNESCAPE.sub(r"\1", text)
    found: list[tuple[str, str]] = []
    start = text.find(MARKER_PREFIX)
    while start != -1:
        end = text.find("]", start)
        if end == -1:
            break
        customer_id, _, level = text[start + len(MARKER_PREFIX) : end].rpartition(":")
        if customer_id and level in LEVEL_WORDS:
            found.append((customer_id, level))
        start = text.find(MARKER_PREFIX, end)
    return found


#: One change a flag comment announces: the customer (None: only its id is known), its
#: flag now, and since when it holds (None: not known).
FlagChange = tuple[Customer | None, SatisfactionFlag, date | None]


def _change_words(customer: Customer | None, flag: SatisfactionFlag, limit: int) -> str:
    """``Acme is at risk: CSAT 2.8/5 below 3.5`` with the CRM text escaped."""
    name = wiki_escape(truncate(customer.name if customer is not None else flag.customer_id, limit))
    if flag.level == "ok":
        return f"{name} is no longer flagged: satisfaction is OK"
    words = f"{name} is {LEVEL_WORDS[flag.level]}"
    if flag.reasons:
        words += f": {wiki_escape(truncate(join_reasons(flag.reasons), _REASON_CHARS))}"
    return words


def _since(since: date | None) -> str:
    return f" (since {since.isoformat()})" if since is not None else ""


def flag_comment(changes: Sequence[FlagChange]) -> str:
    """The one comment posted on an item when the levels of some of its customers change:
    a sentence for one customer, a list for several, then one marker per customer (so each
    level change stays findable on its own). Every CRM value is wiki-escaped."""
    if not changes:
        raise ValueError("a flag comment announces at least one change")
    markers = " ".join(_marker_markup(flag.customer_id, flag.level) for _, flag, _ in changes)
    if len(changes) == 1:
        customer, flag, since = changes[0]
        return f"Customer {_change_words(customer, flag, 255)}.{_since(since)} {markers}"
    lines = [f"Customer satisfaction changed for {len(changes)} customers of this work:"]
    for customer, flag, since in changes:
        lines.append(f"* {_change_words(customer, flag, _NAME_CHARS)}{_since(since)}.")
    lines.append(markers)
    return "\n".join(lines)
