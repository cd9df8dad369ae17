"""Jira's field catalogue as the sandbox serves it (``GET /field``) and field selection.

System fields carry Jira Cloud's ids, names and clause names; custom fields come from
``schema.py``. :func:`site_fields` gives the catalogue of one site: on a localised site
(``locale`` ``zh`` or ``de``) the names are translated and two apps' fields repeat the
names of Epic Link and Story Points; an older Server (``deployment="server"``) lists no
``parent``, no ``statuscategorychangedate`` and no team-managed "Story point estimate".
:meth:`SiteFields.select` applies the ``fields=`` rules of the search and issue endpoints
(``*all``, ``*navigable``, ``-field``, ids only — names are ignored as Jira does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
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
_STORY_POINT_ESTIMATE = "com.pyxis.greenhopper.jira:jsw-story-points"


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
    _custom(schema.JIRA_EPIC_LINK_FIELD_ID, schema.JIRA_EPIC_LINK_FIELD_NAME, "any", _EPIC_LINK),
    _custom(
        schema.JIRA_STORY_POINTS_FIELD_ID, schema.JIRA_STORY_POINTS_FIELD_NAME, "number", _FLOAT
    ),
    _custom(
        schema.JIRA_STORY_POINT_ESTIMATE_FIELD_ID,
        schema.JIRA_STORY_POINT_ESTIMATE_FIELD_NAME,
        "number",
        _STORY_POINT_ESTIMATE,
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


#: The site languages ``--locale`` offers.
LOCALES: Final = ("en", "zh", "de")
#: What an older Server's /field does not list. ``parent`` stays selectable: sub-tasks
#: carry it there (JRA-47377); team-managed projects and statuscategorychangedate are
#: Cloud's (and newer Data Center's).
SERVER_UNLISTED: Final = frozenset(
    {"parent", "statuscategorychangedate", schema.JIRA_STORY_POINT_ESTIMATE_FIELD_ID}
)
#: Fields an issue may carry although /field does not list them.
_IMPLIED: Final = ("parent",)
#: Field names as a site in that language shows them (custom fields created by an admin,
#: such as "Salesforce Account", keep the name the admin gave them).
_LOCALISED: Final[dict[str, dict[str, str]]] = {
    "zh": {
        "issuekey": "关键字",
        "summary": "摘要",
        "issuetype": "问题类型",
        "project": "项目",
        "status": "状态",
        "statusCategory": "状态类别",
        "priority": "优先级",
        "assignee": "经办人",
        "created": "创建日期",
        "updated": "已更新",
        "resolutiondate": "已解决",
        "resolution": "解决结果",
        "duedate": "到期日",
        "labels": "标签",
        "fixVersions": "修复版本",
        "parent": "父级",
        "description": "描述",
        "timeoriginalestimate": "初始预估",
        "timeestimate": "剩余预估",
        "comment": "注释",
        schema.JIRA_EPIC_LINK_FIELD_ID: "史诗链接",
        schema.JIRA_STORY_POINTS_FIELD_ID: "故事点数",
        schema.JIRA_STORY_POINT_ESTIMATE_FIELD_ID: "故事点估算",
    },
    "de": {
        "issuekey": "Schlüssel",
        "summary": "Zusammenfassung",
        "issuetype": "Vorgangstyp",
        "project": "Projekt",
        "statusCategory": "Statuskategorie",
        "priority": "Priorität",
        "assignee": "Bearbeiter",
        "created": "Erstellt",
        "updated": "Aktualisiert",
        "resolutiondate": "Erledigt",
        "resolution": "Lösung",
        "duedate": "Fälligkeitsdatum",
        "labels": "Stichwörter",
        "fixVersions": "Lösungsversion(en)",
        "parent": "Übergeordnet",
        "description": "Beschreibung",
        "timeoriginalestimate": "Ursprüngliche Schätzung",
        "timeestimate": "Verbleibende Schätzung",
        "comment": "Kommentar",
        schema.JIRA_EPIC_LINK_FIELD_ID: "Epic-Verknüpfung",
        schema.JIRA_STORY_POINTS_FIELD_ID: "Story-Punkte",
        schema.JIRA_STORY_POINT_ESTIMATE_FIELD_ID: "Schätzung der Story-Punkte",
    },
}
#: Apps' text fields that repeat the names of Jira Software's own fields on a localised
#: site (a config naming them must be settled by type, or by id).
DUPLICATE_OF: Final = {
    "customfield_10401": schema.JIRA_EPIC_LINK_FIELD_ID,
    "customfield_10402": schema.JIRA_STORY_POINTS_FIELD_ID,
}


@dataclass(frozen=True, slots=True)
class SiteFields:
    """The field catalogue of one emulated site (deployment and language)."""

    listed: tuple[FieldDef, ...]  # what ``GET /field`` answers, in order
    by_id: dict[str, FieldDef]  # every field an issue can carry, listed or implied
    issue_ids: tuple[str, ...]  # ids an issue's ``fields`` can hold, in catalogue order
    navigable_ids: tuple[str, ...]

    def to_json(self) -> list[dict[str, Any]]:
        """The ``GET /field`` document."""
        return [f.to_json() for f in self.listed]

    def name(self, field_id: str) -> str:
        """A field's display name on this site (the id when unknown)."""
        found = self.by_id.get(field_id)
        return found.name if found else field_id

    def select(self, requested: Iterable[str], default: Iterable[str]) -> FieldSelection:
        """Apply Jira's ``fields`` rules; unknown ids are ignored, as Jira ignores them."""
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
                wanted.extend(self.issue_ids)
            elif item == "*navigable":
                wanted.extend(self.navigable_ids)
            elif item in IDENTITY_FIELDS or item in self.by_id:
                wanted.append(item)
        if not positive:
            wanted = list(default)
            if "*all" in wanted:
                wanted = list(self.issue_ids)
            elif "*navigable" in wanted:
                wanted = list(self.navigable_ids)
        chosen = {w for w in wanted if w not in excluded}
        with_key = bool(chosen & {"key", "issuekey"})
        ids = tuple(i for i in self.issue_ids if i in chosen)
        return FieldSelection(ids=ids, identity_only=not ids, with_key=with_key or bool(ids))


