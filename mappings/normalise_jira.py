"""Jira issues (raw REST dicts, API v2 or v3, Cloud or Server) to :class:`WorkItem`.

Tolerant by design: any field may be missing or null, custom fields we were not told about
are ignored, and descriptions may be strings (v2) or ADF documents (v3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from mappings.dates import parse_date, parse_datetime
from mappings.model import FixVersion, StatusCategory, WorkItem, new_work_item
from mappings.rules import FieldIds

__all__ = [
    "JiraNormaliser",
    "adf_to_text",
    "canonical_order",
    "index_issues",
    "is_canonical",
    "issue_sort_key",
    "link_value",
    "normalise_issue",
    "normalise_issues",
]

_CATEGORY: dict[str, StatusCategory] = {
    "new": "todo",
    "indeterminate": "in_progress",
    "done": "done",
}
_EMPTY: Mapping[str, Any] = {}
_BLOCK_NODES = frozenset(
    {"paragraph", "heading", "blockquote", "codeBlock", "listItem", "tableRow", "rule", "panel"}
)


def adf_to_text(node: object) -> str:
    """The plain text of an Atlassian Document Format node (or a v2 string, unchanged)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    parts: list[str] = []
    _adf_walk(node, parts)
    return "".join(parts).strip()


def _adf_walk(node: object, parts: list[str]) -> None:
    if isinstance(node, list):
        for child in node:
            _adf_walk(child, parts)
        return
    if not isinstance(node, Mapping):
        return
    kind = node.get("type")
    attrs_raw = node.get("attrs")
    attrs: Mapping[str, Any] = attrs_raw if isinstance(attrs_raw, Mapping) else _EMPTY
    if kind == "text":
        parts.append(str(node.get("text", "")))
    elif kind == "hardBreak":
        parts.append("\n")
    elif kind in ("mention", "emoji", "status", "date", "inlineCard"):
        parts.append(str(attrs.get("text") or attrs.get("shortName") or attrs.get("url") or ""))
    _adf_walk(node.get("content"), parts)
    if kind in _BLOCK_NODES and parts and not parts[-1].endswith("\n"):
        parts.append("\n")


