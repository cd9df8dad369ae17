"""HTTP routes of the Jira sandbox: metadata, projects and search (issue routes live in
``issue_routes.py``).

Routes are registered per literal API version (``/rest/api/2/...`` and, on Cloud,
``/rest/api/3/...``) so stats count each version apart. Server mode serves v2 only and
the legacy ``/search``; Cloud answers that one with 410 Gone, as Jira Cloud does now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from connectors.sandbox import schema
from connectors.sandbox.http import Handler, Router, SandboxRequest, SandboxResponse
from connectors.sandbox.jira.fields import FieldSelection
from connectors.sandbox.jira.jql import JqlError
from connectors.sandbox.jira.render import ISSUE_EXPANSIONS, Renderer, timestamp
from connectors.sandbox.jira.search import PAGE_RULES, SearchError

if TYPE_CHECKING:
    from connectors.sandbox.jira.models import JiraBackend

SEARCH_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)
MAX_PROPERTIES = 5
#: Properties of the POST bodies (SearchAndReconcileRequestBean for /search/jql,
#: SearchRequestBean for /search); Jira answers 400 to any other.
_BODY = ("jql", "maxResults", "fields", "expand", "properties", "fieldsByKeys")
ENHANCED_BODY = frozenset({*_BODY, "nextPageToken", "reconcileIssues"})
LEGACY_BODY = frozenset({*_BODY, "startAt", "validateQuery"})
#: Built-in permissions ``/mypermissions`` knows: key -> (id, name, description, type).
PERMISSIONS: dict[str, tuple[str, str, str, str]] = {
    "ADMINISTER": ("0", "Administer Jira", "Ability to administer Jira.", "GLOBAL"),
    "BROWSE_PROJECTS": ("10", "Browse Projects", "Ability to browse projects.", "PROJECT"),
    "CREATE_ISSUES": ("11", "Create Issues", "Ability to create issues.", "PROJECT"),
    "EDIT_ISSUES": ("12", "Edit Issues", "Ability to edit issues.", "PROJECT"),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "Ability to assign issues.", "PROJECT"),
    "ADD_COMMENTS": ("15", "Add Comments", "Ability to comment on issues.", "PROJECT"),
    "DELETE_ISSUES": ("16", "Delete Issues", "Ability to delete issues.", "PROJECT"),
    "DELETE_ALL_COMMENTS": (
        "36",
        "Delete All Comments",
        "Ability to delete all comments made on issues.",
        "PROJECT",
    ),
    "DELETE_OWN_COMMENTS": (
        "37",
        "Delete Own Comments",
        "Ability to delete own comments made on issues.",
        "PROJECT",
    ),
    "ADMINISTER_PROJECTS": (
        "23",
        "Administer Projects",
        "Ability to administer a project.",
        "PROJECT",
    ),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "Ability to transition issues.", "PROJECT"),
    "BULK_CHANGE": (
        "33",
        "Make bulk changes",
        "Ability to modify a collection of issues at once.",
        "GLOBAL",
    ),
}


#: The longest request target (path and query) the sandbox's front end takes: 8 KB, the
#: default of the proxies and servers in front of Jira (nginx, Apache, Tomcat).
MAX_REQUEST_TARGET = 8192


def request_too_long(request: SandboxRequest) -> SandboxResponse | None:
    """414, as a front end answers a URL over :data:`MAX_REQUEST_TARGET` before Jira sees
    it (so a client that puts a long JQL in a GET learns it as it would live)."""
    query = urlencode([(k, v) for k, values in request.query.items() for v in values])
    length = len(request.path) + (len(query) + 1 if query else 0)
    if length <= MAX_REQUEST_TARGET:
        return None
    return SandboxResponse.text(
        "<html><head><title>414 Request-URI Too Large</title></head><body><center><h1>414 "
        "Request-URI Too Large</h1></center></body></html>",
        status=414,
        content_type="text/html",
    )


class BadRequest(ValueError):
    """A parameter Jira would reject with 400."""


def int_param(value: Any, name: str, default: int | None = None) -> int | None:
    """An integer query/body parameter, or 400."""
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"The value '{value}' for parameter '{name}' is not a number.") from None


def listed(value: Any) -> list[str]:
    """A body value given as a list or a comma-separated string."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        out.extend(part.strip() for part in str(item).split(",") if part.strip())
    return out