def _localised(field: FieldDef, names: dict[str, str]) -> FieldDef:
    name = names.get(field.id)
    if name is None:
        return field
    clauses = field.clause_names
    if field.custom:  # a custom field's name is one of its clause names
        clauses = tuple(name if c == field.name else c for c in clauses)
    return replace(field, name=name, clause_names=clauses)


@cache
def site_fields(deployment: str = "cloud", locale: str = "en") -> SiteFields:
    """The catalogue a site of this deployment (``cloud``, ``server``) and language shows."""
    if locale not in LOCALES:
        raise ValueError(f"locale must be one of {', '.join(LOCALES)}")
    names = _LOCALISED.get(locale, {})
    every = [_localised(f, names) for f in FIELDS]
    if names:
        by_name = {f.id: f.name for f in every}
        for dup_id, original in DUPLICATE_OF.items():
            every.append(_custom(dup_id, by_name[original], "string", _TEXT))
    unlisted = SERVER_UNLISTED if deployment == "server" else frozenset()
    listed = tuple(f for f in every if f.id not in unlisted)
    shown = tuple(f for f in every if f.id not in unlisted or f.id in _IMPLIED)
    by_id = {f.id: f for f in shown}
    issue_ids = tuple(f.id for f in shown if f.id not in ("issuekey", "statusCategory"))
    return SiteFields(
        listed=listed,
        by_id=by_id,
        issue_ids=issue_ids,
        navigable_ids=tuple(i for i in issue_ids if by_id[i].navigable),
    )


def select_fields(requested: Iterable[str], default: Iterable[str]) -> FieldSelection:
    """Apply Jira's ``fields`` rules on an English Cloud site (:meth:`SiteFields.select`)."""
    return site_fields().select(requested, default)
