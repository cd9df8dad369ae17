"""Jira JSON documents for the backend's records, as v2 or v3 of the REST API shows them.

v2 and v3 differ in rich text only: descriptions and comment bodies are wiki strings on
v2 and Atlassian Document Format (ADF) documents on v3. Times are rendered in the site's
zone, as Jira does (``2017-09-06T16:13:46.019+0800`` on a Shanghai site,
``...-0500`` in New York's winter); dates as ``YYYY-MM-DD``.

Which keys an issue's ``fields`` carry follows its project (:meth:`Renderer.shown`): a
team-managed project has ``parent`` and "Story point estimate" but no Epic Link or Story
Points; a company-managed one the reverse (and ``parent`` too, on Cloud); a field its
field configuration hides is absent; an older Server gives ``parent`` to sub-tasks only
and issue types without ``hierarchyLevel``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from connectors.sandbox import schema
from connectors.sandbox.jira.fields import (
    PRIORITIES,
    RESOLUTION_DONE,
    STATUS_CATEGORIES,
    FieldSelection,
)
from connectors.sandbox.jira.rendered import rendered_fields
from connectors.sandbox.world import (
    JiraIssue,
    JiraProject,
    JiraUser,
    JiraVersion,
    category_changed,
)

if TYPE_CHECKING:
    from connectors.sandbox.jira.models import JiraBackend, JiraComment

#: Fields of company-managed projects only (a team-managed one has neither).
_COMPANY_MANAGED_IDS = frozenset(
    {schema.JIRA_EPIC_LINK_FIELD_ID, schema.JIRA_STORY_POINTS_FIELD_ID}
)
#: Where an issue's story points show: Story Points, or team-managed "Story point estimate".
_STORY_POINTS_IDS = frozenset(
    {schema.JIRA_STORY_POINTS_FIELD_ID, schema.JIRA_STORY_POINT_ESTIMATE_FIELD_ID}
)
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
#: The ``expand`` values rendered into each issue (``names`` and ``schema`` go at the top
#: of a search answer instead, as Jira puts them).
ISSUE_EXPANSIONS = frozenset({"changelog", "transitions", "renderedFields"})


def timestamp(moment: datetime, zone: tzinfo = UTC) -> str:
    """Jira's timestamp format, in ``zone`` (``+0800``, ``-0500``: no colon)."""
    local = moment.astimezone(zone)
    return (
        local.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{local.microsecond // 1000:03d}"
        + (local.strftime("%z") or "+0000")
    )


def day(value: date | None) -> str | None:
    """Jira's date format."""
    return value.isoformat() if value else None


def adf(text: str) -> dict[str, Any]:
    """A plain text as an ADF document, one paragraph per line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_text(node: Any) -> str:
    """The plain text of an ADF document (paragraphs on separate lines)."""
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    parts = [adf_text(child) for child in node.get("content", []) or []]
    joiner = "\n" if node.get("type") == "doc" else ""
    return joiner.join(parts)


def is_adf(value: Any) -> bool:
    """Whether a value looks like an ADF document."""
    return isinstance(value, dict) and value.get("type") == "doc" and "content" in value


class Renderer:
    """Renders records for one request (its base URL and API version)."""

    def __init__(self, backend: JiraBackend, base_url: str, api_version: str) -> None:
        self.backend = backend
        self.base = base_url.rstrip("/")
        self.version = api_version
        self.api = f"{self.base}/rest/api/{api_version}"

    # -- small objects -------------------------------------------------------------------

    def time(self, moment: datetime) -> str:
        """A time as the site writes it: in its zone."""
        return timestamp(moment, self.backend.zone)

    def rich_text(self, value: str | dict[str, Any] | None) -> Any:
        """A description or comment body for this API version."""
        if value is None or value == "":
            return None
        if self.version == "3":
            return value if isinstance(value, dict) else adf(value)
        return adf_text(value) if isinstance(value, dict) else value

    def avatars(self, kind: str, ident: str) -> dict[str, str]:
        """avatarUrls for a user or project."""
        url = f"{self.base}/secure/{kind}avatar?avatarId={ident}"
        return {size: f"{url}&size={size}" for size in ("48x48", "24x24", "16x16", "32x32")}

    def user(self, user: JiraUser | None) -> dict[str, Any] | None:
        """A user as Cloud (accountId) or Server (name/key) shows it."""
        if user is None:
            return None
        doc: dict[str, Any] = {}
        if self.backend.cloud:
            doc["self"] = f"{self.api}/user?accountId={user.account_id}"
            doc["accountId"] = user.account_id
            doc["accountType"] = "atlassian"
        else:
            doc["self"] = f"{self.api}/user?username={user.name}"
            doc["name"] = user.name
            doc["key"] = user.name
        doc["emailAddress"] = user.email
        doc["avatarUrls"] = self.avatars("user", user.account_id[-6:])
        doc["displayName"] = user.display_name
        doc["active"] = True
        doc["timeZone"] = self.backend.time_zone
        return doc

    def user_by_id(self, account_id: str | None) -> dict[str, Any] | None:
        """A user by accountId, or None."""
        return self.user(self.backend.users.get(account_id)) if account_id else None

    def status(self, name: str) -> dict[str, Any]:
        """A status with its category."""
        status_id, category = schema.JIRA_STATUSES[name]
        cat_id, cat_name, color = STATUS_CATEGORIES[category]
        return {
            "self": f"{self.api}/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.base}/images/icons/statuses/generic.png",
            "name": name,
            "id": status_id,
            "statusCategory": {
                "self": f"{self.api}/statuscategory/{cat_id}",
                "id": cat_id,
                "key": category,
                "colorName": color,
                "name": cat_name,
            },
        }

    def priority(self, name: str) -> dict[str, Any]:
        """A priority."""
        pid = PRIORITIES.get(name, "3")
        return {
            "self": f"{self.api}/priority/{pid}",
            "iconUrl": f"{self.base}/images/icons/priorities/{name.lower()}.svg",
            "name": name,
            "id": pid,
        }

    def issue_type(self, name: str) -> dict[str, Any]:
        """An issue type (an older Server's have no ``hierarchyLevel``)."""
        type_id = schema.JIRA_ISSUE_TYPES[name]
        subtask = name in schema.JIRA_SUBTASK_TYPES
        doc: dict[str, Any] = {
            "self": f"{self.api}/issuetype/{type_id}",
            "id": type_id,
            "description": f"A {name.lower()}.",
            "iconUrl": f"{self.base}/images/icons/issuetypes/{name.lower()}.svg",
            "name": name,
            "subtask": subtask,
        }
        if self.backend.cloud:
            doc["hierarchyLevel"] = 1 if name == "Epic" else (-1 if subtask else 0)
        return doc

    def project_ref(self, project: JiraProject) -> dict[str, Any]:
        """A project as issues and lists show it (``simplified``: team-managed, Cloud's)."""
        doc: dict[str, Any] = {
            "self": f"{self.api}/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "projectTypeKey": "software",
        }
        if self.backend.cloud:
            doc["simplified"] = self.backend.team_managed(project.key)
        doc["avatarUrls"] = self.avatars("project", project.id)
        return doc

    def project(self, project: JiraProject) -> dict[str, Any]:
        """``GET /project/{key}``."""
        doc = self.project_ref(project)
        doc.update(
            {
                "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                "description": f"{project.name} (sandbox)",
                "lead": self.user_by_id(project.lead_account_id),
                "components": [],
                "issueTypes": [self.issue_type(name) for name in schema.JIRA_ISSUE_TYPES],
                "assigneeType": "UNASSIGNED",
                "versions": [
                    self.version_doc(v) for v in self.backend.project_versions[project.key]
                ],
                "roles": {},
                "style": "next-gen" if self.backend.team_managed(project.key) else "classic",
                "isPrivate": False,
                "properties": {},
            }
        )
        return doc

    def version_doc(self, version: JiraVersion) -> dict[str, Any]:
        """A project version (also what ``fixVersions`` holds, with ``projectId``)."""
        doc: dict[str, Any] = {
            "self": f"{self.api}/version/{version.id}",
            "id": version.id,
            "description": "",
            "name": version.name,
            "archived": version.archived,
            "released": version.released,
        }
        if version.release_date is not None:
            doc["releaseDate"] = version.release_date.isoformat()
        doc["projectId"] = int(self.backend.projects[version.project_key].id)
        return doc

    def resolution(self) -> dict[str, Any]:
        """The Done resolution."""
        rid, name = RESOLUTION_DONE
        return {"self": f"{self.api}/resolution/{rid}", "id": rid, "description": "", "name": name}

    def comment(self, comment: JiraComment) -> dict[str, Any]:
        """One comment."""
        issue = self.backend.issues.get(comment.issue_key)
        issue_id = issue.id if issue else 0
        author = self.user_by_id(comment.author_account_id)
        return {
            "self": f"{self.api}/issue/{issue_id}/comment/{comment.id}",
            "id": str(comment.id),
            "author": author,
            "body": self.rich_text(comment.body) or ("" if self.version == "2" else adf("")),
            "updateAuthor": author,
            "created": self.time(comment.created),
            "updated": self.time(comment.updated),
            "jsdPublic": True,
        }

    def comments_page(
        self, issue: JiraIssue, start: int, size: int, newest_first: bool
    ) -> dict[str, Any]:
        """A page of an issue's comments."""
        comments = self.backend.comments.get(issue.key, [])
        ordered = list(reversed(comments)) if newest_first else comments
        return {
            "self": f"{self.api}/issue/{issue.id}/comment",
            "startAt": start,
            "maxResults": size,
            "total": len(comments),
            "comments": [self.comment(c) for c in ordered[start : start + size]],
        }

    def changelog(self, issue: JiraIssue) -> dict[str, Any]:
        """The status history as Jira's changelog."""
        author = self.user_by_id(
            issue.assignee_account_id or self.backend.projects[issue.project_key].lead_account_id
        )
        histories = []
        for index, change in enumerate(issue.history):
            histories.append(
                {
                    "id": str(issue.id * 1000 + index),
                    "author": author,
                    "created": self.time(change.at),
                    "items": [
                        {
                            "field": "status",
                            "fieldtype": "jira",
                            "fieldId": "status",
                            "from": schema.JIRA_STATUSES[change.from_status][0],
                            "fromString": change.from_status,
                            "to": schema.JIRA_STATUSES[change.to_status][0],
                            "toString": change.to_status,
                        }
                    ],
                }
            )
        return {
            "startAt": 0,
            "maxResults": len(histories),
            "total": len(histories),
            "histories": histories,
        }

    # -- issues --------------------------------------------------------------------------

    def field(self, issue: JiraIssue, field_id: str) -> Any:
        """One field's value (None when empty, as Jira shows it)."""
        backend = self.backend
        if field_id == "summary":
            return issue.summary
        if field_id == "issuetype":
            return self.issue_type(issue.issue_type)
        if field_id == "project":
            return self.project_ref(backend.projects[issue.project_key])
        if field_id == "status":
            return self.status(issue.status)
        if field_id == "priority":
            return self.priority(issue.priority)
        if field_id == "assignee":
            return self.user_by_id(issue.assignee_account_id)
        if field_id in ("created", "updated"):
            return self.time(getattr(issue, field_id))
        if field_id == "resolutiondate":
            return self.time(issue.resolved) if issue.resolved else None
        if field_id == "statuscategorychangedate":
            return self.time(category_changed(issue))
        if field_id == "resolution":
            return self.resolution() if issue.resolved else None
        if field_id == "duedate":
            return day(issue.due)
        if field_id == "labels":
            return list(issue.labels)
        if field_id == "fixVersions":
            versions = (backend.versions.get(v) for v in issue.fix_version_ids)
            return [self.version_doc(v) for v in versions if v is not None]
        if field_id == "parent":
            return self.parent(issue.parent_key)
        if field_id == "description":
            return self.rich_text(issue.description)
        if field_id in ("timeoriginalestimate", "timeestimate"):
            return issue.estimate_seconds
        if field_id == "comment":
            return self.comments_page(issue, 0, 5000, newest_first=False)
        if field_id == schema.JIRA_EPIC_LINK_FIELD_ID:
            # A sub-task's parent is its story: it has no epic link of its own.
            subtask = issue.issue_type in schema.JIRA_SUBTASK_TYPES
            return None if subtask else issue.parent_key
        if field_id in _STORY_POINTS_IDS:
            return issue.story_points
        if field_id == schema.JIRA_ACCOUNT_FIELD_ID:
            return issue.account_id
        value = backend.custom_values.get(issue.key, {}).get(field_id)
        if field_id == schema.JIRA_DUPLICATE_FIELD_IDS[0] and value is not None:
            return {"self": f"{self.api}/customFieldOption/{value['id']}", **value}
        return value

    def shown(self, issue: JiraIssue, field_id: str) -> bool:
        """Whether the issue's ``fields`` carry ``field_id`` at all (Jira leaves out a
        field its project's configuration hides or its project style does not have)."""
        project = self.backend.projects[issue.project_key]
        if field_id in project.hidden_fields:
            return False
        if field_id == "parent":  # an older Server: only sub-tasks have one
            return self.backend.cloud or issue.issue_type in schema.JIRA_SUBTASK_TYPES
        if field_id in _COMPANY_MANAGED_IDS:
            return not self.backend.team_managed(project.key)
        if field_id == schema.JIRA_STORY_POINT_ESTIMATE_FIELD_ID:
            return self.backend.team_managed(project.key)
        return True

    def parent(self, key: str | None) -> dict[str, Any] | None:
        """The parent reference: the epic, or a sub-task's story."""
        parent = self.backend.issues.get(key) if key else None
        if parent is None:
            return None
        return {
            "id": str(parent.id),
            "key": parent.key,
            "self": f"{self.api}/issue/{parent.id}",
            "fields": {
                "summary": parent.summary,
                "status": self.status(parent.status),
                "priority": self.priority(parent.priority),
                "issuetype": self.issue_type(parent.issue_type),
            },
        }

    def issue(
        self,
        issue: JiraIssue,
        selection: FieldSelection,
        expand: frozenset[str] = frozenset(),
        properties: tuple[str, ...] = (),
        full: bool = True,
    ) -> dict[str, Any]:
        """An issue with the selected fields; ``full=False`` allows the id-only shape."""
        doc: dict[str, Any] = {"id": str(issue.id)}
        if full or selection.with_key or expand or properties:
            doc = {
                "expand": ISSUE_EXPAND,
                "id": str(issue.id),
                "self": f"{self.api}/issue/{issue.id}",
                "key": issue.key,
            }
        if full or selection.ids:
            shown = self.shown
            doc["fields"] = {
                fid: self.field(issue, fid) for fid in selection.ids if shown(issue, fid)
            }
        if "changelog" in expand:
            doc["changelog"] = self.changelog(issue)
        doc.update(self.expansions(issue, selection, expand))
        if "names" in expand:
            doc["names"] = self.names(selection)
        if "schema" in expand:
            doc["schema"] = self.schemas(selection)
        if properties:
            stored = self.backend.properties.get(issue.key, {})
            doc["properties"] = {k: stored[k] for k in properties if k in stored}
        return doc

    def expansions(
        self, issue: JiraIssue, selection: FieldSelection, expand: frozenset[str]
    ) -> dict[str, Any]:
        """``expand=transitions`` (what ``GET /issue/{key}/transitions`` lists) and
        ``expand=renderedFields`` (see ``rendered.py``) of one issue."""
        out: dict[str, Any] = {}
        if "transitions" in expand:
            out["transitions"] = self.transitions(issue)
        if "renderedFields" in expand:
            out["renderedFields"] = rendered_fields(self, issue, selection)
        return out

    def names(self, selection: FieldSelection) -> dict[str, str]:
        """``expand=names``: field id -> name (in the site's language)."""
        by_id = self.backend.site_fields.by_id
        return {fid: by_id[fid].name for fid in selection.ids}

    def schemas(self, selection: FieldSelection) -> dict[str, Any]:
        """``expand=schema``: field id -> JsonTypeBean."""
        by_id = self.backend.site_fields.by_id
        return {fid: by_id[fid].schema for fid in selection.ids if by_id[fid].schema}

    def transitions(self, issue: JiraIssue, only: str | None = None) -> list[dict[str, Any]]:
        """Transitions available from the issue's status (every other status)."""
        out = []
        for transition_id, target in schema.JIRA_TRANSITIONS.items():
            if target == issue.status or (only is not None and only != transition_id):
                continue
            out.append(
                {
                    "id": transition_id,
                    "name": target,
                    "to": self.status(target),
                    "hasScreen": False,
                    "isGlobal": True,
                    "isInitial": False,
                    "isAvailable": True,
                    "isConditional": False,
                    "isLooped": False,
                }
            )
        return out
