"""Jira's field catalogue (``GET /field``) and resolving configured field names to ids.

Display names are neither unique nor stable: two apps can both add "Customer Tier", and a
site in Chinese calls Jira Software's Epic Link field 史诗链接. A field's type
(``schema.custom``) is stable, so Jira Software's own fields are found by type first and
by name second (:meth:`FieldCatalog.epic_link`, :meth:`FieldCatalog.story_points`). A
configured name resolves when exactly one field carries it (or, for a field of a known
kind, exactly one of those carrying it has that kind's type); otherwise the message names
every candidate with its type and asks for the id.

Public API, also for ``init --discover``:

- :data:`EPIC_LINK_TYPE`, :data:`STORY_POINT_ESTIMATE_TYPE`, :data:`NUMBER_TYPE`,
  :data:`STORY_POINTS_TYPES`: the ``schema.custom`` types of Jira Software's fields;
- :func:`field_type` and :func:`type_label`: a ``/field`` entry's type and a short label;
- :meth:`FieldCatalog.of_type`: the fields of some types; :meth:`FieldCatalog.named`: the
  fields carrying a name; :meth:`FieldCatalog.describe`: ``"Name" (id, type)`` for messages;
- :meth:`FieldCatalog.resolve`, :meth:`FieldCatalog.epic_link`,
  :meth:`FieldCatalog.story_points`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from connectors.exceptions import ConfigError
from connectors.jira.settings import SIDE

_CUSTOM_ID = re.compile(r"customfield_(\d+)")
_CLAUSE_ID = re.compile(r"cf\[(\d+)\]", re.IGNORECASE)

#: Jira Software's Epic Link field (company-managed projects; Server/Data Center).
EPIC_LINK_TYPE: Final = "com.pyxis.greenhopper.jira:gh-epic-link"
#: Jira Software's "Story point estimate" (team-managed projects on Cloud).
STORY_POINT_ESTIMATE_TYPE: Final = "com.pyxis.greenhopper.jira:jsw-story-points"
#: A number custom field: company-managed "Story Points" is one (so are many other fields).
NUMBER_TYPE: Final = "com.atlassian.jira.plugin.system.customfieldtypes:float"
#: The types a story-points field has, the specific one first.
STORY_POINTS_TYPES: Final = (STORY_POINT_ESTIMATE_TYPE, NUMBER_TYPE)
#: The English name of the Epic Link field: found by it only when no field has the type.
EPIC_LINK_NAME: Final = "Epic Link"
#: Jira's own (system) field ids. A site need not list each in /field: an older Server
#: has no ``statuscategorychangedate``, a site with time tracking off no estimates. A pull
#: asks only for those the site lists (:func:`askable`).
SYSTEM_FIELD_IDS: Final = frozenset(
    {
        "aggregateprogress", "aggregatetimeestimate", "aggregatetimeoriginalestimate",
        "aggregatetimespent", "assignee", "attachment", "comment", "components", "created",
        "creator", "description", "duedate", "environment", "fixVersions", "issuekey",
        "issuelinks", "issuetype", "labels", "lastViewed", "parent", "priority", "progress",
        "project", "reporter", "resolution", "resolutiondate", "security", "status",
        "statusCategory", "statuscategorychangedate", "subtasks", "summary", "thumbnail",
        "timeestimate", "timeoriginalestimate", "timespent", "timetracking", "updated",
        "versions", "votes", "watches", "worklog", "workratio",
    }
)  # fmt: skip
#: Fields asked for even where /field does not list them: Server's /field has no
#: ``parent`` (JRA-47377), yet its sub-tasks carry ``fields.parent``; Jira ignores a field
#: it does not have in ``fields=``, so asking costs nothing.
IMPLIED_FIELD_IDS: Final = frozenset({"parent"})
#: Candidates a message lists at most (a site can have dozens of number fields).
_LISTED: Final = 6

_LABELS: Final = {
    EPIC_LINK_TYPE: "Epic Link",
    STORY_POINT_ESTIMATE_TYPE: "story point estimate",
    NUMBER_TYPE: "number",
    "com.pyxis.greenhopper.jira:gh-epic-label": "Epic Name",
    "com.atlassian.jira.plugin.system.customfieldtypes:textfield": "text",
    "com.atlassian.jira.plugin.system.customfieldtypes:textarea": "multi-line text",
    "com.atlassian.jira.plugin.system.customfieldtypes:select": "select list",
    "com.atlassian.jira.plugin.system.customfieldtypes:multiselect": "multi-select list",
    "com.atlassian.jira.plugin.system.customfieldtypes:datepicker": "date",
    "com.atlassian.jira.plugin.system.customfieldtypes:url": "URL",
}


def field_type(field: Mapping[str, Any]) -> str:
    """A ``/field`` entry's type: ``schema.custom`` for a custom field (e.g.
    :data:`EPIC_LINK_TYPE`), else ``schema.type`` (``"string"``...); "" when it has none."""
    schema = field.get("schema")
    if not isinstance(schema, Mapping):
        return ""
    kind = schema.get("custom") or schema.get("type") or ""
    return kind if isinstance(kind, str) else ""


def type_label(field: Mapping[str, Any]) -> str:
    """A short label of a field's type for messages: "Epic Link", "number", "text"...; the
    last part of an app's type key otherwise, "no type" when the entry has none."""
    kind = field_type(field)
    if not kind:
        return "no type"
    if kind in _LABELS:
        return _LABELS[kind]
    if field.get("custom") is True or ":" in kind:
        return kind.rpartition(":")[2] or kind
    return f"system {kind}"


