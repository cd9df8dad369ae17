"""Jira's field catalogue as the sandbox serves it (``GET /field``) and field selection.

System fields carry Jira Cloud's ids, names and clause names; custom fields come from
``schema.py``. ``select_fields`` applies the ``fields=`` rules of the search and issue
endpoints (``*all``, ``*navigable``, ``-field``, ids only — names are ignored as Jira does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from connectors.sandbox import schema

#: statusCategory key -> (id, name, colorName), as Jira Cloud defines them.
STATUS_CATEGORIES: Final = {
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
#: Priority name -> id (Jira's default priority scheme).
PRIORITIES: Final = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
RESOLUTION_DONE: Final = ("10000", "Done")

_TEXT = "com.atlassian.jira.plugin.system.customfieldtypes:textfield"
_FLOAT = "com.atlassian.jira.plugin.system.customfieldtypes:float"
_SELECT = "com.atlassian.jira.plugin.system.customfieldtypes:select"
_EPIC_LINK = "com.pyxis.greenhopper.jira:gh-epic-link"


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One entry of ``GET /field``."""

    id: str
    name: str
    clause_names: tuple[str, ...]
    schema: dict[str, Any] | None
    custom: bool = False
    orderable: bool = True
    navigable: bool = True
    searchable: bool = True

    def to_json(self) -> dict[str, Any]:
        """The FieldDetails document."""
        doc: dict[str, Any] = {
            "id": self.id,
            "key": self.id,
            "name": self.name,
            "custom": self.custom,
            "orderable": self.orderable,
            "navigable": self.navigable,
            "searchable": self.searchable,
            "clauseNames": list(self.clause_names),
        }
        if self.schema is not None:
            doc["schema"] = self.schema
        return doc


def _system(
    field_id: str, name: str, clauses: tuple[str, ...], type_: str | None, **flags: Any
) -> FieldDef:
    items = flags.pop("items", None)
    schema_doc: dict[str, Any] | None = None
    if type_ is not None:
        schema_doc = {"type": type_, "system": field_id}
        if items:
            schema_doc["items"] = items
    return FieldDef(field_id, name, clauses, schema_doc, **flags)


def _custom(field_id: str, name: str, type_: str, custom: str) -> FieldDef:
    number = int(field_id.rsplit("_", 1)[1])
    return FieldDef(
        field_id,
        name,
        (f"cf[{number}]", name),
        {"type": type_, "custom": custom, "customId": number},
        custom=True,
    )