class Api:
    """Shared helpers of one API version's handlers."""

    def __init__(self, backend: JiraBackend, version: str) -> None:
        self.backend = backend
        self.version = version
        self.prefix = f"/rest/api/{version}"

    def renderer(self, request: SandboxRequest) -> Renderer:
        """A renderer for this request's base URL and version."""
        return Renderer(self.backend, request.base_url, self.version)

    def guarded(self, handler: Handler) -> Handler:
        """Turn JQL and parameter errors into Jira's 400."""

        def run(request: SandboxRequest) -> SandboxResponse:
            try:
                return handler(request)
            except (JqlError, SearchError, BadRequest) as exc:
                return self.backend.error(400, str(exc))

        return run

    def add(
        self, router: Router, method: str, path: str, handler: Handler, write: bool | None = None
    ) -> None:
        """Register ``handler`` at ``/rest/api/{version}{path}``, behind the rate limits
        when they are on (``limits.py``: per endpoint and method, per issue written)."""
        template = self.prefix + path
        endpoint = f"{method} {template}"
        writes = method not in ("GET", "HEAD") if write is None else write
        guarded = self.guarded(handler)
        limits = self.backend.limits

        def limited(request: SandboxRequest) -> SandboxResponse:
            if not limits.active:
                return guarded(request)
            issue = None
            ref = request.path_params.get("key") if writes else None
            if ref is not None:
                found = self.backend.get_issue(ref)
                issue = found.key if found is not None else ref
            refused = limits.admit(endpoint, issue)
            if refused is not None:
                return refused
            response = guarded(request)
            limits.decorate(endpoint, response)
            return response

        router.add(method, template, limited, write)


