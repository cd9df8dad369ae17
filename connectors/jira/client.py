"""The adapter over ``jira.JIRA``: the one module that touches the client's private API.

The connector reads searches, the field list, comment pages and issue updates through
the client's own session and URL builder (``_session``, ``_get_url``, ``_get_json``),
because the public methods translate field names with an extra ``GET /field``, hide
the paging metadata, read an empty answer as ``{}``, or re-GET the issue after an update
(``Issue.update``). It tells the client what serverInfo said (``deploymentType``,
``_version``) since the client is built without reading it (``get_server_info=False``),
and turns the session's own retries off for a call that must not be re-sent blind.
Those names are the client's internals and may move in a release of ``jira``: here is
the only place to follow them. Auth, TLS pinning, metering and the client's retries
apply to every call made through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from jira import JIRA

from connectors.calls import CallMeter, instrument
from connectors.jira.pacing import PacedAdapter, Pacer
from connectors.jira.settings import JiraSettings, jira_meter

#: A ``requests`` response hook: ``hook(response, *args, **kwargs)``.
ResponseHook = Callable[..., Any]


class JiraClient:
    """A ``jira.JIRA`` client seen through a small public surface (plain values out)."""

    def __init__(
        self, jira: JIRA, meter: CallMeter | None = None, pacer: Pacer | None = None
    ) -> None:
        self._jira = jira
        #: The call meter and the pacer its transport runs (shared by a connector's twins).
        self.meter = meter
        self.pacer = pacer

    # -- how the client is set up (no call) -----------------------------------------------

    @property
    def max_retries(self) -> int:
        """How often the client's ResilientSession retries a 429, a 503 with Retry-After
        or a dropped connection by itself."""
        return int(self._jira._session.max_retries)

    @property
    def timeout(self) -> float | None:
        """The session's timeout per request, in seconds."""
        timeout = self._jira._session.timeout
        return float(timeout) if timeout is not None else None

    @property
    def auth(self) -> Any:
        """What signs the calls: a (user, token) pair for basic auth, an auth object for a
        bearer token."""
        return self._jira._session.auth

    @property
    def is_cloud(self) -> bool:
        """Whether the client takes the site for Jira Cloud (what its public methods read)."""
        return bool(self._jira._is_cloud)

    def set_deployment(self, deployment_type: str) -> None:
        """Tell the client what serverInfo said of the site (``"Cloud"`` or ``"Server"``,
        what its public methods read): it was built without reading serverInfo itself."""
        self._jira.deploymentType = deployment_type

    def set_version(self, version: tuple[int, ...]) -> None:
        """Tell the client the site's version numbers (from serverInfo)."""
        self._jira._version = version

    def on_response(self, hook: ResponseHook) -> None:
        """Call ``hook`` with every response the session receives (retries included)."""
        self._jira._session.hooks["response"].append(hook)

    @contextmanager
    def without_retries(self) -> Iterator[None]:
        """The session's own retries off for the calls made inside the block."""
        session = self._jira._session
        saved = session.max_retries
        session.max_retries = 0
        try:
            yield
        finally:
            session.max_retries = saved

    # -- raw calls (the client raises JIRAError for what it did not retry) ------------------

    def url(self, path: str) -> str:
        """The REST URL of ``path`` (e.g. ``issue/KEY``) under the client's API version."""
        return str(self._jira._get_url(path))

    def url_v3(self, path: str) -> str:
        """The REST URL of ``path`` under API version 3 whatever the client's version:
        Cloud's bulk edit exists on v3 only."""
        options = {**self._jira._options, "rest_api_version": "3", "path": path}
        return str(JIRA.JIRA_BASE_URL.format(**options))

    def path_of(self, path: str) -> str:
        """The URL path of ``path`` (no host, no query: for messages)."""
        return urlsplit(self.url(path)).path

    def get(self, url: str, params: dict[str, Any] | None = None) -> requests.Response:
        """GET ``url`` through the client's session."""
        return self._jira._session.get(url, params=params)

    def post(self, url: str, data: str) -> requests.Response:
        """POST a JSON text to ``url`` through the client's session."""
        return self._jira._session.post(url, data=data)

    def put(self, url: str, data: str) -> requests.Response:
        """PUT a JSON text to ``url`` through the client's session."""
        return self._jira._session.put(url, data=data)

    def delete(self, url: str) -> requests.Response:
        """DELETE ``url`` through the client's session."""
        return self._jira._session.delete(url)

    def get_json(self, path: str, params: dict[str, Any], *, use_post: bool = False) -> Any:
        """The client's own JSON read of ``path`` (an empty answer reads as ``{}``);
        ``use_post``: the endpoint's POST form, with ``params`` as the body."""
        return self._jira._get_json(path, params=params, use_post=use_post)

    # -- the public methods the connector uses (one call each) -------------------------------

    def server_info(self) -> Any:
        """``GET /serverInfo`` as the client reads it."""
        return self._jira.server_info()

    def myself(self) -> Any:
        """``GET /myself`` as the client reads it."""
        return self._jira.myself()

    def add_comment(self, key: str, body: str) -> str:
        """Post a comment; its id."""
        return str(self._jira.add_comment(key, body).id)

    def add_issue_property(self, key: str, prop: str, value: Any) -> None:
        """Set an issue property (``prop`` already quoted for the path)."""
        self._jira.add_issue_property(key, prop, value)

    def issue_property(self, key: str, prop: str) -> Any:
        """An issue property's value (``prop`` already quoted for the path)."""
        return self._jira.issue_property(key, prop).raw.get("value")

    def close(self) -> None:
        """Close the client's HTTP session."""
        self._jira.close()


def build_client(
    settings: JiraSettings, meter: CallMeter | None = None, pacer: Pacer | None = None
) -> JiraClient:
    """A client for ``settings``, metered, paced by the rate-limit headers
    (:mod:`connectors.jira.pacing`; ``pacer`` shared with other clients of the site when
    given) and pinned to its CA bundle; makes no network call.

    The client's own ResilientSession retries 429, 503-with-Retry-After and connection
    errors ``max_retries`` times; nothing here retries on top of it.
    """
    basic = settings.auth_kind == "basic"
    jira = JIRA(
        server=settings.url,
        options={"verify": settings.ca_bundle or True, "check_update": False},
        basic_auth=(settings.email or "", settings.api_token or "") if basic else None,
        token_auth=None if basic else settings.personal_access_token,
        get_server_info=False,
        max_retries=settings.max_retries,
        timeout=settings.timeout_seconds,
        # Its own log repeats, at ERROR, every failure the connector converts into one
        # line, with a body it cannot parse in full (megabytes of a proxy page): -vv only.
        logging=logging.getLogger().isEnabledFor(logging.DEBUG),
    )
    meter = meter or jira_meter()
    pacer = pacer or Pacer()
    instrument(jira._session, meter, settings.ca_bundle)
    jira._session.mount("https://", PacedAdapter(meter, pacer, settings.ca_bundle))
    client = JiraClient(jira, meter, pacer)
    if settings.deployment != "auto":
        # What the client reads for Cloud or not; `connect()` confirms it from serverInfo.
        client.set_deployment("Cloud" if settings.deployment == "cloud" else "Server")
    return client
