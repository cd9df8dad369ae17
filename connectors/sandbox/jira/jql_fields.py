"""The searchable fields of the JQL subset: how each reads an issue and accepts values.

Zone-less dates are read in the user's time zone (minute precision, as Jira's formats
have no seconds), a bare integer is epoch milliseconds, and relative periods (``-5d``,
``-1w 2d``) count back from now. Real Jira fields outside the subset get a clear 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Protocol

from connectors.sandbox import schema
from connectors.sandbox.jira.fields import PRIORITIES, STATUS_CATEGORIES
from connectors.sandbox.jira.jql import (
    JqlError,
)
from connectors.sandbox.world import JiraIssue

Predicate = Callable[[JiraIssue], bool]


class Catalog(Protocol):
    """What compiling needs from the backend: the clock, the user's zone, lookups."""

    zone: tzinfo

    def now(self) -> datetime:
        """The current time (aware)."""
        ...

    def resolve_project(self, value: str) -> str | None:
        """A project key for a key (any case), id or name; None when unknown."""
        ...

    def resolve_issue(self, value: str) -> str | None:
        """An issue key for a key or id; None when unknown."""
        ...

    def comment_texts(self, key: str) -> list[str]:
        """The plain text of each comment on an issue, oldest first."""
        ...


# -- value resolution ---------------------------------------------------------------------

_DATE = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?$")
_PERIOD = re.compile(r"^([+-]?)\s*((?:\d+\s*[wdhm]\s*)+)$", re.IGNORECASE)
_PERIOD_PART = re.compile(r"(\d+)\s*([wdhm])", re.IGNORECASE)
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60}


def parse_date(text: str, field: str, catalog: Catalog) -> datetime:
    """A JQL date literal as an aware UTC datetime."""
    value = text.strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    match = _DATE.match(value)
    if match:
        year, month, day, hour, minute = match.groups()
        try:
            local = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                tzinfo=catalog.zone,
            )
        except ValueError:
            pass
        else:
            return local.astimezone(UTC)
    match = _PERIOD.match(value)
    if match:
        seconds = sum(int(n) * _UNITS[u.lower()] for n, u in _PERIOD_PART.findall(match[2]))
        sign = -1 if match[1] == "-" else 1
        return catalog.now().astimezone(UTC) + timedelta(seconds=sign * seconds)
    raise JqlError(
        f"Date value '{text}' for field '{field}' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
        "format e.g. '-5d', '4w 2d'."
    )


def _not_found(value: str, field: str) -> JqlError:
    return JqlError(f"The value '{value}' does not exist for the field '{field}'.")


def _from_table(table: dict[str, str]) -> Callable[[str, str, Catalog], Hashable]:
    lowered = {name.lower(): canonical for name, canonical in table.items()}

    def resolve(text: str, field: str, catalog: Catalog) -> Hashable:
        found = lowered.get(text.lower())
        if found is None:
            raise _not_found(text, field)
        return found

    return resolve


def _project(text: str, field: str, catalog: Catalog) -> Hashable:
    key = catalog.resolve_project(text)
    if key is None:
        raise _not_found(text, field)
    return key


def _issue(text: str, field: str, catalog: Catalog) -> Hashable:
    key = catalog.resolve_issue(text)
    if key is None:
        raise JqlError(f"An issue with key '{text}' does not exist for field '{field}'.")
    return key


def _text(text: str, field: str, catalog: Catalog) -> Hashable:
    return text


def _number(text: str, field: str, catalog: Catalog) -> Hashable:
    try:
        return float(text)
    except ValueError:
        raise JqlError(f"The value '{text}' is not a valid number for field '{field}'.") from None


def _date(text: str, field: str, catalog: Catalog) -> Hashable:
    return parse_date(text, field, catalog)


_STATUS_NAMES = {name: name for name in schema.JIRA_STATUSES} | {
    status_id: name for name, (status_id, _) in schema.JIRA_STATUSES.items()
}
_CATEGORY_NAMES = (
    {key: key for key in STATUS_CATEGORIES}
    | {name: key for key, (_, name, _) in STATUS_CATEGORIES.items()}
    | {str(cat_id): key for key, (cat_id, _, _) in STATUS_CATEGORIES.items()}
)
_TYPE_NAMES = {name: name for name in schema.JIRA_ISSUE_TYPES} | {
    type_id: name for name, type_id in schema.JIRA_ISSUE_TYPES.items()
}
_PRIORITY_NAMES = {name: name for name in PRIORITIES} | {pid: n for n, pid in PRIORITIES.items()}
_CATEGORY_OF = {name: category for name, (_, category) in schema.JIRA_STATUSES.items()}


# -- the field table ----------------------------------------------------------------------

SINGLE_OPS = frozenset({"=", "!=", "in", "not in", "is", "is not"})
RANGE_OPS = SINGLE_OPS | {">", ">=", "<", "<="}
TEXT_OPS = SINGLE_OPS | {"~", "!~"}