class MetaRoutes(Api):
    """serverInfo, myself, fields, issue types, projects and versions."""

    def register(self, router: Router) -> None:
        """Add this version's routes."""
        self.add(router, "GET", "/serverInfo", self.server_info)
        self.add(router, "GET", "/myself", self.myself)
        self.add(router, "GET", "/mypermissions", self.my_permissions)
        self.add(router, "GET", "/field", self.fields)
        self.add(router, "GET", "/issuetype", self.issue_types)
        self.add(router, "GET", "/project", self.projects)
        self.add(router, "GET", "/project/{key}", self.project)
        self.add(router, "GET", "/project/{key}/versions", self.versions)

    def server_info(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /serverInfo``: the client decides Cloud by ``deploymentType``."""
        cloud = self.backend.cloud
        numbers = [1001, 0, 0] if cloud else [9, 12, 15]
        doc: dict[str, Any] = {
            "baseUrl": request.base_url,
            "displayUrl": request.base_url,
            "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.15",
            "versionNumbers": numbers,
            "deploymentType": "Cloud" if cloud else "Server",
            "buildNumber": 100289 if cloud else 9120015,
            "buildDate": "2025-12-01T00:00:00.000+0000",
            "serverTime": timestamp(self.backend.now(), self.backend.zone),
            "scmInfo": "5f1d6b0c9e2a4d7b8c3e1f0a9b8c7d6e5f4a3b2c",
            "serverTitle": "Jira Sandbox",
        }
        return SandboxResponse.json(doc)

    def myself(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /myself``: the calling user, with the time zone JQL dates are read in."""
        doc = self.renderer(request).user(self.backend.me) or {}
        doc.update(
            {
                "locale": "en_US",
                "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []},
                "expand": "groups,applicationRoles",
            }
        )
        return SandboxResponse.json(doc)

    def my_permissions(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /mypermissions``: which of ``permissions`` the caller holds, globally or
        in ``projectKey``/``projectId`` (404 for an unknown project or one it cannot browse,
        as Jira answers); ``backend.denied_permissions`` takes some away."""
        keys = listed(request.arg("permissions"))
        if not keys:
            return self.backend.error(400, "The 'permissions' query parameter is required.")
        unknown = [key for key in keys if key not in PERMISSIONS]
        if unknown:
            return self.backend.error(400, f"Unrecognized permission keys: {', '.join(unknown)}")
        denied = self.backend.denied_permissions
        project = request.arg("projectKey") or request.arg("projectId")
        if project and (self.backend.get_project(project) is None or "BROWSE_PROJECTS" in denied):
            return self.backend.error(404, f"No project could be found with key '{project}'.")
        out: dict[str, Any] = {}
        for key in keys:
            permission_id, name, description, kind = PERMISSIONS[key]
            out[key] = {
                "id": permission_id,
                "key": key,
                "name": name,
                "type": kind,
                "description": description,
                "havePermission": key not in denied,
            }
        return SandboxResponse.json({"permissions": out})

    def fields(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /field``."""
        return SandboxResponse.json(self.backend.site_fields.to_json())

    def issue_types(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /issuetype``."""
        renderer = self.renderer(request)
        return SandboxResponse.json([renderer.issue_type(n) for n in schema.JIRA_ISSUE_TYPES])

    def projects(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /project``."""
        renderer = self.renderer(request)
        out = []
        for key in self.backend.project_order:
            doc = renderer.project_ref(self.backend.projects[key])
            doc.update(
                {
                    "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                    "style": "classic",
                    "isPrivate": False,
                    "properties": {},
                }
            )
            out.append(doc)
        return SandboxResponse.json(out)

    def _project_or_404(self, request: SandboxRequest) -> Any:
        key = request.path_params["key"]
        project = self.backend.get_project(key)
        if project is None:
            return self.backend.error(404, f"No project could be found with key '{key}'.")
        return project

    def project(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /project/{key}``."""
        found = self._project_or_404(request)
        if isinstance(found, SandboxResponse):
            return found
        return SandboxResponse.json(self.renderer(request).project(found))

    def versions(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /project/{key}/versions``."""
        found = self._project_or_404(request)
        if isinstance(found, SandboxResponse):
            return found
        renderer = self.renderer(request)
        versions = self.backend.project_versions[found.key]
        return SandboxResponse.json([renderer.version_doc(v) for v in versions])


class SearchRoutes(Api):
    """Enhanced search (Cloud), legacy search (Server; 410 on Cloud), approximate count."""

    def register(self, router: Router) -> None:
        """Add this version's routes (POST searches are reads)."""
        for method in ("GET", "POST"):
            if self.backend.cloud:
                self.add(router, method, "/search/jql", self.enhanced, write=False)
            self.add(router, method, "/search", self.legacy, write=False)
        if self.backend.cloud:
            self.add(router, "POST", "/search/approximate-count", self.count, write=False)

    def _params(self, request: SandboxRequest, known: frozenset[str]) -> dict[str, Any]:
        """The search parameters of a GET's query or a POST's JSON body (``known``: the
        body's properties in the endpoint's request schema; Jira refuses any other)."""
        if request.method == "POST":
            body = request.json()
            if not isinstance(body, dict):
                raise BadRequest("The request body must be a JSON object.")
            unknown = sorted(set(body) - known)
            if unknown:
                raise BadRequest(f'Unrecognized field "{unknown[0]}" (not marked as ignorable).')
            return {
                "jql": body.get("jql") or "",
                "fields": listed(body.get("fields")),
                "expand": listed(body.get("expand")),
                "properties": listed(body.get("properties")),
                "maxResults": int_param(body.get("maxResults"), "maxResults"),
                "startAt": int_param(body.get("startAt"), "startAt", 0),
                "nextPageToken": body.get("nextPageToken"),
            }
        return {
            "jql": request.arg("jql") or "",
            "fields": request.args("fields"),
            "expand": request.args("expand"),
            "properties": request.args("properties"),
            "maxResults": int_param(request.arg("maxResults"), "maxResults"),
            "startAt": int_param(request.arg("startAt"), "startAt", 0),
            "nextPageToken": request.arg("nextPageToken"),
        }

    @staticmethod
    def _properties(params: dict[str, Any]) -> tuple[str, ...]:
        properties = tuple(params["properties"])
        if len(properties) > MAX_PROPERTIES:
            raise BadRequest(f"The number of properties can not exceed {MAX_PROPERTIES}.")
        return properties

    def _top_level(
        self, doc: dict[str, Any], expand: set[str], sel: FieldSelection, renderer: Renderer
    ) -> None:
        if "names" in expand:
            doc["names"] = renderer.names(sel)
        if "schema" in expand:
            doc["schema"] = renderer.schemas(sel)

    def enhanced(self, request: SandboxRequest) -> SandboxResponse:
        """``/search/jql``: token pages, id-only by default, no total."""
        params = self._params(request, ENHANCED_BODY)
        selection = self.backend.site_fields.select(params["fields"], default=("id",))
        properties = self._properties(params)
        requested = params["maxResults"] or None  # 0 means the default here
        size = PAGE_RULES["search/jql"].size(requested, selection.identity_only)
        issues, token = self.backend.search.token_page(params["jql"], params["nextPageToken"], size)
        expand = set(params["expand"])
        renderer = self.renderer(request)
        issue_expand = frozenset(expand & ISSUE_EXPANSIONS)
        doc: dict[str, Any] = {
            "issues": [
                renderer.issue(i, selection, issue_expand, properties, full=False) for i in issues
            ],
            "isLast": token is None,
        }
        if token is not None:
            doc["nextPageToken"] = token
        self._top_level(doc, expand, selection, renderer)
        return SandboxResponse.json(doc)

    def legacy(self, request: SandboxRequest) -> SandboxResponse:
        """``/search``: startAt/total pages on Server; removed (410) on Cloud."""
        if self.backend.cloud:
            return self.backend.error(410, SEARCH_REMOVED)
        params = self._params(request, LEGACY_BODY)
        selection = self.backend.site_fields.select(params["fields"], default=("*navigable",))
        properties = self._properties(params)
        start = max(0, params["startAt"] or 0)
        size = PAGE_RULES["search"].size(params["maxResults"])
        issues, total = self.backend.search.offset_page(params["jql"], start, size)
        expand = set(params["expand"])
        renderer = self.renderer(request)
        issue_expand = frozenset(expand & ISSUE_EXPANSIONS)
        doc: dict[str, Any] = {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": size,
            "total": total,
            "issues": [renderer.issue(i, selection, issue_expand, properties) for i in issues],
        }
        self._top_level(doc, expand, selection, renderer)
        return SandboxResponse.json(doc)

    def count(self, request: SandboxRequest) -> SandboxResponse:
        """``POST /search/approximate-count``."""
        body = request.json()
        jql = body.get("jql") if isinstance(body, dict) else None
        return SandboxResponse.json({"count": self.backend.search.count(str(jql or ""))})


def build_router(backend: JiraBackend) -> Router:
    """Every Jira route of a backend."""
    from connectors.sandbox.jira.bulk import BulkRoutes
    from connectors.sandbox.jira.issue_routes import IssueRoutes

    router = Router()
    versions = ("2", "3") if backend.cloud else ("2",)
    for version in versions:
        MetaRoutes(backend, version).register(router)
        SearchRoutes(backend, version).register(router)
        IssueRoutes(backend, version).register(router)
    if backend.cloud:  # Data Center has no REST bulk edit
        BulkRoutes(backend, "3").register(router)
    return router