def link_value(value: object) -> str | None:
    """The text of an account-link field value: a string, a select option, or a list's first."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, Mapping):
        return link_value(value.get("value") or value.get("name") or value.get("id"))
    if isinstance(value, list | tuple):
        for entry in value:
            found = link_value(entry)
            if found:
                return found
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def _number(value: object) -> float | None:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)  # type: ignore[arg-type]
    if value is None or kind is bool:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _seconds(value: object) -> int | None:
    if type(value) is int:
        return value if value >= 0 else None
    number = _number(value)
    return None if number is None or number < 0 else int(number)


def _done_at(get: Callable[[str], Any]) -> datetime | None:
    """When a done item entered the done category.

    ``statuscategorychangedate`` (Cloud, recent Data Center) is the time of the last change
    of status category, so for a done item the time it reached done; ``resolutiondate`` is
    only a fallback: many workflows reach Done without setting a resolution (it stays
    null), and one that keeps a resolution across a reopening dates the first resolve.
    """
    moment = get("statuscategorychangedate")
    if moment is not None:
        found = parse_datetime(moment)
        if found is not None:
            return found
    resolution = get("resolutiondate")
    return None if resolution is None else parse_datetime(resolution)


def _is_epic_type(issuetype: Mapping[str, Any]) -> bool:
    """Epic by hierarchy level (Cloud: 1) when given, else by name (an older Server's
    issue types have no ``hierarchyLevel``)."""
    level = issuetype.get("hierarchyLevel")
    if level is not None:
        return level == 1
    name = issuetype.get("name")
    return name == "Epic" or (isinstance(name, str) and name.lower() == "epic")


class JiraNormaliser:
    """Normalises issues of one pull, sharing parsed fix versions between them."""

    __slots__ = (
        "_account",
        "_epic_link",
        "_labels",
        "_points",
        "_points_also",
        "_singles",
        "_version_sets",
        "_versions",
    )

    def __init__(self, fields: FieldIds) -> None:
        self._account = fields.account_link
        self._points = fields.story_points
        self._points_also = fields.story_points_also
        self._epic_link = fields.epic_link
        self._versions: dict[tuple[Any, ...], FixVersion] = {}
        # Label and version combinations repeat: one shared tuple each keeps the model
        # small (and the garbage collector's walks short).
        self._labels: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._version_sets: dict[tuple[FixVersion, ...], tuple[FixVersion, ...]] = {}
        self._singles: dict[tuple[Any, ...], tuple[FixVersion, ...]] = {}

    def _fix_versions(self, raw: list[Any]) -> tuple[FixVersion, ...]:
        if len(raw) == 1 and type(raw[0]) is dict:
            # The common case, one version: its tuple is shared by every issue naming it.
            get = raw[0].get
            ident = (get("id"), get("name"), get("released"), get("archived"), get("releaseDate"))
            single = self._singles.get(ident)
            if single is None:
                one: tuple[FixVersion, ...] = (self._version(ident),)
                single = self._singles[ident] = self._version_sets.setdefault(one, one)
            return single
        out: list[FixVersion] = []
        for entry in raw:
            if not isinstance(entry, dict):
                continue
            get = entry.get
            ident = (get("id"), get("name"), get("released"), get("archived"), get("releaseDate"))
            version = self._versions.get(ident)
            if version is None:
                version = self._version(ident)
            out.append(version)
        found = tuple(out)
        return self._version_sets.setdefault(found, found)

    def _version(self, ident: tuple[Any, ...]) -> FixVersion:
        """The version of these raw values, made once per distinct ``ident``."""
        version = self._versions.get(ident)
        if version is None:
            version = self._versions[ident] = FixVersion(
                id=str(ident[0] or ident[1] or ""),
                name=str(ident[1] or ident[0] or ""),
                released=bool(ident[2]),
                archived=bool(ident[3]),
                release_date=parse_date(ident[4]),
            )
        return version

    def _label_set(self, raw: list[Any]) -> tuple[str, ...]:
        given = tuple(raw)
        try:
            # Labels are texts, so a combination seen before is found by its raw tuple.
            found = self._labels.get(given)
        except TypeError:  # an unhashable entry: made text below
            found = None
        if found is None:
            found = tuple(label if type(label) is str else str(label) for label in raw)
            found = self._labels.setdefault(found, found)
        return found

    def normalise(self, raw: Mapping[str, Any]) -> WorkItem:
        """One raw issue dict to a :class:`WorkItem`.

        Written flat, with the common shapes tested first: it runs for every issue of
        every cycle (SPEC section 9 asks for 50,000 issues/s for the whole merge).
        """
        f = raw.get("fields")
        if type(f) is not dict:
            f = _EMPTY
        get = f.get
        key = raw.get("key")
        key = key if type(key) is str else str(key or "")
        project = get("project")
        if type(project) is not dict:
            project = _EMPTY
        project_key = project.get("key") or key.rpartition("-")[0]
        if type(project_key) is not str:
            project_key = str(project_key)
        issuetype = get("issuetype")
        if type(issuetype) is not dict:
            issuetype = _EMPTY
        type_name = issuetype.get("name")
        if type(type_name) is not str:
            type_name = ""
        level = issuetype.get("hierarchyLevel")
        if level is not None:
            is_epic = level == 1
        else:
            is_epic = type_name == "Epic" or type_name.lower() == "epic"
        is_subtask = issuetype.get("subtask") is True
        status = get("status")
        if type(status) is not dict:
            status = _EMPTY
        category_dict = status.get("statusCategory")
        category_key = category_dict.get("key") if type(category_dict) is dict else None
        category = _CATEGORY.get(category_key) if type(category_key) is str else None
        resolved = None
        if category == "done":
            resolved = _done_at(get)
        elif category is None:
            # "undefined" or missing: a resolution date means it is done, else not started.
            resolution = get("resolutiondate")
            resolved = None if resolution is None else parse_datetime(resolution)
            category = "done" if resolved is not None else "todo"
        assignee = get("assignee")
        assignee_name: str | None = None
        if type(assignee) is dict:
            who = assignee.get("displayName") or assignee.get("name") or assignee.get("accountId")
            assignee_name = str(who) if who else None
        priority = get("priority")
        priority_name = priority.get("name") if type(priority) is dict else None
        parent = get("parent")
        parent_key: str | None = None
        epic_key: str | None = None
        if parent is not None and type(parent) is dict and parent.get("key"):
            parent_key = str(parent["key"])
            parent_fields = parent.get("fields")
            parent_type = parent_fields.get("issuetype") if type(parent_fields) is dict else None
            if type(parent_type) is dict:
                if parent_type.get("name") == "Epic" or _is_epic_type(parent_type):
                    epic_key = parent_key
            elif not is_subtask:
                epic_key = parent_key  # a standard issue's parent is its epic
        if epic_key is None and self._epic_link:
            # Company-managed projects and an older Server (whose stories carry no parent):
            # the Epic Link field holds the epic's key. A sub-task has none; it reaches its
            # epic through its parent.
            epic_key = link_value(get(self._epic_link))
        labels = get("labels")
        versions = get("fixVersions")
        summary = get("summary")
        points = get(self._points) if self._points else None
        if points is None and self._points_also:
            # A site with both project styles: team-managed issues keep their points in
            # "Story point estimate", company-managed ones in the configured field.
            for other in self._points_also:
                points = get(other)
                if points is not None:
                    break
        original = get("timeoriginalestimate")
        remaining = get("timeestimate")
        link = get(self._account) if self._account else None
        if link is not None:
            link = link_value(link)
        number = key[len(project_key) + 1 :] if key.startswith(project_key) else ""
        name = status.get("name")
        due = get("duedate")
        return new_work_item(
            str(raw.get("id") or ""),
            key,
            int(number) if number.isdigit() else _key_number(key),
            project_key,
            str(project.get("name") or project_key),
            type_name,
            is_epic,
            is_subtask,
            summary if type(summary) is str else "",
            name if type(name) is str else str(name or ""),
            category,
            assignee_name,
            str(priority_name) if priority_name else None,
            parse_datetime(get("created")),
            parse_datetime(get("updated")),
            resolved,
            None if due is None else parse_date(due),
            None if points is None else _number(points),
            None if original is None else _seconds(original),
            None if remaining is None else _seconds(remaining),
            self._label_set(labels) if labels and type(labels) is list else (),
            self._fix_versions(versions) if versions and type(versions) is list else (),
            parent_key,
            epic_key,
            link,
        )


def normalise_issue(raw: Mapping[str, Any], fields: FieldIds) -> WorkItem:
    """One raw Jira issue to a :class:`WorkItem`."""
    return JiraNormaliser(fields).normalise(raw)


def normalise_issues(raws: Iterable[Mapping[str, Any]], fields: FieldIds) -> tuple[WorkItem, ...]:
    """Raw Jira issues to work items in canonical order (:func:`canonical_order`).

    Of two versions of one key the later ``updated`` wins, whatever the input order.
    """
    return canonical_order(index_issues(raws, fields).values())


def index_issues(raws: Iterable[Mapping[str, Any]], fields: FieldIds) -> dict[str, WorkItem]:
    """Raw Jira issues to work items by key (in no particular order).

    Of two versions of one key the later ``updated`` wins, whatever the input order.
    """
    normaliser = JiraNormaliser(fields)
    by_key: dict[str, WorkItem] = {}
    for item in map(normaliser.normalise, raws):
        seen = by_key.setdefault(item.key, item)
        if seen is not item and _version_rank(item) > _version_rank(seen):
            by_key[item.key] = item
    return by_key


def _version_rank(item: WorkItem) -> tuple[str, str]:
    updated = item.updated.isoformat() if item.updated else ""
    return (updated, repr(item))


def _key_number(key: str) -> int:
    number = key.rpartition("-")[2]
    return int(number) if number.isdigit() else -1


_by_number = attrgetter("number")
_by_key = attrgetter("key")


def canonical_order(items: Iterable[WorkItem]) -> tuple[WorkItem, ...]:
    """Items by project key, then issue number (``APOLLO-9`` before ``APOLLO-10``), then key.

    Grouping by project first keeps the sort to integer comparisons: this runs on every
    issue of every cycle.
    """
    groups: dict[str, list[WorkItem]] = {}
    for item in items:
        group = groups.get(item.project_key)
        if group is None:
            groups[item.project_key] = [item]
        else:
            group.append(item)
    ordered: list[WorkItem] = []
    for project_key in sorted(groups):
        group = groups[project_key]
        if min(map(_by_number, group)) < 0:
            group.sort(key=_by_key)  # malformed keys: make ties deterministic
        group.sort(key=_by_number)
        ordered.extend(group)
    return tuple(ordered)


def is_canonical(items: Sequence[WorkItem]) -> bool:
    """Whether items are already in canonical order (cheaper to check than to sort)."""
    previous_project = ""
    previous_number = -1
    seen_projects: set[str] = set()
    for item in items:
        number = item.number
        if number < 0:
            return False
        project = item.project_key
        if project == previous_project:
            if number <= previous_number:
                return False
        else:
            if project < previous_project or project in seen_projects:
                return False
            seen_projects.add(project)
            previous_project = project
        previous_number = number
    return True


def issue_sort_key(key: str) -> tuple[str, int, str]:
    """Sort ``APOLLO-9`` before ``APOLLO-10`` (the order of :func:`canonical_order`)."""
    project, _, number = key.rpartition("-")
    return (project, int(number) if number.isdigit() else -1, key)