@dataclass(frozen=True, slots=True)
class JqlField:
    """How one searchable field reads an issue and accepts values."""

    name: str
    get: Callable[[JiraIssue], Any]
    resolve: Callable[[str, str, Catalog], Hashable]
    ops: frozenset[str]
    multi: bool = False  # the value is a list (labels)
    zoned: bool = False  # a date without time: midnight in the user's zone
    #: ``~`` is a word and phrase search (jql_text), not a substring test.
    text: bool = False
    #: Reads through the backend rather than the issue (comments live beside issues).
    source: Callable[[Catalog], Callable[[JiraIssue], Any]] | None = None

    def getter(self, catalog: Catalog) -> Callable[[JiraIssue], Any]:
        """How to read the field for this query."""
        if self.source is not None:
            return self.source(catalog)
        if not self.zoned:
            return self.get
        zone, read = catalog.zone, self.get

        def at_midnight(issue: JiraIssue) -> datetime | None:
            day: date | None = read(issue)
            if day is None:
                return None
            return datetime(day.year, day.month, day.day, tzinfo=zone)

        return at_midnight


PROJECT = JqlField("project", lambda i: i.project_key, _project, SINGLE_OPS)
KEY = JqlField("key", lambda i: i.key, _issue, SINGLE_OPS)
_ACCOUNT = JqlField(schema.JIRA_ACCOUNT_FIELD_NAME, lambda i: i.account_id, _text, TEXT_OPS)
_EPIC = JqlField("Epic Link", lambda i: i.parent_key, _issue, SINGLE_OPS)


def _comments(catalog: Catalog) -> Callable[[JiraIssue], list[str] | None]:
    return lambda issue: catalog.comment_texts(issue.key) or None


_COMMENT = JqlField(
    "comment", lambda i: None, _text, frozenset({"~", "!~"}), text=True, source=_comments
)
FIELDS: dict[str, JqlField] = {
    "project": PROJECT,
    **dict.fromkeys(("key", "issuekey", "id", "issue"), KEY),
    "labels": JqlField("labels", lambda i: i.labels, _text, SINGLE_OPS, multi=True),
    "status": JqlField("status", lambda i: i.status, _from_table(_STATUS_NAMES), SINGLE_OPS),
    "statuscategory": JqlField(
        "statusCategory",
        lambda i: _CATEGORY_OF[i.status],
        _from_table(_CATEGORY_NAMES),
        SINGLE_OPS,
    ),
    **dict.fromkeys(
        ("issuetype", "type"),
        JqlField("issuetype", lambda i: i.issue_type, _from_table(_TYPE_NAMES), SINGLE_OPS),
    ),
    "priority": JqlField(
        "priority", lambda i: i.priority, _from_table(_PRIORITY_NAMES), SINGLE_OPS
    ),
    **dict.fromkeys(
        ("created", "createddate"),
        JqlField("created", lambda i: i.created, _date, RANGE_OPS - {"in", "not in"}),
    ),
    **dict.fromkeys(
        ("updated", "updateddate"),
        JqlField("updated", lambda i: i.updated, _date, RANGE_OPS - {"in", "not in"}),
    ),
    **dict.fromkeys(
        ("resolved", "resolutiondate"),
        JqlField("resolved", lambda i: i.resolved, _date, RANGE_OPS - {"in", "not in"}),
    ),
    **dict.fromkeys(
        ("due", "duedate"),
        JqlField("due", lambda i: i.due, _date, RANGE_OPS - {"in", "not in"}, zoned=True),
    ),
    "parent": JqlField("parent", lambda i: i.parent_key, _issue, SINGLE_OPS),
    "comment": _COMMENT,
    "epic link": _EPIC,
    "cf[10014]": _EPIC,
    "salesforce account": _ACCOUNT,
    "cf[10100]": _ACCOUNT,
    **dict.fromkeys(
        ("story points", "cf[10016]"),
        JqlField(schema.JIRA_STORY_POINTS_FIELD_NAME, lambda i: i.story_points, _number, RANGE_OPS),
    ),
}
#: Real Jira fields the sandbox cannot search by: a clear 400 rather than a wrong answer.
_UNSUPPORTED_FIELDS = frozenset(
    {
        "summary",
        "description",
        "text",
        "assignee",
        "reporter",
        "creator",
        "fixversion",
        "affectedversion",
        "component",
        "resolution",
        "sprint",
        "watcher",
        "votes",
        "environment",
        "originalestimate",
        "remainingestimate",
        "timeoriginalestimate",
        "timeestimate",
        "lastviewed",
        "statuscategorychangeddate",
        "customer tier",
        "customer satisfaction",
        "cf[10200]",
        "cf[10201]",
        "cf[10300]",
    }
)
FUNCTIONS = frozenset(
    {
        "currentuser",
        "now",
        "startofday",
        "endofday",
        "startofweek",
        "endofweek",
        "startofmonth",
        "endofmonth",
        "startofyear",
        "endofyear",
        "membersof",
        "issuehistory",
        "projectsleadbyuser",
        "projectswhereuserhasrole",
        "openSprints".lower(),
        "closedsprints",
        "releasedversions",
        "unreleasedversions",
        "latestreleasedversion",
        "earliestunreleasedversion",
        "linkedissues",
        "votedissues",
        "watchedissues",
        "updatedby",
        "lastlogin",
        "currentlogin",
        "issuesWithRemoteLinksByGlobalId".lower(),
    }
)


def is_known_field(name: str) -> bool:
    """Whether Jira would know this clause name (searchable here or not)."""
    return name.lower() in FIELDS or name.lower() in _UNSUPPORTED_FIELDS


def lookup_field(name: str) -> JqlField:
    """The searchable field for a clause name, or a 400 in Jira's words."""
    field = FIELDS.get(name.lower())
    if field is not None:
        return field
    if name.lower() in _UNSUPPORTED_FIELDS:
        raise JqlError(
            f"Error in the JQL Query: the sandbox does not support searching by '{name}'."
        )
    raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