FIELDS: Final[tuple[FieldDef, ...]] = (
    _system("issuekey", "Key", ("id", "issue", "issuekey", "key"), None, orderable=False),
    _system("summary", "Summary", ("summary",), "string"),
    _system("issuetype", "Issue Type", ("issuetype", "type"), "issuetype"),
    _system("project", "Project", ("project",), "project", orderable=False),
    _system("status", "Status", ("status",), "status", orderable=False),
    _system(
        "statusCategory", "Status Category", ("statusCategory",), "statusCategory", orderable=False
    ),
    _system(
        "statuscategorychangedate",
        "Status Category Changed",
        ("statusCategoryChangedDate",),
        "datetime",
        orderable=False,
    ),
    _system("priority", "Priority", ("priority",), "priority"),
    _system("assignee", "Assignee", ("assignee",), "user"),
    _system("created", "Created", ("created", "createdDate"), "datetime", orderable=False),
    _system("updated", "Updated", ("updated", "updatedDate"), "datetime", orderable=False),
    _system(
        "resolutiondate", "Resolved", ("resolutiondate", "resolved"), "datetime", orderable=False
    ),
    _system("resolution", "Resolution", ("resolution",), "resolution"),
    _system("duedate", "Due date", ("due", "duedate"), "date"),
    _system("labels", "Labels", ("labels",), "array", items="string"),
    _system("fixVersions", "Fix versions", ("fixVersion",), "array", items="version"),
    _system("parent", "Parent", ("parent",), None, orderable=False, searchable=False),
    _system("description", "Description", ("description",), "string"),
    _system(
        "timeoriginalestimate",
        "Original estimate",
        ("originalEstimate", "timeoriginalestimate"),
        "number",
        orderable=False,
    ),
    _system(
        "timeestimate",
        "Remaining Estimate",
        ("remainingEstimate", "timeestimate"),
        "number",
        orderable=False,
    ),
    _system("comment", "Comment", ("comment",), "comments-page", navigable=False),
    _custom(schema.JIRA_EPIC_LINK_FIELD_ID, "Epic Link", "any", _EPIC_LINK),
    _custom(
        schema.JIRA_STORY_POINTS_FIELD_ID, schema.JIRA_STORY_POINTS_FIELD_NAME, "number", _FLOAT
    ),
    _custom(schema.JIRA_ACCOUNT_FIELD_ID, schema.JIRA_ACCOUNT_FIELD_NAME, "string", _TEXT),
    _custom(
        schema.JIRA_DUPLICATE_FIELD_IDS[0], schema.JIRA_DUPLICATE_FIELD_NAME, "option", _SELECT
    ),
    _custom(schema.JIRA_DUPLICATE_FIELD_IDS[1], schema.JIRA_DUPLICATE_FIELD_NAME, "string", _TEXT),
    _custom(schema.JIRA_FLAG_FIELD_ID, schema.JIRA_FLAG_FIELD_NAME, "string", _TEXT),
)
FIELD_BY_ID: Final = {f.id: f for f in FIELDS}
#: Ids an issue's ``fields`` can hold (``issuekey`` lives at the top level instead).
ISSUE_FIELD_IDS: Final = tuple(f.id for f in FIELDS if f.id not in ("issuekey", "statusCategory"))
NAVIGABLE_IDS: Final = tuple(i for i in ISSUE_FIELD_IDS if FIELD_BY_ID[i].navigable)
#: Field names asked for in ``fields=`` that select only the issue's identity.
IDENTITY_FIELDS: Final = frozenset({"id", "key", "issuekey"})
#: Fields Cloud and recent Data Center have and the older Server of ``--jira-mode server``
#: lacks: absent from its ``GET /field``, and ignored in its ``fields=`` as unknown ids are.
NEWER_FIELD_IDS: Final = frozenset({"statuscategorychangedate"})


def site_fields(cloud: bool) -> tuple[FieldDef, ...]:
    """The catalogue of a Cloud site, or of the older Server."""
    return FIELDS if cloud else tuple(f for f in FIELDS if f.id not in NEWER_FIELD_IDS)


@dataclass(frozen=True, slots=True)
class FieldSelection:
    """Which parts of an issue to render."""

    ids: tuple[str, ...]  # ids under "fields", in catalogue order
    identity_only: bool  # only id/key were asked for: the big-page rule applies
    with_key: bool

    @property
    def id_only(self) -> bool:
        """Only ``id`` (Jira's enhanced-search default)."""
        return self.identity_only and not self.with_key


def select_fields(
    requested: Iterable[str], default: Iterable[str], *, cloud: bool = True
) -> FieldSelection:
    """Apply Jira's ``fields`` rules; unknown ids are ignored, as Jira ignores them (on the
    older Server, :data:`NEWER_FIELD_IDS` are unknown)."""
    wanted: list[str] = []
    excluded: set[str] = set()
    positive = False
    for raw in requested:
        item = raw.strip()
        if not item:
            continue
        if item.startswith("-"):
            excluded.add(item[1:])
            continue
        positive = True
        if item == "*all":
            wanted.extend(ISSUE_FIELD_IDS)
        elif item == "*navigable":
            wanted.extend(NAVIGABLE_IDS)
        elif item in IDENTITY_FIELDS or item in FIELD_BY_ID:
            wanted.append(item)
    if not positive:
        wanted = list(default)
        if "*all" in wanted:
            wanted = list(ISSUE_FIELD_IDS)
        elif "*navigable" in wanted:
            wanted = list(NAVIGABLE_IDS)
    chosen = {w for w in wanted if w not in excluded}
    if not cloud:
        chosen -= NEWER_FIELD_IDS
    with_key = bool(chosen & {"key", "issuekey"})
    ids = tuple(i for i in ISSUE_FIELD_IDS if i in chosen)
    identity_only = not ids
    return FieldSelection(ids=ids, identity_only=identity_only, with_key=with_key or bool(ids))
