"""The in-memory Jira backend: issues and their indexes, auth, and every state change.

HTTP lives in ``routes.py``; rendering in ``render.py``; searching in ``search.py``.
``reset()`` rebuilds everything from the seeded :class:`World` (copying its issues, so
edits never leak into the world), which takes well under a second for 100,000 issues.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from connectors.sandbox import schema
from connectors.sandbox.http import Router, SandboxRequest, SandboxResponse
from connectors.sandbox.jira.bulk import BulkQueue
from connectors.sandbox.jira.fields import SiteFields, site_fields
from connectors.sandbox.jira.limits import RateLimits
from connectors.sandbox.jira.render import adf_text
from connectors.sandbox.jira.routes import build_router, request_too_long
from connectors.sandbox.jira.search import IssueSearch
from connectors.sandbox.world import (
    JiraIssue,
    JiraProject,
    JiraUser,
    JiraVersion,
    StatusChange,
    World,
    resolution_after,
)

Deployment = Literal["cloud", "server"]


@dataclass(slots=True)
class JiraComment:
    """A comment; ``body`` is kept as posted (wiki string on v2, ADF document on v3)."""

    id: int
    issue_key: str
    author_account_id: str
    body: str | dict[str, Any]
    created: datetime
    updated: datetime


def _copy(issue: JiraIssue) -> JiraIssue:
    # Lists are shared with the world: the backend replaces them, never mutates them.
    return JiraIssue(
        issue.id, issue.key, issue.project_key, issue.issue_type, issue.summary,
        issue.description, issue.status, issue.priority, issue.created, issue.updated,
        issue.resolved, issue.due, issue.story_points, issue.estimate_seconds,
        issue.labels, issue.fix_version_ids, issue.parent_key, issue.account_id,
        issue.assignee_account_id, issue.history,
    )  # fmt: skip


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _number(key: str) -> int:
    return int(key.rsplit("-", 1)[1])


class JiraBackend:
    """Emulated Jira Cloud (or Server/DC) over a generated :class:`World`."""

    router: Router

    def __init__(
        self,
        world: World,
        deployment: str = "cloud",
        email: str = "sandbox@example.com",
        api_token: str = "sandbox-api-token",
        personal_access_token: str = "sandbox-personal-access-token",
        username: str = "sandbox",
        password: str = "sandbox-password",
        time_zone: str = "Asia/Shanghai",
        clock: Callable[[], datetime] | None = None,
        locale: str = "en",
    ) -> None:
        if deployment not in ("cloud", "server"):
            raise ValueError("deployment must be 'cloud' or 'server'")
        self.world = world
        self.deployment: Deployment = "cloud" if deployment == "cloud" else "server"
        #: The site's language: field names of ``GET /field`` (see ``fields.py``).
        self.locale = locale
        self.site_fields: SiteFields = site_fields(self.deployment, locale)
        self.email = email
        self.api_token = api_token
        self.personal_access_token = personal_access_token
        self.username = username
        self.password = password
        self.time_zone = time_zone
        self.zone: tzinfo = ZoneInfo(time_zone)
        #: Permission keys (``EDIT_ISSUES``...) the signed-in user lacks in every project, as
        #: ``GET /mypermissions`` reports them; a test switch, kept across ``reset()``.
        self.denied_permissions: set[str] = set()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.me = JiraUser(
            account_id="712020:5a4d1c2e-0000-4000-8000-5a4db0c5ed01",
            name=username,
            display_name="Sandbox Integration",
            email=email,
        )
        self.secret = f"jira-sandbox-{world.seed}".encode()  # signs page tokens
        self.revision = 0  # bumped by every change: cached search results key on it
        self.search = IssueSearch(self)
        #: Bulk edits submitted and their progress (Cloud; ``bulk.py``).
        self.bulk = BulkQueue(self)
        #: The per-second and per-issue write limits, off unless asked (``limits.py``).
        self.limits = RateLimits(self)
        self.reset()
        self.router = build_router(self)

    @property
    def cloud(self) -> bool:
        """Whether this emulates Jira Cloud (else Server/Data Center)."""
        return self.deployment == "cloud"

    def team_managed(self, project_key: str) -> bool:
        """Whether a project is team-managed here: an older Server has none, so its
        team-managed projects of the world show as company-managed."""
        return self.cloud and self.projects[project_key].team_managed

    # -- state ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Restore the seeded world: drop every edit, comment and property."""
        self._load()
        self.revision += 1
        self.search.clear()
        self.bulk.clear()

    def _load(self) -> None:
        world = self.world
        self.users = {u.account_id: u for u in world.jira_users}
        self.users[self.me.account_id] = self.me
        self.users_by_name = {u.name: u for u in self.users.values()}
        self.projects: dict[str, JiraProject] = {p.key: p for p in world.projects}
        self.project_order = sorted(self.projects)
        self.versions: dict[str, JiraVersion] = {v.id: v for v in world.versions}
        self.project_versions: dict[str, list[JiraVersion]] = {k: [] for k in self.projects}
        for version in world.versions:
            self.project_versions[version.project_key].append(version)
        self.issues: dict[str, JiraIssue] = {}
        self.by_id: dict[int, JiraIssue] = {}
        self.by_project: dict[str, list[JiraIssue]] = {k: [] for k in self.projects}
        for source in world.issues:
            issue = _copy(source)
            self.issues[issue.key] = issue
            self.by_id[issue.id] = issue
            self.by_project[issue.project_key].append(issue)
        self.next_number: dict[str, int] = {}
        for key, issues in self.by_project.items():
            issues.sort(key=lambda i: _number(i.key))
            self.next_number[key] = _number(issues[-1].key) + 1 if issues else 1
        self.next_issue_id = max(self.by_id, default=9999) + 1
        self.comments: dict[str, list[JiraComment]] = {}
        self.next_comment_id = 10000
        self.properties: dict[str, dict[str, Any]] = {}
        #: Values of custom fields the world does not model (tier, satisfaction flag).
        self.custom_values: dict[str, dict[str, Any]] = {}

    def ordered_issues(self, projects: frozenset[str] | None = None) -> list[JiraIssue]:
        """Issues in ``key ASC`` order, optionally only those of some projects."""
        out: list[JiraIssue] = []
        for key in self.project_order:
            if projects is None or key in projects:
                out.extend(self.by_project[key])
        return out

    # -- lookups (also the JQL Catalog protocol) ------------------------------------------

    def now(self) -> datetime:
        """The clock, as an aware datetime."""
        moment = self.clock()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def get_issue(self, key_or_id: str) -> JiraIssue | None:
        """An issue by key (any case) or numeric id."""
        if key_or_id.isdigit():
            return self.by_id.get(int(key_or_id))
        return self.issues.get(key_or_id.upper())

    def issue(self, key: str) -> JiraIssue:
        """An issue by key; KeyError when absent (for tests)."""
        found = self.get_issue(key)
        if found is None:
            raise KeyError(key)
        return found

    def resolve_issue(self, value: str) -> str | None:
        """The key of an issue given by key or id."""
        found = self.get_issue(value)
        return found.key if found else None

    def get_project(self, key_or_id: str) -> JiraProject | None:
        """A project by key (any case) or id."""
        project = self.projects.get(key_or_id.upper())
        if project is None:
            project = next((p for p in self.projects.values() if p.id == key_or_id), None)
        return project

    def resolve_project(self, value: str) -> str | None:
        """A project key for a key, id or name (JQL accepts all three)."""
        project = self.get_project(value)
        if project is None:
            lowered = value.lower()
            project = next((p for p in self.projects.values() if p.name.lower() == lowered), None)
        return project.key if project else None

    def find_user(self, account_id: str | None = None, name: str | None = None) -> JiraUser | None:
        """A user by accountId (Cloud) or username (Server)."""
        if account_id is not None:
            return self.users.get(account_id)
        if name is not None:
            return self.users_by_name.get(name)
        return None

    # -- changes ----------------------------------------------------------------------------

    def touch(self, issue: JiraIssue) -> None:
        """Record a change: ``updated`` moves to now (incremental pulls rely on it)."""
        issue.updated = self.now()
        self.revision += 1

    def set_status(self, issue: JiraIssue, status: str) -> None:
        """Move an issue to a status: history, resolution date, ``updated``."""
        if status not in schema.JIRA_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if status == issue.status:
            return
        now = self.now()
        issue.history = [*issue.history, StatusChange(now, issue.status, status)]
        # The project's workflow decides the resolution (some reach Done without one).
        workflow = self.world.workflow_of(issue.project_key)
        issue.resolved = resolution_after(workflow, issue.resolved, issue.status, status, now)
        issue.status = status
        self.touch(issue)

    def add_comment(
        self, key: str, body: str | dict[str, Any], author_account_id: str | None = None
    ) -> JiraComment:
        """Add a comment (bumps the issue's ``updated``)."""
        issue = self.issue(key)
        now = self.now()
        comment = JiraComment(
            self.next_comment_id,
            issue.key,
            author_account_id or self.me.account_id,
            body,
            now,
            now,
        )
        self.next_comment_id += 1
        self.comments.setdefault(issue.key, []).append(comment)
        self.touch(issue)
        return comment

    def delete_comment(self, key: str, comment_id: int) -> bool:
        """Delete a comment (bumps the issue's ``updated``); False when there is none."""
        issue = self.issue(key)
        comments = self.comments.get(issue.key, [])
        kept = [c for c in comments if c.id != comment_id]
        if len(kept) == len(comments):
            return False
        self.comments[issue.key] = kept
        self.touch(issue)
        return True

    def comment_texts(self, key: str) -> list[str]:
        """The plain text of each comment on an issue, oldest first (what text search
        indexes: a v3 comment's ADF document as its text)."""
        return [
            c.body if isinstance(c.body, str) else adf_text(c.body)
            for c in self.comments.get(key, [])
        ]

    def create_issue(
        self,
        project_key: str,
        summary: str,
        issue_type: str = "Task",
        **attributes: Any,
    ) -> JiraIssue:
        """Create an issue (status To Do); attributes are :class:`JiraIssue` field names."""
        project = self.get_project(project_key)
        if project is None:
            raise KeyError(project_key)
        if issue_type not in schema.JIRA_ISSUE_TYPES:
            raise ValueError(f"unknown issue type {issue_type!r}")
        now = self.now()
        number = self.next_number[project.key]
        self.next_number[project.key] = number + 1
        issue = JiraIssue(
            id=self.next_issue_id, key=f"{project.key}-{number}", project_key=project.key,
            issue_type=issue_type, summary=summary, description="", status="To Do",
            priority="Medium", created=now, updated=now, resolved=None, due=None,
            story_points=None, estimate_seconds=None, labels=[], fix_version_ids=[],
            parent_key=None, account_id=None, assignee_account_id=None,
        )  # fmt: skip
        self.next_issue_id += 1
        for name, value in attributes.items():
            self._set_attribute(issue, name, value)
        self.issues[issue.key] = issue
        self.by_id[issue.id] = issue
        self.by_project[project.key].append(issue)
        self.revision += 1
        return issue

    def update_issue(self, key: str, **changes: Any) -> JiraIssue:
        """Change an issue as a user would (test helper); bumps ``updated`` unless given.

        Keys are :class:`JiraIssue` attribute names (``status`` records history) or custom
        field ids the world does not model (``customfield_10300``...).
        """
        issue = self.issue(key)
        explicit_updated = changes.pop("updated", None)
        status = changes.pop("status", None)
        for name, value in changes.items():
            self._set_attribute(issue, name, value)
        if status is not None:
            self.set_status(issue, status)
        self.touch(issue)
        if explicit_updated is not None:
            issue.updated = explicit_updated
        return issue

    def _set_attribute(self, issue: JiraIssue, name: str, value: Any) -> None:
        if name.startswith("customfield_"):
            self.custom_values.setdefault(issue.key, {})[name] = value
        elif name in ("id", "key", "project_key", "history") or not hasattr(issue, name):
            raise AttributeError(f"cannot set {name!r} on an issue")
        else:
            setattr(issue, name, list(value) if isinstance(value, list) else value)

    def delete_issue(self, key: str) -> None:
        """Delete an issue, and its sub-tasks with it (as Jira does); an epic's children
        lose their epic link (and are touched)."""
        issue = self.issue(key)
        subtasks = [
            child
            for child in self.by_project[issue.project_key]
            if child.parent_key == issue.key and child.issue_type in schema.JIRA_SUBTASK_TYPES
        ]
        for doomed in (*subtasks, issue):
            del self.issues[doomed.key]
            del self.by_id[doomed.id]
            self.by_project[doomed.project_key].remove(doomed)
            self.comments.pop(doomed.key, None)
            self.properties.pop(doomed.key, None)
            self.custom_values.pop(doomed.key, None)
        if issue.issue_type == "Epic":
            for child in self.issues.values():
                if child.parent_key == issue.key:
                    child.parent_key = None
                    self.touch(child)
        self.revision += 1

    # -- the Backend protocol ---------------------------------------------------------------

    def error(self, status: int, message: str, code: str | None = None) -> SandboxResponse:
        """Jira's error shape."""
        return SandboxResponse.json({"errorMessages": [message], "errors": {}}, status=status)

    def field_errors(self, errors: dict[str, str], status: int = 400) -> SandboxResponse:
        """Jira's per-field error shape."""
        return SandboxResponse.json({"errorMessages": [], "errors": errors}, status=status)

    def expire_sessions(self) -> SandboxResponse:
        """Basic and bearer auth have no session to expire: the call just gets a 401."""
        return self._unauthorized()

    def before_call(self, request: SandboxRequest, write: bool) -> SandboxResponse | None:
        """Check credentials: Cloud takes Basic email:api_token; Server a PAT or Basic
        username:password. A URL over the front end's limit is refused first."""
        too_long = request_too_long(request)
        if too_long is not None:
            return too_long
        header = request.headers.get("Authorization")
        if header is None and request.path.endswith("/serverInfo"):
            return None  # readable anonymously, as on real Jira
        return None if self._authorized(header) else self._unauthorized()

    def after_call(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """Nothing to add: the routes add rate-limit headers (``limits.py``)."""

    def control(self, request: SandboxRequest, path: str) -> SandboxResponse | None:
        """``POST /_sandbox/jira/limits`` (see ``limits.py``); ``POST /_sandbox/jira/bulk``
        ``{"polls_to_complete": n, "refuse": {key: reason}, "run_all": true}``."""
        if request.method != "POST" or path not in ("/jira/limits", "/jira/bulk"):
            return None
        payload = request.json() or {}
        try:
            if path == "/jira/limits":
                return SandboxResponse.json(self.limits.configure(payload))
            if not isinstance(payload, dict):
                raise ValueError("the bulk settings are a JSON object")
            polls = payload.get("polls_to_complete", self.bulk.polls_to_complete)
            if polls is not None and (not isinstance(polls, int) or polls < 1):
                raise ValueError("'polls_to_complete' must be a positive integer or null")
            refuse = payload.get("refuse", {})
            if not isinstance(refuse, dict):
                raise ValueError("'refuse' maps issue keys to reasons")
        except ValueError as exc:
            return SandboxResponse.json({"error": str(exc)}, status=400)
        self.bulk.polls_to_complete = polls
        self.bulk.refused.update({str(k): str(v) for k, v in refuse.items()})
        if payload.get("run_all"):
            self.bulk.run_all()
        return SandboxResponse.json(
            {"polls_to_complete": polls, "refused": sorted(self.bulk.refused)}
        )

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return not self.cloud and _same(value.strip(), self.personal_access_token)
        if scheme != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, secret = decoded.partition(":")
        expected = (self.email, self.api_token) if self.cloud else (self.username, self.password)
        return _same(user, expected[0]) and _same(secret, expected[1])

    def _unauthorized(self) -> SandboxResponse:
        return self.error(401, "Client must be authenticated to access this resource.")