def askable(catalog: FieldCatalog, wanted: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split field ids a pull wants into (those to ask for, those refused): a field the
    site lists, an implied one (:data:`IMPLIED_FIELD_IDS`) and ``id``/``key`` are asked
    for; a system field the site does not list is left out (its key is then absent from
    every issue, which the model reads as "no value"); anything else (a custom field id
    the site lacks, a display name) is refused."""
    asked: list[str] = []
    refused: list[str] = []
    for field_id in wanted:
        if field_id in catalog.by_id or field_id in IMPLIED_FIELD_IDS or field_id in ("id", "key"):
            asked.append(field_id)
        elif field_id not in SYSTEM_FIELD_IDS:
            refused.append(field_id)
    return asked, refused


class FieldCatalog:
    """The fields of one Jira site, looked up by id, display name or type."""

    def __init__(self, fields: Iterable[Mapping[str, Any]]) -> None:
        self.fields = [dict(f) for f in fields]
        self.by_id: dict[str, dict[str, Any]] = {str(f["id"]): f for f in self.fields}
        self._by_name: dict[str, list[str]] = {}
        self._by_folded: dict[str, list[str]] = {}
        for f in self.fields:
            name = str(f.get("name") or "")
            self._by_name.setdefault(name, []).append(str(f["id"]))
            self._by_folded.setdefault(name.casefold(), []).append(str(f["id"]))

    def name_of(self, field_id: str) -> str:
        """The display name of a field id (the id itself when unknown)."""
        return str(self.by_id.get(field_id, {}).get("name") or field_id)

    def type_of(self, field_id: str) -> str:
        """:func:`field_type` of a field id ("" when unknown)."""
        return field_type(self.by_id.get(field_id, {}))

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        """The fields whose type (:func:`field_type`) is one of ``types``, in the order of
        ``types`` and then of the catalogue: ``of_type(*STORY_POINTS_TYPES)`` lists the
        story point estimates before the number fields."""
        return [f for kind in types for f in self.fields if field_type(f) == kind]

    def named(self, name: str) -> list[dict[str, Any]]:
        """The fields carrying ``name``: spelt exactly, else ignoring case."""
        ids = self._by_name.get(name) or self._by_folded.get(name.casefold()) or []
        return [self.by_id[i] for i in ids]

    def describe(self, field_id: str) -> str:
        """``"Name" (id, type)`` of a field, for messages."""
        field = self.by_id.get(field_id, {"id": field_id})
        return f'"{self.name_of(field_id)}" ({field_id}, {type_label(field)})'

    def resolve(
        self,
        ref: str,
        setting: str | None = None,
        *,
        prefer: Sequence[str] = (),
        propose: Sequence[str] = (),
        kind: str = "",
    ) -> str:
        """The id of a field given by id (``customfield_10100``, ``cf[10100]``, ``duedate``)
        or by display name; ConfigError when missing or ambiguous.

        ``setting`` names the config key that holds ``ref``, for the message. ``prefer``:
        types that settle an ambiguous name (of several fields carrying it, the one field
        of these types wins). ``propose``: types whose fields a "no such field" message
        proposes, as ``kind`` (e.g. "story-points") fields.
        """
        ref = ref.strip()
        where = f" (set in {setting})" if setting else ""
        clause = _CLAUSE_ID.fullmatch(ref)
        candidate = f"customfield_{clause.group(1)}" if clause else ref
        if candidate in self.by_id:
            return candidate
        if _CUSTOM_ID.fullmatch(candidate):
            raise ConfigError(
                f"Jira has no field with id {candidate}{where}; check the id in Jira's field "
                "settings, or configure the field by its name",
                side=SIDE,
            )
        ids = [str(f["id"]) for f in self.named(ref)]
        if len(ids) == 1:
            return ids[0]
        if ids:
            typed = [i for i in ids if self.type_of(i) in prefer]
            if len(typed) == 1:
                return typed[0]
            listed = ", ".join(f"{i} ({type_label(self.by_id[i])})" for i in ids)
            example = typed[0] if typed else ids[0]
            raise ConfigError(
                f'the Jira field name "{ref}"{where} is ambiguous: {len(ids)} fields carry it '
                f"({listed}); configure the field id instead of the name, e.g. "
                f'"{example}"',
                side=SIDE,
            )
        hint = self._suggest(ref)
        if propose:
            hint = f"{hint}; {self._propose(propose, kind)}"
        raise ConfigError(f'Jira has no field named "{ref}"{where}; {hint}', side=SIDE)

    def epic_link(self) -> str | None:
        """The id of Jira Software's Epic Link field: the one field of
        :data:`EPIC_LINK_TYPE` (of several, the one named "Epic Link", else the first),
        else the one field named "Epic Link"; None when the site has none (team-managed
        projects and Cloud's newer sites keep epics in ``parent`` only)."""
        typed = [str(f["id"]) for f in self.of_type(EPIC_LINK_TYPE)]
        if len(typed) > 1:
            english = [i for i in typed if self.name_of(i) == EPIC_LINK_NAME]
            return english[0] if len(english) == 1 else typed[0]
        if typed:
            return typed[0]
        named = [str(f["id"]) for f in self.named(EPIC_LINK_NAME)]
        return named[0] if len(named) == 1 else None

    def story_points(self, ref: str, setting: str | None = None) -> tuple[str, tuple[str, ...]]:
        """The configured story-points field and the other fields read for story points.

        ``ref`` resolves as :meth:`resolve` does, a story-points type settling a name that
        several fields carry (a localised site's 故事点数 beside an app's text field of that
        name); a missing name is answered with the site's story-points fields by name, id
        and type. The others are every other field of :data:`STORY_POINT_ESTIMATE_TYPE`:
        a site with team-managed projects beside company-managed ones keeps their points in
        "Story point estimate", so an issue without a value in the configured field takes
        it from there.
        """
        primary = self.resolve(
            ref, setting, prefer=STORY_POINTS_TYPES, propose=STORY_POINTS_TYPES,
            kind="story-points",
        )  # fmt: skip
        also = tuple(
            str(f["id"]) for f in self.of_type(STORY_POINT_ESTIMATE_TYPE) if f["id"] != primary
        )
        return primary, also

    def _propose(self, types: Sequence[str], kind: str) -> str:
        found = [str(f["id"]) for f in self.of_type(*types)]
        noun = f"{kind} fields" if kind else "fields of the expected type"
        if not found:
            return f"the site has no {noun}"
        shown = ", ".join(self.describe(i) for i in found[:_LISTED])
        more = f" and {len(found) - _LISTED} more" if len(found) > _LISTED else ""
        return f"the site's {noun}: {shown}{more}; configure one by its id"

    def _suggest(self, ref: str) -> str:
        folded = {name.casefold(): name for name in self._by_name if name}
        close = difflib.get_close_matches(ref.casefold(), list(folded), n=5, cutoff=0.6)
        if not close:
            return "names are matched exactly; see Jira's field settings for the right one"
        described = ", ".join(self.describe(i) for c in close for i in self._by_name[folded[c]])
        return f"close names: {described}"
