"""``expand=renderedFields``: field values as Jira renders them for its own pages.

Jira answers ``renderedFields`` with one entry per field in ``fields``: HTML for rich
text (the description and comment bodies, wiki markup rendered; single-line text custom
fields HTML-escaped, the plain-text renderer), dates and times in Jira's display format
in the user's time zone (``05/Jul/25 3:12 PM``, ``05/Jul/25``), time-tracking values as
durations (``1w 2d 3h``, 8-hour days and 5-day weeks, Jira's defaults), and ``null`` for
every other field (summary, status, users, options, numbers...). The renderer here covers
what the sandbox stores: paragraphs and line breaks, every character escaped.
"""

from __future__ import annotations

import html
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from connectors.sandbox.jira.fields import FieldSelection
from connectors.sandbox.world import JiraIssue

if TYPE_CHECKING:
    from connectors.sandbox.jira.render import Renderer

#: Custom field types Jira renders as (escaped) text.
_TEXT_TYPES = frozenset({"com.atlassian.jira.plugin.system.customfieldtypes:textfield"})
_DATETIME_FIELDS = ("created", "updated", "resolutiondate")
_DURATION_FIELDS = ("timeoriginalestimate", "timeestimate")
#: Jira's default time-tracking units (jira.timetracking.hours.per.day / days.per.week).
_UNITS = (("w", 5 * 8 * 3600), ("d", 8 * 3600), ("h", 3600), ("m", 60))


def wiki_html(text: str) -> str:
    """Wiki text as Jira's renderer writes it: ``<p>`` per paragraph, ``<br/>`` per line
    break, every character escaped (the sandbox stores no other markup)."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(
        "<p>" + "<br/>\n".join(html.escape(line, quote=False) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def display_time(moment: datetime, zone: tzinfo) -> str:
    """Jira's complete date-time format (``dd/MMM/yy h:mm a``) in the user's zone."""
    local = moment.astimezone(zone)
    hour = local.hour % 12 or 12
    return f"{local:%d/%b/%y} {hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"


def display_day(value: date) -> str:
    """Jira's day format (``dd/MMM/yy``)."""
    return f"{value:%d/%b/%y}"


def duration(seconds: int) -> str:
    """A time-tracking value as Jira shows it: ``1w 2d 3h 30m`` (``0m`` for none)."""
    parts: list[str] = []
    rest = max(0, int(seconds))
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0m"


def _rich(renderer: Renderer, value: Any) -> str | None:
    text = renderer.rich_text(value)
    if text is None:
        return None
    if isinstance(text, dict):  # v3 answers ADF; the HTML comes from its text
        # Imported here: render.py imports this module to expand issues.
        from connectors.sandbox.jira.render import adf_text

        text = adf_text(text)
    return wiki_html(str(text))


def _comments(renderer: Renderer, issue: JiraIssue) -> dict[str, Any]:
    backend = renderer.backend
    page = renderer.comments_page(issue, 0, 5000, newest_first=False)
    stored = {str(c.id): c for c in backend.comments.get(issue.key, [])}
    for doc in page["comments"]:
        comment = stored[doc["id"]]
        doc["body"] = _rich(renderer, comment.body) or ""
        doc["created"] = display_time(comment.created, backend.zone)
        doc["updated"] = display_time(comment.updated, backend.zone)
    return page


def rendered_value(renderer: Renderer, issue: JiraIssue, field_id: str) -> Any:
    """One field's entry in ``renderedFields`` (None where Jira renders nothing)."""
    zone = renderer.backend.zone
    if field_id == "description":
        return _rich(renderer, issue.description)
    if field_id == "comment":
        return _comments(renderer, issue)
    if field_id in _DATETIME_FIELDS:
        moment = getattr(issue, "resolved" if field_id == "resolutiondate" else field_id)
        return display_time(moment, zone) if moment else None
    if field_id == "duedate":
        return display_day(issue.due) if issue.due else None
    if field_id in _DURATION_FIELDS:
        return duration(issue.estimate_seconds) if issue.estimate_seconds is not None else None
    schema = renderer.backend.site_fields.by_id[field_id].schema or {}
    if schema.get("custom") in _TEXT_TYPES:
        value = renderer.field(issue, field_id)
        return html.escape(str(value), quote=False) if value is not None else None
    return None


def rendered_fields(
    renderer: Renderer, issue: JiraIssue, selection: FieldSelection
) -> dict[str, Any]:
    """``renderedFields`` of one issue: an entry for each selected field it carries."""
    return {
        fid: rendered_value(renderer, issue, fid)
        for fid in selection.ids
        if renderer.shown(issue, fid)
    }
