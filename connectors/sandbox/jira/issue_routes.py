"""HTTP routes on single issues: read, edit, create, delete, comments, properties and
transitions. Every edit, comment or transition moves the issue's ``updated`` to now.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.sandbox import schema
from connectors.sandbox.http import Router, SandboxRequest, SandboxResponse
from connectors.sandbox.jira.edits import EditRejected, IssueEditor
from connectors.sandbox.jira.routes import Api, BadRequest, int_param
from connectors.sandbox.jira.search import PAGE_RULES
from connectors.sandbox.world import JiraIssue

NOT_FOUND = "Issue does not exist or you do not have permission to see it."
MAX_PROPERTY_BYTES = 32768
MAX_PROPERTY_KEY = 255


class IssueRoutes(Api):
    """``/issue`` and its sub-resources."""

    def register(self, router: Router) -> None:
        """Add this version's routes."""
        self.add(router, "POST", "/issue", self.create)
        self.add(router, "GET", "/issue/{key}", self.get)
        self.add(router, "PUT", "/issue/{key}", self.edit)
        self.add(router, "DELETE", "/issue/{key}", self.delete)
        self.add(router, "GET", "/issue/{key}/comment", self.comments)
        self.add(router, "POST", "/issue/{key}/comment", self.add_comment)
        self.add(router, "GET", "/issue/{key}/comment/{id}", self.comment)
        self.add(router, "DELETE", "/issue/{key}/comment/{id}", self.delete_comment)
        self.add(router, "GET", "/issue/{key}/properties", self.property_keys)
        self.add(router, "GET", "/issue/{key}/properties/{propertyKey}", self.get_property)
        self.add(router, "PUT", "/issue/{key}/properties/{propertyKey}", self.put_property)
        self.add(router, "DELETE", "/issue/{key}/properties/{propertyKey}", self.delete_property)
        self.add(router, "GET", "/issue/{key}/transitions", self.transitions)
        self.add(router, "POST", "/issue/{key}/transitions", self.transition)

    def _issue(self, request: SandboxRequest) -> JiraIssue | SandboxResponse:
        issue = self.backend.get_issue(request.path_params["key"])
        return issue if issue is not None else self.backend.error(404, NOT_FOUND)

    def _rejected(self, exc: EditRejected) -> SandboxResponse:
        return SandboxResponse.json(
            {"errorMessages": exc.messages, "errors": exc.errors}, status=400
        )

    # -- the issue ---------------------------------------------------------------------------

    def get(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /issue/{key}`` (``fields`` default ``*all``; ``expand``; ``properties``)."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        selection = self.backend.site_fields.select(request.args("fields"), default=("*all",))
        expand = frozenset(request.args("expand"))
        properties = tuple(request.args("properties"))
        doc = self.renderer(request).issue(issue, selection, expand, properties)
        return SandboxResponse.json(doc)

    def edit(self, request: SandboxRequest) -> SandboxResponse:
        """``PUT /issue/{key}``: ``fields`` and/or ``update`` operations; 204."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        try:
            IssueEditor(self.backend, self.version).edit(issue, request.json())
        except EditRejected as exc:
            return self._rejected(exc)
        return SandboxResponse.empty(204)

    def create(self, request: SandboxRequest) -> SandboxResponse:
        """``POST /issue``: 201 with id, key and self."""
        try:
            issue = IssueEditor(self.backend, self.version).create(request.json())
        except EditRejected as exc:
            return self._rejected(exc)
        api = self.renderer(request).api
        return SandboxResponse.json(
            {"id": str(issue.id), "key": issue.key, "self": f"{api}/issue/{issue.id}"},
            status=201,
        )

    def delete(self, request: SandboxRequest) -> SandboxResponse:
        """``DELETE /issue/{key}``: 204; an issue with sub-tasks only with
        ``deleteSubtasks=true`` (they go with it), else 400, as Jira answers."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        has_subtasks = any(
            child.parent_key == issue.key and child.issue_type in schema.JIRA_SUBTASK_TYPES
            for child in self.backend.by_project[issue.project_key]
        )
        if has_subtasks and (request.arg("deleteSubtasks") or "").lower() != "true":
            return self.backend.error(
                400,
                f"The issue '{issue.key}' has subtasks. You must specify the 'deleteSubtasks' "
                "parameter to delete this issue with subtasks.",
            )
        self.backend.delete_issue(issue.key)
        return SandboxResponse.empty(204)

    # -- comments ------------------------------------------------------------------------------

    def comments(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /issue/{key}/comment``: startAt/maxResults/total/comments."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        start = max(0, int_param(request.arg("startAt"), "startAt", 0) or 0)
        size = PAGE_RULES["comment"].size(int_param(request.arg("maxResults"), "maxResults"))
        newest_first = request.arg("orderBy") == "-created"
        page = self.renderer(request).comments_page(issue, start, size, newest_first)
        return SandboxResponse.json(page)

    def add_comment(self, request: SandboxRequest) -> SandboxResponse:
        """``POST /issue/{key}/comment``: a string body on v2, an ADF document on v3."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        payload = request.json()
        body = payload.get("body") if isinstance(payload, dict) else None
        if self.version == "3":
            valid = isinstance(body, dict) and body.get("type") == "doc"
            problem = "Comment body is not a valid Atlassian Document."
        else:
            valid = isinstance(body, str) and body.strip() != ""
            problem = "Comment body can not be empty!"
        if not valid or body is None:
            return SandboxResponse.json(
                {"errorMessages": [], "errors": {"comment": problem}}, status=400
            )
        comment = self.backend.add_comment(issue.key, body)
        return SandboxResponse.json(self.renderer(request).comment(comment), status=201)

    def comment(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /issue/{key}/comment/{id}``."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        wanted = request.path_params["id"]
        for comment in self.backend.comments.get(issue.key, []):
            if str(comment.id) == wanted:
                return SandboxResponse.json(self.renderer(request).comment(comment))
        return self.backend.error(404, "Can not find a comment for the id: " + wanted + ".")

    def delete_comment(self, request: SandboxRequest) -> SandboxResponse:
        """``DELETE /issue/{key}/comment/{id}``: 204; 404 when there is no such comment; 403
        without the permission to delete it (Delete Own / Delete All Comments)."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        wanted = request.path_params["id"]
        found = next(
            (c for c in self.backend.comments.get(issue.key, []) if str(c.id) == wanted), None
        )
        if found is None:
            return self.backend.error(404, "Can not find a comment for the id: " + wanted + ".")
        denied = self.backend.denied_permissions
        own = found.author_account_id == self.backend.me.account_id
        if "DELETE_ALL_COMMENTS" in denied and (not own or "DELETE_OWN_COMMENTS" in denied):
            return self.backend.error(403, "You do not have the permission to delete this comment.")
        self.backend.delete_comment(issue.key, found.id)
        return SandboxResponse.empty(204)

    # -- properties ----------------------------------------------------------------------------

    def property_keys(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /issue/{key}/properties``."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        api = self.renderer(request).api
        keys = [
            {"self": f"{api}/issue/{issue.id}/properties/{key}", "key": key}
            for key in self.backend.properties.get(issue.key, {})
        ]
        return SandboxResponse.json({"keys": keys})

    def get_property(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /issue/{key}/properties/{propertyKey}``."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        key = request.path_params["propertyKey"]
        stored = self.backend.properties.get(issue.key, {})
        if key not in stored:
            return self.backend.error(404, f"The property with key '{key}' does not exist.")
        return SandboxResponse.json({"key": key, "value": stored[key]})

    def put_property(self, request: SandboxRequest) -> SandboxResponse:
        """``PUT /issue/{key}/properties/{propertyKey}``: any JSON up to 32 KB; 201/200."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        key = request.path_params["propertyKey"]
        if not key or len(key) > MAX_PROPERTY_KEY:
            raise BadRequest(f"The property key must be 1 to {MAX_PROPERTY_KEY} characters.")
        if not request.body.strip():
            raise BadRequest("The property value can not be empty.")
        value: Any = request.json()
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        if size > MAX_PROPERTY_BYTES:
            raise BadRequest(
                f"The property '{key}' has a value of {size} bytes, over the limit of "
                f"{MAX_PROPERTY_BYTES} bytes."
            )
        stored = self.backend.properties.setdefault(issue.key, {})
        created = key not in stored
        stored[key] = value
        return SandboxResponse.empty(201 if created else 200)

    def delete_property(self, request: SandboxRequest) -> SandboxResponse:
        """``DELETE /issue/{key}/properties/{propertyKey}``: 204, or 404 when absent."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        key = request.path_params["propertyKey"]
        stored = self.backend.properties.get(issue.key, {})
        if key not in stored:
            return self.backend.error(404, f"The property with key '{key}' does not exist.")
        del stored[key]
        return SandboxResponse.empty(204)

    # -- transitions ---------------------------------------------------------------------------

    def transitions(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /issue/{key}/transitions``."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        available = self.renderer(request).transitions(issue, request.arg("transitionId"))
        return SandboxResponse.json({"expand": "transitions", "transitions": available})

    def transition(self, request: SandboxRequest) -> SandboxResponse:
        """``POST /issue/{key}/transitions`` ``{"transition": {"id": "41"}}``: 204."""
        issue = self._issue(request)
        if isinstance(issue, SandboxResponse):
            return issue
        payload = request.json()
        ref = payload.get("transition") if isinstance(payload, dict) else None
        transition_id = str(ref.get("id")) if isinstance(ref, dict) else None
        target = schema.JIRA_TRANSITIONS.get(transition_id or "")
        if target is None:
            return self.backend.error(
                400, f"Transition id '{transition_id}' is not valid for this issue."
            )
        if target == issue.status:
            return self.backend.error(
                400,
                f"It seems that you have tried to perform a workflow operation ({target}) that "
                f"is not valid for the current state of this issue ({issue.key}). The likely "
                "cause is that somebody has changed the issue recently, please look at the "
                "issue history for details.",
            )
        editor = IssueEditor(self.backend, self.version)
        try:
            changes = editor.plan(issue, payload, extra_fields=("resolution",))
        except EditRejected as exc:
            return self._rejected(exc)
        for change in changes:
            change(issue)
        self.backend.set_status(issue, target)
        return SandboxResponse.empty(204)


__all__ = ["IssueRoutes"]
