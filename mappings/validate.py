"""What the model can read: every field it reads from a Jira issue, checked by type.

The normalisers are tolerant (a value they cannot use reads as "no value"), so a record
that arrives with a value of the wrong type (a CSAT of ``"high"``, labels that are not a
list) would silently become "no satisfaction data" or "no labels" and stay so. The pull
asks these checks first, at the boundary, and sets such a record aside with the reason
instead of storing it (sync/cycle/pull.py). A key that is absent means "no value" (a field
hidden by a field configuration is left out of the payload); a key present with a value of
the wrong type is a problem. A CRM's records are checked the same way by its connector,
which knows their fields, before it hands them over in the CRM-neutral form.

Each check returns None for a record the model can read, else one line naming the field,
what it holds and what it should hold. Values are quoted short, so a huge or hostile
value never fills a log line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mappings.dates import parse_date, parse_datetime
from mappings.rules import FieldIds

__all__ = ["IssueCheck", "shown"]

_SHOWN = 40


def shown(value: object) -> str:
    """A value as a message shows it: its JSON type, and a short quote of text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value!r}"[: _SHOWN + 12]
    if isinstance(value, str):
        text = value if len(value) <= _SHOWN else value[: _SHOWN - 1] + "…"
        return f"the text {text!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_time(value: object) -> bool:
    return isinstance(value, str) and parse_datetime(value) is not None


def _is_date(value: object) -> bool:
    return isinstance(value, str) and parse_date(value) is not None


class IssueCheck:
    """Checks raw Jira issues (as search returns them) against what the model reads.

    ``names`` maps field ids to the names people know them by, for messages.
    """

    __slots__ = ("_custom", "_names")

    def __init__(self, fields: FieldIds, names: Mapping[str, str] | None = None) -> None:
        self._names = dict(names or {})
        custom: list[tuple[str, str]] = []
        if fields.story_points:
            custom.append((fields.story_points, "number"))
        custom.extend((other, "number") for other in fields.story_points_also)
        if fields.account_link:
            custom.append((fields.account_link, "link"))
        if fields.epic_link:
            custom.append((fields.epic_link, "text"))
        if fields.flag_field:
            custom.append((fields.flag_field, "option"))
        self._custom = tuple(custom)

    def _field(self, name: str) -> str:
        label = self._names.get(name)
        return f"fields.{name} ({label})" if label and label != name else f"fields.{name}"

    def problem(self, issue: Mapping[str, Any]) -> str | None:
        """Why the model cannot read ``issue`` (None: it can)."""
        f = issue.get("fields")
        if not isinstance(f, Mapping):
            return f"fields is {shown(f)}, not an object"
        found = _required(f)
        if found:
            return found
        for name, want in _OPTIONAL:
            if name in f:
                value = f[name]
                if value is not None and not want(value):
                    return f"{self._field(name)} is {shown(value)}, not {_WANTED[name]}"
        for name in ("labels", "fixVersions"):
            found = _list_problem(name, f)
            if found:
                return found
        parent = f.get("parent")
        if parent is not None and not (
            isinstance(parent, Mapping) and isinstance(parent.get("key"), str)
        ):
            return f"fields.parent is {shown(parent)}, not an issue with a key"
        for field_id, kind in self._custom:
            if field_id not in f or f[field_id] is None:
                continue
            value = f[field_id]
            if not _CUSTOM[kind](value):
                return f"{self._field(field_id)} is {shown(value)}, not {_CUSTOM_WANTED[kind]}"
        return None


def _required(f: Mapping[str, Any]) -> str | None:
    updated = f.get("updated")
    if not _is_time(updated):
        return f"fields.updated is {shown(updated)}, not a time"
    status = f.get("status")
    if not isinstance(status, Mapping):
        return f"fields.status is {shown(status)}, not a status"
    name = status.get("name")
    if name is not None and not isinstance(name, str):
        return f"fields.status.name is {shown(name)}, not text"
    category = status.get("statusCategory")
    if category is not None and not (
        isinstance(category, Mapping) and isinstance(category.get("key"), str)
    ):
        return f"fields.status.statusCategory is {shown(category)}, not a category with a key"
    issuetype = f.get("issuetype")
    if not isinstance(issuetype, Mapping):
        return f"fields.issuetype is {shown(issuetype)}, not an issue type"
    for key, want, what in (
        ("name", str, "text"),
        ("subtask", bool, "true or false"),
        ("hierarchyLevel", int, "a whole number"),
    ):
        value = issuetype.get(key)
        if value is not None and (not isinstance(value, want) or (want is int and value is True)):
            return f"fields.issuetype.{key} is {shown(value)}, not {what}"
    project = f.get("project")
    if project is not None and not (
        isinstance(project, Mapping) and isinstance(project.get("key"), str)
    ):
        return f"fields.project is {shown(project)}, not a project with a key"
    return None


def _list_problem(name: str, f: Mapping[str, Any]) -> str | None:
    if name not in f:
        return None  # hidden by a field configuration: no value
    value = f[name]
    if not isinstance(value, list):
        return f"fields.{name} is {shown(value)}, not a list"
    for entry in value:
        if name == "labels":
            if not isinstance(entry, str):
                return f"fields.labels holds {shown(entry)}, not a label"
            continue
        if not isinstance(entry, Mapping) or not isinstance(
            entry.get("name") or entry.get("id"), str
        ):
            return f"fields.fixVersions holds {shown(entry)}, not a version with a name"
        when = entry.get("releaseDate")
        if when is not None and not _is_date(when):
            return f"fields.fixVersions releaseDate is {shown(when)}, not a date"
        for flag in ("released", "archived"):
            held = entry.get(flag)
            if held is not None and not isinstance(held, bool):
                return f"fields.fixVersions {flag} is {shown(held)}, not true or false"
    return None


def _named(value: object) -> bool:
    return isinstance(value, Mapping)


def _seconds(value: object) -> bool:
    return _is_number(value)


_OPTIONAL = (
    ("summary", lambda v: isinstance(v, str)),
    ("created", _is_time),
    ("resolutiondate", _is_time),
    ("statuscategorychangedate", _is_time),
    ("duedate", _is_date),
    ("priority", _named),
    ("assignee", _named),
    ("timeoriginalestimate", _seconds),
    ("timeestimate", _seconds),
)
_WANTED = {
    "summary": "text",
    "created": "a time",
    "resolutiondate": "a time",
    "statuscategorychangedate": "a time",
    "duedate": "a date",
    "priority": "a priority",
    "assignee": "a user",
    "timeoriginalestimate": "a number of seconds",
    "timeestimate": "a number of seconds",
}


def _link(value: object) -> bool:
    if isinstance(value, str | Mapping) or _is_number(value):
        return True
    return isinstance(value, list) and all(isinstance(v, str | Mapping) for v in value)


_CUSTOM = {
    "number": _is_number,
    "link": _link,
    "text": lambda v: isinstance(v, str),
    "option": lambda v: isinstance(v, str | Mapping),
}
_CUSTOM_WANTED = {
    "number": "a number",
    "link": "text or an option",
    "text": "text (an issue key)",
    "option": "text or an option",
}
