"""The Jira connector: plain dict records out, plain write requests in, over ``jira.JIRA``.

Every call goes through :class:`~connectors.jira.client.JiraClient`, the adapter that
alone touches ``jira.JIRA``'s private API: public client methods where they cost exactly
one call (``server_info``, ``myself``, ``add_comment``, issue properties), the client's
own session and URL builder for searches, the field list, comment pages and issue
updates (see that module for why). Auth, TLS and the client's retries apply either way.

Retries: the client's ResilientSession retries 429, a 503 with Retry-After and dropped
connections by itself, and gives up at once on 500, 502, 504 and a 503 without
Retry-After. Exactly those it gives up on are retried here (:meth:`JiraConnector._retried`,
the one :class:`~connectors.retry.RetryPolicy`), around reads and idempotent writes; a
PUT that posts comments is never re-sent blind (:meth:`JiraConnector._put_not_resent`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote as quote_path
from urllib.parse import urlsplit

import requests
from jira.exceptions import JIRAError

from connectors import jql
from connectors.calls import CallMeter
from connectors.exceptions import ConfigError, ConnectorError, RemoteError
from connectors.jira.bulk import BulkEditor
from connectors.jira.client import JiraClient, build_client
from connectors.jira.errors import (
    ErrorBoundary,
    not_retried_by_client,
    read_json,
    retry_after_of,
)
from connectors.jira.fields import FieldCatalog, askable
from connectors.jira.paging import (
    CLOUD_PAGE,
    KEYS_PAGE,
    SERVER_PAGE,
    IssueCursor,
    IssuePull,
    Page,
    RawIssue,
    offset_pages,
    token_pages,
)
from connectors.jira.settings import SIDE, JiraSettings
from connectors.retry import RetryPolicy, TransientFailure

T = TypeVar("T")

#: Fields every Jira site has: a /field answer without them is not the site's catalogue.
_SYSTEM_FIELDS = ("summary", "status", "issuetype", "updated")

#: Comments read per page when looking for a marker (Jira Cloud's default and maximum).
COMMENT_PAGE = 5000

#: The longest search URL sent as a GET, in characters (scheme to query). A longer one (a
#: scope of hundreds of projects, a long [jira] jql) goes as the endpoint's POST form,
#: with the same parameters in a JSON body: the proxies and servers in front of Jira
#: commonly refuse request lines over 8 KB (nginx, Apache; Tomcat counts the headers in
#: its 8 KB too), and this leaves room for the headers. Short searches stay GETs, so the
#: URL in logs and proxies still shows what was asked.
MAX_GET_URL = 6000

# ORDER BY key: a key never changes while we page, so an issue updated mid-pull keeps
# its place. Ordering by `updated` would move it to the end and shift every offset after
# its old place by one, silently skipping an issue on Server's startAt paging.
_ORDER = jql.order_by("key ASC")


@dataclass(frozen=True)
class ServerFacts:
    """What the first contact learned about the site and the signed-in user."""

    deployment: Literal["cloud", "server"]
    version: tuple[int, ...]
    base_url: str
    user: str  # accountId on Cloud, user name on Server/DC
    display_name: str
    time_zone: str  # the user's zone: how Jira reads zone-less JQL dates
    clock_offset_ms: int  # server clock minus ours, at first contact

    def to_json(self) -> dict[str, Any]:
        """For a cache in the state store (nothing secret in it)."""
        return {
            "deployment": self.deployment,
            "version": list(self.version),
            "base_url": self.base_url,
            "user": self.user,
            "display_name": self.display_name,
            "time_zone": self.time_zone,
            "clock_offset_ms": self.clock_offset_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerFacts:
        """From :meth:`to_json`."""
        deployment: Literal["cloud", "server"] = (
            "cloud" if data.get("deployment") == "cloud" else "server"
        )
        return cls(
            deployment=deployment,
            version=tuple(int(v) for v in data.get("version") or ()),
            base_url=str(data.get("base_url") or ""),
            user=str(data.get("user") or ""),
            display_name=str(data.get("display_name") or ""),
            time_zone=str(data.get("time_zone") or "UTC"),
            clock_offset_ms=int(data.get("clock_offset_ms") or 0),
        )


@dataclass(frozen=True)
class CommentInfo:
    """One comment as reconcile judges it: id, body text (ADF as JSON text) and author
    (accountId on Cloud, user name on Server/DC; "" when Jira does not say)."""

    id: str
    body: str
    author: str


def _parse_jira_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


class JiraConnector:
    """Pull and push one Jira site through an injected client (:func:`build_client`).

    Constructing it makes no call; :meth:`connect` (run on first use) reads serverInfo and
    /myself, and the field catalogue is read once, on first need.
    """

    def __init__(
        self,
        client: JiraClient,
        settings: JiraSettings,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.boundary = ErrorBoundary(settings)
        client.on_response(self.boundary.observe)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._facts: ServerFacts | None = None
        self._catalog: FieldCatalog | None = None
        self._sleep: Callable[[float], None] = time.sleep  # between our own write retries
        #: Cloud's bulk edit of many issues in one call (:mod:`connectors.jira.bulk`).
        self.bulk = BulkEditor(self)

    # -- first contact ----------------------------------------------------------------------

    def connect(self) -> ServerFacts:
        """Read serverInfo and /myself (once): deployment, version, the user's time zone.

        The first call runs without the client's retries, so a wrong URL or CA fails in
        seconds rather than after minutes of back-off; a 429/503 then gets the normal
        retries.
        """
        if self._facts is not None:
            return self._facts
        with self.boundary.guard("read serverInfo", connecting=True):
            info = self._server_info()
        with self.boundary.guard("read the signed-in user (/myself)", connecting=True):
            me = self._retried(self.client.myself)
        self._facts = self._apply(info, me)
        return self._facts

    def _server_info(self) -> Any:
        try:
            with self.client.without_retries():
                return self._retried(self.client.server_info)
        except JIRAError as exc:
            if exc.status_code not in (429, 503):
                raise
        return self._retried(self.client.server_info)  # now with the client's retries

    def _unreadable(self, endpoint: str, problem: str, hint: str = "") -> RemoteError:
        """A 2xx answer of the first contact we cannot use: a remote answer (exit 3)."""
        path = self.client.path_of(endpoint)
        return RemoteError(
            f"Jira at {self.settings.url} answered GET {path} with {problem}; nothing was "
            f"cached; the next cycle tries again{hint}",
            side=SIDE,
        )

    def _apply(self, info: Any, me: Any) -> ServerFacts:
        # The client reads an empty 200 as {} (after three tries of its own): taking that,
        # or a document without deploymentType, as "Server" would be cached for hours and
        # page a Cloud site with the removed /search.
        if not isinstance(info, Mapping) or not info:
            raise self._unreadable("serverInfo", "an empty document or one that is not an object")
        wanted = self.settings.deployment
        reported = info.get("deploymentType")
        if not isinstance(reported, str) or not reported:
            if wanted == "auto" or not isinstance(info.get("versionNumbers"), list):
                raise self._unreadable(
                    "serverInfo",
                    "a document without deploymentType",
                    '; if it persists, set [jira] deployment = "cloud" or "server"'
                    if wanted == "auto"
                    else "",
                )
            reported = "Cloud" if wanted == "cloud" else "Server"  # as configured
        if not isinstance(me, Mapping) or not (me.get("accountId") or me.get("name")):
            raise self._unreadable("myself", "a document without accountId or name")
        deployment: Literal["cloud", "server"] = "cloud" if reported == "Cloud" else "server"
        if wanted != "auto" and wanted != deployment:
            raise ConfigError(
                f"[jira] deployment is {wanted} but {self.settings.url} reports "
                f"deploymentType {reported}; set deployment to auto or {deployment}",
                side=SIDE,
            )
        # What the client reads for Cloud or not; it skipped serverInfo itself.
        self.client.set_deployment("Cloud" if deployment == "cloud" else reported)
        try:
            version = tuple(int(v) for v in info.get("versionNumbers") or (0, 0, 0))
        except (TypeError, ValueError):
            raise self._unreadable("serverInfo", "unreadable versionNumbers") from None
        self.client.set_version(version)
        server_time = _parse_jira_time(info.get("serverTime"))
        offset = 0
        if server_time is not None:
            offset = int((server_time - self._clock()).total_seconds() * 1000)
        return ServerFacts(
            deployment=deployment,
            version=version,
            base_url=str(info.get("baseUrl") or self.settings.url),
            user=str(me.get("accountId") or me.get("name") or ""),
            display_name=str(me.get("displayName") or ""),
            time_zone=str(me.get("timeZone") or "UTC"),
            clock_offset_ms=offset,
        )

    def restore(self, facts: ServerFacts, fields: Any) -> bool:
        """Use facts and a field list cached from an earlier run instead of reading them
        again (three calls a run saved); the deployment must still match the config.
        False when the field list is not one a site could have (then it is read afresh on
        first need)."""
        wanted = self.settings.deployment
        if wanted != "auto" and wanted != facts.deployment:
            raise ConfigError(
                f"[jira] deployment is {wanted} but the cached facts say {facts.deployment}",
                side=SIDE,
            )
        self.client.set_deployment("Cloud" if facts.deployment == "cloud" else "Server")
        self.client.set_version(facts.version)
        self._facts = facts
        if _malformed_catalog(fields):
            self._catalog = None
            return False
        self._catalog = FieldCatalog(fields)
        return True

    def close(self) -> None:
        """Close the client's HTTP session."""
        self.client.close()

    def twin(self) -> JiraConnector:
        """Another connector to the same site, with a client (HTTP session) of its own: for
        a worker thread (a ``jira.JIRA`` session toggles its retries per call, so two
        threads must not share one). It shares the call meter, the pacer and what was
        learnt at first contact (no call made)."""
        client = build_client(self.settings, self.client.meter, self.client.pacer)
        other = JiraConnector(client, self.settings, clock=self._clock)
        facts = self.connect()
        client.set_deployment("Cloud" if facts.deployment == "cloud" else "Server")
        client.set_version(facts.version)
        other._facts, other._catalog, other._sleep = facts, self._catalog, self._sleep
        return other

    @property
    def is_cloud(self) -> bool:
        """Whether the site is Jira Cloud (connects first if needed)."""
        return self.connect().deployment == "cloud"

    # -- fields -----------------------------------------------------------------------------

    def field_catalog(self) -> FieldCatalog:
        """Every field of the site, read with one ``GET /field`` per connector."""
        if self._catalog is None:
            self._catalog = self._read_catalog()
        return self._catalog

    def reread_field_catalog(self) -> FieldCatalog:
        """Read ``GET /field`` again, whatever is held (read earlier or restored from a
        cache): before a configured field that does not resolve is called a config error,
        in case the catalogue held came from a garbled answer."""
        self._catalog = self._read_catalog()
        return self._catalog

    def _read_catalog(self) -> FieldCatalog:
        # Not client.fields(): it reads an empty 200 as {}, which would resolve nothing
        # and end every run with "no field named ..." (exit 2) instead of a retry (exit 3).
        action = "read the field list (/field)"
        fields = self._read("field", {}, action)
        problem = _malformed_catalog(fields)
        if problem:
            path = self.client.path_of("field")
            raise RemoteError(
                f"Jira at {self.settings.url} answered {action} (GET {path}) with {problem}; "
                "nothing of it was used or cached; the next cycle tries again (check for a "
                "proxy that rewrites answers if it persists)",
                side=SIDE,
            )
        return FieldCatalog(fields)

    def resolve_field(self, ref: str, setting: str | None = None) -> str:
        """The id of a field named by display name or id; ConfigError when missing or
        ambiguous (``setting``: the config key, for the message)."""
        return self.field_catalog().resolve(ref, setting)

    def resolve_fields(self, refs: Iterable[str]) -> dict[str, str]:
        """``{ref: field id}`` for several names or ids."""
        catalog = self.field_catalog()
        return {ref: catalog.resolve(ref) for ref in refs}

    # -- what `check --online` asks -----------------------------------------------------------

    def my_permissions(self, keys: Sequence[str], project: str | None = None) -> dict[str, bool]:
        """``{permission key: held}`` for the signed-in user, in ``project`` or globally (one
        ``GET /mypermissions``); ConfigError when the project is missing or not browsable."""
        params = {"permissions": ",".join(keys)}
        if project is not None:
            params["projectKey"] = project
        where = f"project {project}" if project else "the site"
        try:
            with self.boundary.guard(f"read the user's permissions in {where}"):
                doc = self._retried(lambda: self.client.get_json("mypermissions", params))
        except RemoteError as exc:
            if project is None or exc.status != 404:
                raise
            raise ConfigError(
                f"Jira has no project {project} that this user can browse; check the key in "
                "[jira] projects, or ask a Jira admin for Browse Projects on it",
                side=SIDE,
            ) from None
        held = (doc or {}).get("permissions") or {}
        return {key: bool((held.get(key) or {}).get("havePermission")) for key in keys}

    def scope_has_issues(self) -> bool:
        """Whether the configured scope matches any issue: one search for one key (a JQL the
        site refuses raises QueryError)."""
        first = next(iter(self._search(self.scope_jql(), "id,key", 1)), [])
        return bool(first)

    # -- searches ---------------------------------------------------------------------------

    def scope_jql(self, projects: Sequence[str] | None = None) -> str:
        """The configured scope as JQL (every value quoted); ``projects`` narrows it to
        some of the configured projects (a worker's shards)."""
        keys = self.settings.projects
        if projects is not None:
            unknown = sorted(set(projects) - set(keys))
            if unknown:
                raise ValueError(f"projects outside the configured scope: {unknown}")
            keys = tuple(projects)
        return jql.scope(keys, self.settings.jql)

    def pull_issues(
        self,
        fields: Sequence[str],
        since: IssueCursor | None = None,
        projects: Sequence[str] | None = None,
        *,
        on_total: Callable[[int], None] | None = None,
    ) -> IssuePull:
        """Issues in scope updated since ``since`` (all when None), as pages of raw issues.

        ``fields`` are field ids (see :meth:`resolve_field`); ``updated`` is always added.
        The lower bound is written in epoch milliseconds minus the overlap, so no user time
        zone shifts it; the pull drops (key, updated) pairs it already delivered. Read
        :attr:`IssuePull.cursor` after the last page and save it with what it covers.

        ``on_total`` (progress bars) is told how many issues the search matches, where the
        API says: Server's ``/search`` pages carry ``total``; Cloud's token pages do not,
        so one ``POST /search/approximate-count`` is made first, only when it is given.
        """
        facts = self.connect()
        wanted = self._check_fields(fields)
        overlap_ms = self.settings.overlap_seconds * 1000
        bound = None
        if since is not None:
            bound = jql.updated_since(since.lower_bound(overlap_ms))
        where = jql.all_of(self.scope_jql(projects), bound)
        query = where + _ORDER
        started_ms = int(self._clock().timestamp() * 1000) + facts.clock_offset_ms
        cloud = facts.deployment == "cloud"
        if on_total is not None and cloud:
            total = self._approximate_count(where)
            if total is not None:
                on_total(total)
        size = CLOUD_PAGE if cloud else SERVER_PAGE
        pages = self._search(query, ",".join(wanted), size, None if cloud else on_total)
        return IssuePull(pages, since, overlap_ms, started_ms)

    def _approximate_count(self, query: str) -> int | None:
        """How many issues ``query`` matches, by Cloud's estimate (one call); None when
        the site cannot say. Only for progress bars, so a refusal never stops a pull."""
        try:
            with self.boundary.guard("count the issues to pull", jql=query):
                doc = self.client.get_json(
                    "search/approximate-count", {"jql": query}, use_post=True
                )
        except ConnectorError:
            return None
        count = doc.get("count") if isinstance(doc, dict) else None
        return count if isinstance(count, int) and count >= 0 else None

    def keys_with_comment_text(self, phrase: str) -> set[str]:
        """Keys of the issues in scope with a comment that contains ``phrase`` as Jira's text
        index reads it (words in order, punctuation and case ignored): one search, keys
        only, paged. ``comment ~ "\\"a b\\""`` is Jira's phrase search (a bare ``"a b"``
        would match the words in any order)."""
        clause = f"comment ~ {jql.quote(jql.quote(phrase))}"
        query = jql.all_of(self.scope_jql(), clause) + _ORDER
        found: set[str] = set()
        for page in self._search(query, "id,key", KEYS_PAGE):
            found.update(str(issue["key"]) for issue in page)
        return found

    def list_keys(self, projects: Sequence[str] | None = None) -> Iterator[list[tuple[str, str]]]:
        """Every issue in scope as pages of (id, key), up to 5000 a page: for deletes."""
        for page in self._search(self.scope_jql(projects) + _ORDER, "id,key", KEYS_PAGE):
            yield [(str(issue["id"]), str(issue["key"])) for issue in page]

    def projects(self) -> list[dict[str, Any]]:
        """Every project the user can browse, in one call (``GET /project``: deprecated on
        Cloud in favour of the paged ``/project/search``, but served by Cloud and every
        Server/Data Center version): ``key``, ``name`` and, on Cloud, ``simplified``."""
        action = "list the projects (/project)"
        doc = self._read("project", {}, action)
        if not isinstance(doc, list):
            path = self.client.path_of("project")
            raise RemoteError(
                f"Jira at {self.settings.url} answered GET {path} with a document that is "
                "not a list of projects; try again (check for a proxy that rewrites answers "
                "if it persists)",
                side=SIDE,
            )
        return [p for p in doc if isinstance(p, dict) and isinstance(p.get("key"), str)]

    def sample_issues(
        self, fields: Sequence[str], size: int = 100, projects: Sequence[str] | None = None
    ) -> list[RawIssue]:
        """Up to ``size`` issues in scope (or in ``projects``), most recently updated
        first, with ``fields`` (ids): one search, for judging what the fields hold
        (`init --discover`, which chooses the projects before a config names them)."""
        wanted = self._check_fields(fields)
        where = self.scope_jql() if projects is None else jql.scope(projects, self.settings.jql)
        query = where + jql.order_by("updated DESC")
        return next(iter(self._search(query, ",".join(wanted), size)), [])

    def _check_fields(self, fields: Sequence[str]) -> list[str]:
        """The field ids to ask for: only those the site has (:func:`askable`: an older
        Server's /field has no ``parent`` or ``statuscategorychangedate``); ConfigError for
        a custom field id the site lacks, or a name passed as an id."""
        wanted = list(dict.fromkeys([*fields, "updated"]))
        asked, unknown = askable(self.field_catalog(), wanted)
        if unknown:
            raise ConfigError(
                f"Jira has no field with id {', '.join(unknown)}; pass ids from "
                "resolve_field() (names are not accepted here)",
                side=SIDE,
            )
        return asked

    def _search(
        self,
        query: str,
        fields: str,
        page_size: int,
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[list[RawIssue]]:
        """One search, paged the way the deployment requires (``on_total``: told the
        ``total`` of Server's first page)."""
        if self.connect().deployment == "cloud":

            def fetch_token(token: str | None) -> Page:
                params: dict[str, Any] = {"jql": query, "maxResults": page_size, "fields": fields}
                if token:
                    params["nextPageToken"] = token
                return self._get_page("search/jql", params, query)

            return token_pages(fetch_token)

        def fetch_offset(start: int, size: int) -> Page:
            params = {
                "jql": query,
                "startAt": start,
                "maxResults": size,
                "fields": fields,
                "validateQuery": "true",
            }
            page = self._get_page("search", params, query)
            if on_total is not None and start == 0 and isinstance(page.get("total"), int):
                on_total(page["total"])
            return page

        return offset_pages(fetch_offset, page_size)

    def _read(self, path: str, params: dict[str, Any], action: str, **guard: Any) -> Any:
        """GET one API document. Not ``client.get_json``: that logs a body it cannot parse
        in full (megabytes of a proxy page) and reads an empty body as ``{}``."""
        url = self.client.url(path)
        with self.boundary.guard(action, **guard):
            response = self._retried(lambda: self.client.get(url, params))
        return read_json(response, action, self.settings.url)

    def _read_posted(self, path: str, body: dict[str, Any], action: str, **guard: Any) -> Any:
        """POST a read (a search in its POST form) and read the answer as :meth:`_read`
        does; retried like a GET, since it changes nothing."""
        url = self.client.url(path)
        data = json.dumps(body)
        with self.boundary.guard(action, **guard):
            response = self._retried(lambda: self.client.post(url, data))
        return read_json(response, action, self.settings.url)

    # -- the answers the client does not retry ------------------------------------------------

    @property
    def retry_policy(self) -> RetryPolicy:
        """Our retries of what the client gives up on: ``max_retries`` more attempts, like
        the client's own, waiting Retry-After (capped) or backing off exponentially."""
        return RetryPolicy(attempts=self.settings.max_retries + 1)

    def retried_call(self, call: Callable[[], T]) -> T:
        """:meth:`_retried` for the connector's helpers (:mod:`connectors.jira.bulk`)."""
        return self._retried(call)

    def _retried(self, call: Callable[[], T]) -> T:
        """Run an idempotent client call (a read, a label or field PUT), retrying exactly
        the answers the client gave up on at once (:func:`not_retried_by_client`: 500,
        502, 504, a 503 without Retry-After) under :attr:`retry_policy`. The last refusal
        propagates as the client raised it, for the boundary to classify."""

        def attempt() -> T:
            try:
                return call()
            except JIRAError as exc:
                if not not_retried_by_client(exc):
                    raise
                raise TransientFailure(f"HTTP {exc.status_code}", retry_after_of(exc)) from exc

        return self._under_policy(attempt)

    def _under_policy(self, attempt: Callable[[], T]) -> T:
        try:
            return self.retry_policy.call(attempt, self._sleep)
        except TransientFailure as exc:  # retries spent: the boundary classifies the refusal
            cause = exc.__cause__
            assert isinstance(cause, JIRAError)
            raise cause from None

    def _get_page(self, path: str, params: dict[str, Any], query: str) -> Page:
        """One search page: a GET with the parameters in the URL while that URL fits in
        :data:`MAX_GET_URL`, else the endpoint's POST form with them in a JSON body (a
        read all the same: the call meter counts it as one, JIRA_READ_ONLY_POSTS)."""
        url = self.client.url(path)
        if len(requests.Request("GET", url, params=params).prepare().url or url) <= MAX_GET_URL:
            method = "GET"
            page = self._read(path, params, "search issues", jql=query)
        else:
            method = "POST"
            page = self._read_posted(path, _search_body(params), "search issues", jql=query)
        where = f"search issues ({method} {urlsplit(url).path})"
        problem = _malformed_page(page, str(params.get("fields") or ""))
        if problem:
            # Storing it would file a broken issue under a cursor that then moves past it.
            raise RemoteError(
                f"Jira at {self.settings.url} answered {where} with {problem}; nothing of "
                "that page was stored; the next cycle tries again (check for a proxy that "
                "rewrites answers if it persists)",
                side=SIDE,
            )
        return page

    def read_issue(self, key: str, fields: Sequence[str]) -> RawIssue | None:
        """One issue by key (``GET /issue/{key}``), with the fields a pull asks for; None
        when Jira has no such issue (deleted, or moved out of the user's sight). A moved
        issue comes back under its new key."""
        wanted = self._check_fields(fields)
        path = f"issue/{quote_path(key, safe='')}"
        try:
            doc = self._read(path, {"fields": ",".join(wanted)}, f"read issue {key}")
        except RemoteError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(doc, dict) or not isinstance(doc.get("key"), str) or not doc["key"]:
            raise RemoteError(
                f"Jira answered the read of issue {key} without an issue key; the next "
                "cycle tries again",
                side=SIDE,
            )
        return doc  # type: ignore[return-value]

    # -- writes -----------------------------------------------------------------------------

    def update_issue(
        self,
        key: str,
        *,
        add_labels: Iterable[str] = (),
        remove_labels: Iterable[str] = (),
        fields: Mapping[str, Any] | None = None,
        comments: Iterable[str] = (),
        unposted: Callable[[list[str]], list[str]] | None = None,
    ) -> bool:
        """Add/remove labels, set fields and add comments (wiki-markup bodies, API v2) in ONE
        ``PUT /issue/{key}``; False when there is nothing to change (no call). A refusal
        raises RejectedRecord for ``key``.

        ``unposted``: given comment bodies, those the issue does not carry yet (it reads
        the comments back); with it, a comment-bearing PUT answered with a 5xx that may
        have been applied is sent again in this cycle with only what is still missing."""
        ops = [{"add": label} for label in add_labels]
        ops += [{"remove": label} for label in remove_labels]
        updates = dict(fields or {})

        def body(bodies: Sequence[str]) -> str | None:
            notes = [{"add": {"body": text}} for text in bodies]
            payload: dict[str, Any] = {}
            if ops or notes:
                payload["update"] = {
                    **({"labels": ops} if ops else {}),
                    **({"comment": notes} if notes else {}),
                }
            if updates:
                payload["fields"] = updates
            return json.dumps(payload) if payload else None

        bodies = list(comments)
        first = body(bodies)
        if first is None:
            return False
        url = self.client.url(f"issue/{quote_path(key, safe='')}")
        with self.boundary.guard(f"update issue {key}", key=key):
            if bodies:
                self._put_not_resent(url, body, bodies, unposted)
            else:  # labels and fields: sending twice changes nothing
                self._retried(lambda: self.client.put(url, first))
        return True

    def _put_not_resent(
        self,
        url: str,
        body: Callable[[Sequence[str]], str | None],
        bodies: list[str],
        unposted: Callable[[list[str]], list[str]] | None,
    ) -> None:
        """A PUT that posts comments, never re-sent blind. The client retries a dropped
        connection, and if Jira had applied the PUT the comments would be posted twice; so
        its retries are off for the PUT. A 429, or a 503 with Retry-After, refused it (not
        applied): it is sent again as it is, honouring Retry-After. After any other 5xx
        Jira may have applied it: with ``unposted`` the issue's comments are read back and
        only the comments still missing are sent again (with the labels and fields, which
        are harmless to send twice), within :attr:`retry_policy`'s attempts. Without it,
        after a dropped connection, or when the read-back fails, the cycle ends with the
        write in flight and the next cycle reads the comments back before sending it."""
        pending = list(bodies)
        unsure = False

        def attempt() -> None:
            nonlocal pending, unsure
            if unsure and unposted is not None:
                pending = unposted(pending)  # raises (ends the cycle) when it cannot read
                unsure = False
            data = body(pending)
            if data is None:
                return  # the earlier attempt was applied: nothing is missing
            try:
                with self.client.without_retries():
                    self.client.put(url, data)
            except JIRAError as exc:
                after = retry_after_of(exc)
                if exc.status_code == 429 or (exc.status_code == 503 and after is not None):
                    raise TransientFailure(f"HTTP {exc.status_code}", after) from exc
                if unposted is not None and not_retried_by_client(exc):
                    unsure = True
                    raise TransientFailure(f"HTTP {exc.status_code}", after) from exc
                raise

        self._under_policy(attempt)

    def set_field(self, key: str, field_id: str, value: Any) -> None:
        """Set one field of one issue (one call)."""
        self.update_issue(key, fields={field_id: value})

    def add_comment(self, key: str, body: str) -> str:
        """Post a comment (wiki-markup string on API v2); returns its id."""
        with self.boundary.guard(f"comment on issue {key}", key=key):
            return self.client.add_comment(key, body)

    def _comments(self, key: str) -> Iterator[tuple[str, str]]:
        """(id, body text) of every comment on ``key``, oldest first, page by page
        (ADF bodies as JSON text)."""
        for comment in self.comment_infos(key):
            yield comment.id, comment.body

    def comment_infos(self, key: str) -> Iterator[CommentInfo]:
        """Every comment on ``key`` with its author, oldest first, page by page."""
        start = 0
        while True:
            params = {"startAt": start, "maxResults": COMMENT_PAGE}
            path = f"issue/{quote_path(key, safe='')}/comment"
            page = self._read(path, params, f"read the comments of issue {key}", key=key)
            comments = page.get("comments") if isinstance(page, dict) else None
            if not isinstance(comments, list):
                raise RemoteError(
                    f"Jira answered the comments of issue {key} without a comment list; "
                    "the next cycle tries again",
                    side=SIDE,
                )
            for comment in comments:
                body = comment.get("body")
                text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
                author = comment.get("author")
                who = ""
                if isinstance(author, dict):
                    who = str(author.get("accountId") or author.get("name") or "")
                yield CommentInfo(str(comment["id"]), text, who)
            start += len(comments)
            if not comments or start >= int(page.get("total", start)):
                return

    def comment_bodies(self, key: str) -> list[str]:
        """The bodies of every comment on ``key``, oldest first."""
        return [text for _id, text in self._comments(key)]

    def find_comment(self, key: str, marker: str) -> str | None:
        """The id of the first comment on ``key`` whose body contains ``marker``."""
        return next((cid for cid, text in self._comments(key) if marker in text), None)

    def add_comment_once(self, key: str, body: str, marker: str) -> tuple[str, bool]:
        """Post ``body`` unless a comment with ``marker`` exists (a retry after a crash);
        returns (comment id, whether it was posted now). ``body`` must contain ``marker``."""
        if marker not in body:
            raise ValueError("the comment body must contain its marker")
        found = self.find_comment(key, marker)
        if found is not None:
            return found, False
        return self.add_comment(key, body), True

    def delete_comment(self, key: str, comment_id: str) -> bool:
        """Delete one comment (``DELETE /issue/{key}/comment/{id}``); False when it was
        already gone (404), so a retried delete is harmless."""
        path = f"issue/{quote_path(key, safe='')}/comment/{quote_path(comment_id, safe='')}"
        url = self.client.url(path)
        try:
            with self.boundary.guard(f"delete comment {comment_id} of issue {key}"):
                self.client.delete(url)
        except RemoteError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def set_property(self, key: str, prop: str, value: Any) -> None:
        """Set an issue property (any JSON up to 32 KB)."""
        with self.boundary.guard(f"set property {prop} of issue {key}", key=key):
            self._retried(
                lambda: self.client.add_issue_property(key, quote_path(prop, safe=""), value)
            )

    def get_property(self, key: str, prop: str) -> Any | None:
        """An issue property's value, or None when it is not set."""
        try:
            with self.boundary.guard(f"read property {prop} of issue {key}"):
                return self._retried(
                    lambda: self.client.issue_property(key, quote_path(prop, safe=""))
                )
        except RemoteError as exc:
            if exc.status == 404:
                return None
            raise


def _search_body(params: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a search's POST form, from its GET parameters: ``fields`` as a
    list (both request schemas, SearchAndReconcileRequestBean and SearchRequestBean, take
    an array); ``validateQuery`` left out, as the body's default is to validate already
    (and its type differs: a boolean on Server/Data Center, a string on Cloud)."""
    body = {name: value for name, value in params.items() if name != "validateQuery"}
    body["fields"] = [f for f in str(params.get("fields") or "").split(",") if f]
    return body


def _malformed_page(page: Any, fields: str) -> str | None:
    """What is wrong with a search answer as a whole (None: every issue on it can be
    stored or set aside by its key). The fields of each issue are checked later, one
    issue at a time (mappings.validate), so one odd issue does not stop the page."""
    if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
        return "a document that has no issues list"
    for issue in page["issues"]:
        key = issue.get("key") if isinstance(issue, dict) else None
        if not isinstance(key, str) or not key:
            return "an issue without a key"
    return None


def _malformed_catalog(fields: Any) -> str | None:
    """What is wrong with a /field answer (None: a list of fields the site could have)."""
    if not isinstance(fields, list):
        return "a document that is not a list of fields"
    for entry in fields:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            return "a field without an id"
        name = entry.get("name")
        if name is not None and not isinstance(name, str):
            return f"field {entry['id']} with a name that is not text"
    missing = [f for f in _SYSTEM_FIELDS if f not in {e["id"] for e in fields}]
    if missing:
        return f"a field list without the system fields {', '.join(missing)}"
    return None


def open_jira(
    settings: JiraSettings,
    meter: CallMeter | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> JiraConnector:
    """A connector with a metered client for ``settings``; no network call yet."""
    return JiraConnector(build_client(settings, meter), settings, clock=clock)
