"""Edits through the API: ``PUT /issue`` (fields and update operations), ``POST /issue``
and the field part of transitions.

Every value is checked before anything changes, so a 400 leaves the issue as it was.
Messages follow Jira's ("Field 'x' cannot be set. It is not on the appropriate screen,
or unknown.").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from connectors.sandbox import schema
from connectors.sandbox.jira.fields import PRIORITIES
from connectors.sandbox.jira.render import adf_text, is_adf
from connectors.sandbox.world import JiraIssue

if TYPE_CHECKING:
    from connectors.sandbox.jira.models import JiraBackend

Change = Callable[[JiraIssue], None]


class EditRejected(Exception):
    """A 400: per-field errors and/or messages."""

    def __init__(self, errors: dict[str, str], messages: tuple[str, ...] = ()) -> None:
        super().__init__(errors or messages)
        self.errors = errors
        self.messages = list(messages)


class _Invalid(ValueError):
    """One field's value is not acceptable (message for ``errors[field]``)."""


def cannot_set(field_id: str) -> str:
    """Jira's message for an unknown or read-only field."""
    return f"Field '{field_id}' cannot be set. It is not on the appropriate screen, or unknown."


def _string(value: Any, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _Invalid("Operation value must be a string")
    return value


def _assign(name: str, value: Any) -> Change:
    return lambda issue: setattr(issue, name, value)


class IssueEditor:
    """Validates and applies edits for one request (its API version decides rich text)."""

    def __init__(self, backend: JiraBackend, api_version: str) -> None:
        self.backend = backend
        self.version = api_version
        self._setters: dict[str, Callable[[JiraIssue, Any], Change]] = {
            "summary": self._summary,
            "description": self._description,
            "labels": self._labels,
            "duedate": self._duedate,
            "priority": self._priority,
            "assignee": self._assignee,
            "fixVersions": self._fix_versions,
            "parent": self._parent,
            schema.JIRA_EPIC_LINK_FIELD_ID: self._epic_link,
            schema.JIRA_ACCOUNT_FIELD_ID: lambda i, v: _assign("account_id", _string(v)),
            schema.JIRA_STORY_POINTS_FIELD_ID: self._story_points,
            schema.JIRA_STORY_POINT_ESTIMATE_FIELD_ID: self._story_points,
            schema.JIRA_DUPLICATE_FIELD_IDS[0]: self._tier_option,
            schema.JIRA_DUPLICATE_FIELD_IDS[1]: self._text_custom(
                schema.JIRA_DUPLICATE_FIELD_IDS[1]
            ),
            schema.JIRA_FLAG_FIELD_ID: self._text_custom(schema.JIRA_FLAG_FIELD_ID),
        }

    # -- entry points ----------------------------------------------------------------------

    def plan(
        self, issue: JiraIssue, payload: Any, extra_fields: tuple[str, ...] = ()
    ) -> list[Change]:
        """Validate ``{"fields": ..., "update": ...}``; return the changes to apply."""
        if not isinstance(payload, dict):
            raise EditRejected({}, ("Can not deserialize the request body.",))
        fields = payload.get("fields") or {}
        update = payload.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise EditRejected({}, ("'fields' and 'update' must be JSON objects.",))
        errors: dict[str, str] = {}
        changes: list[Change] = []
        for field_id, value in fields.items():
            if field_id in extra_fields:
                continue
            setter = self._setters.get(field_id)
            if setter is None:
                errors[field_id] = cannot_set(field_id)
                continue
            try:
                changes.append(setter(issue, value))
            except _Invalid as exc:
                errors[field_id] = str(exc)
        for field_id, operations in update.items():
            try:
                changes.extend(self._operations(issue, field_id, operations))
            except _Invalid as exc:
                errors[field_id] = str(exc)
        if errors:
            raise EditRejected(errors)
        return changes

    def edit(self, issue: JiraIssue, payload: Any) -> None:
        """``PUT /issue/{key}``: apply and bump ``updated``."""
        changes = self.plan(issue, payload)
        for change in changes:
            change(issue)
        self.backend.touch(issue)

    def create(self, payload: Any) -> JiraIssue:
        """``POST /issue``: project, issue type and summary are required."""
        fields = payload.get("fields") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            raise EditRejected({}, ("Can not deserialize the request body.",))
        errors: dict[str, str] = {}
        project = self._project(fields.get("project"))
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        issue_type = self._issue_type(fields.get("issuetype"))
        if issue_type is None:
            errors["issuetype"] = "Specify an issue type"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        now = self.backend.now()
        scratch = JiraIssue(
            id=0, key="NEW-0", project_key=project or "", issue_type=issue_type or "Task",
            summary="", description="", status="To Do", priority="Medium", created=now,
            updated=now, resolved=None, due=None, story_points=None, estimate_seconds=None,
            labels=[], fix_version_ids=[], parent_key=None, account_id=None,
            assignee_account_id=None,
        )  # fmt: skip
        try:
            changes = self.plan(scratch, payload, extra_fields=("project", "issuetype", "summary"))
        except EditRejected as exc:
            errors.update(exc.errors)
            changes = []
        if errors or project is None or issue_type is None or not isinstance(summary, str):
            raise EditRejected(errors)
        issue = self.backend.create_issue(project, summary, issue_type)
        for change in changes:
            change(issue)
        self.backend.revision += 1
        return issue

    # -- update operations -----------------------------------------------------------------

    def _operations(self, issue: JiraIssue, field_id: str, operations: Any) -> list[Change]:
        if not isinstance(operations, list):
            raise _Invalid(f"Operations for field '{field_id}' must be a list.")
        changes: list[Change] = []
        for operation in operations:
            if not isinstance(operation, dict) or len(operation) != 1:
                raise _Invalid("Each operation must be an object with one verb.")
            ((verb, value),) = operation.items()
            if field_id == "comment" and verb == "add":
                changes.append(self._comment(value))
            elif field_id == "labels" and verb in ("add", "remove"):
                label = self._label(value)
                changes.append(self._label_op(verb, label))
            elif field_id == "fixVersions" and verb in ("add", "remove"):
                version_id = self._version_id(issue, value)
                changes.append(self._version_op(verb, version_id))
            elif verb == "set" and field_id in self._setters:
                changes.append(self._setters[field_id](issue, value))
            elif field_id in self._setters:
                raise _Invalid(f"Field '{field_id}' does not support operation '{verb}'.")
            else:
                raise _Invalid(cannot_set(field_id))
        return changes

    @staticmethod
    def _label_op(verb: str, label: str) -> Change:
        def apply(issue: JiraIssue) -> None:
            # New lists, never in place: the backend shares unchanged lists with the world.
            if verb == "add" and label not in issue.labels:
                issue.labels = [*issue.labels, label]
            elif verb == "remove" and label in issue.labels:
                issue.labels = [x for x in issue.labels if x != label]

        return apply

    @staticmethod
    def _version_op(verb: str, version_id: str) -> Change:
        def apply(issue: JiraIssue) -> None:
            ids = issue.fix_version_ids
            if verb == "add" and version_id not in ids:
                issue.fix_version_ids = [*ids, version_id]
            elif verb == "remove" and version_id in ids:
                issue.fix_version_ids = [x for x in ids if x != version_id]

        return apply

    def _comment(self, value: Any) -> Change:
        body = value.get("body") if isinstance(value, dict) else None
        checked = self._rich_text(body)
        if checked is None:
            raise _Invalid("Comment body can not be empty!")

        def apply(issue: JiraIssue) -> None:
            self.backend.add_comment(issue.key, checked)

        return apply

    # -- field setters ---------------------------------------------------------------------

    def _rich_text(self, value: Any) -> str | dict[str, Any] | None:
        if value is None:
            return None
        if self.version == "3":
            if not is_adf(value):
                raise _Invalid(
                    "Operation value must be an Atlassian Document (see the "
                    "Atlassian Document Format)"
                )
            return dict(value)
        return _string(value)

    def _summary(self, issue: JiraIssue, value: Any) -> Change:
        text = _string(value, nullable=False)
        if not text or not text.strip():
            raise _Invalid("You must specify a summary of the issue.")
        if "\n" in text or "\r" in text:
            raise _Invalid("The summary is invalid because it contains newline characters.")
        return _assign("summary", text)

    def _description(self, issue: JiraIssue, value: Any) -> Change:
        body = self._rich_text(value)
        text = adf_text(body) if isinstance(body, dict) else (body or "")
        return _assign("description", text)

    @staticmethod
    def _label(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _Invalid("Operation value must be a string")
        if re.search(r"\s", value):
            raise _Invalid(f"The label '{value}' contains spaces which is invalid.")
        if len(value) > 255:
            raise _Invalid("The label must not exceed 255 characters.")
        return value

    def _labels(self, issue: JiraIssue, value: Any) -> Change:
        if value is None:
            value = []
        if not isinstance(value, list):
            raise _Invalid("Operation value must be an array of strings")
        labels = list(dict.fromkeys(self._label(v) for v in value))
        return lambda i: setattr(i, "labels", list(labels))

    @staticmethod
    def _duedate(issue: JiraIssue, value: Any) -> Change:
        if value is None or value == "":
            return _assign("due", None)
        try:
            return _assign("due", date.fromisoformat(str(value)))
        except ValueError:
            raise _Invalid(f"Error parsing date string: {value}") from None

    @staticmethod
    def _priority(issue: JiraIssue, value: Any) -> Change:
        if isinstance(value, dict):
            by_id = {pid: name for name, pid in PRIORITIES.items()}
            name = value.get("name") if "name" in value else by_id.get(str(value.get("id")))
            if name in PRIORITIES:
                return _assign("priority", name)
        raise _Invalid("The priority selected is invalid.")

    def _assignee(self, issue: JiraIssue, value: Any) -> Change:
        if value is None:
            return _assign("assignee_account_id", None)
        user = None
        if isinstance(value, dict):
            if "accountId" in value:
                user = self.backend.find_user(account_id=str(value["accountId"]))
            elif "name" in value and not self.backend.cloud:
                user = self.backend.find_user(name=str(value["name"]))
        if user is None:
            raise _Invalid("Specified user does not exist or you do not have required permissions")
        return _assign("assignee_account_id", user.account_id)

    def _version_id(self, issue: JiraIssue, value: Any) -> str:
        candidates = self.backend.project_versions.get(issue.project_key, [])
        if isinstance(value, dict):
            for version in candidates:
                if value.get("id") is not None and str(value["id"]) == version.id:
                    return version.id
                if value.get("name") is not None and value["name"] == version.name:
                    return version.id
        raise _Invalid(f"Version '{value}' is not valid for this project.")

    def _fix_versions(self, issue: JiraIssue, value: Any) -> Change:
        if not isinstance(value, list):
            raise _Invalid("Operation value must be an array of versions")
        ids = list(dict.fromkeys(self._version_id(issue, v) for v in value))
        return lambda i: setattr(i, "fix_version_ids", list(ids))

    def _epic_key(self, key: Any) -> str | None:
        if key is None:
            return None
        epic = self.backend.get_issue(str(key))
        if epic is None:
            raise _Invalid(f"Issue '{key}' does not exist or you do not have permission to see it.")
        return epic.key

    def _parent(self, issue: JiraIssue, value: Any) -> Change:
        if value is not None and not isinstance(value, dict):
            raise _Invalid("Operation value must be an object with 'key' or 'id'")
        ref = None if value is None else value.get("key") or value.get("id")
        return _assign("parent_key", self._epic_key(ref))

    def _epic_link(self, issue: JiraIssue, value: Any) -> Change:
        return _assign("parent_key", self._epic_key(_string(value)))

    @staticmethod
    def _story_points(issue: JiraIssue, value: Any) -> Change:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _Invalid("Operation value must be a number")
        return _assign("story_points", None if value is None else float(value))

    def _custom_setter(self, field_id: str, value: Any) -> Change:
        def apply(issue: JiraIssue) -> None:
            self.backend.custom_values.setdefault(issue.key, {})[field_id] = value

        return apply

    def _text_custom(self, field_id: str) -> Callable[[JiraIssue, Any], Change]:
        def setter(issue: JiraIssue, value: Any) -> Change:
            return self._custom_setter(field_id, _string(value))

        return setter

    def _tier_option(self, issue: JiraIssue, value: Any) -> Change:
        field_id = schema.JIRA_DUPLICATE_FIELD_IDS[0]
        if value is None:
            return self._custom_setter(field_id, None)
        if isinstance(value, dict) and isinstance(value.get("value"), str):
            option_id = str(10400 + sum(map(ord, value["value"])) % 100)
            return self._custom_setter(field_id, {"value": value["value"], "id": option_id})
        raise _Invalid("Specify a valid 'id' or 'name' for Customer Tier")

    # -- creation lookups -------------------------------------------------------------------

    def _project(self, value: Any) -> str | None:
        if isinstance(value, dict):
            value = value.get("key") or value.get("id")
        project = self.backend.get_project(str(value)) if value is not None else None
        return project.key if project else None

    @staticmethod
    def _issue_type(value: Any) -> str | None:
        if isinstance(value, dict):
            if value.get("name") in schema.JIRA_ISSUE_TYPES:
                return str(value["name"])
            by_id = {tid: name for name, tid in schema.JIRA_ISSUE_TYPES.items()}
            return by_id.get(str(value.get("id")))
        return None
