"""Jira connection settings and the call meter's names for its endpoints (no I/O).

The metered ``jira.JIRA`` client is built in :mod:`connectors.jira.client`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from connectors.calls import CallMeter
from connectors.exceptions import ConfigError
from connectors.jql_clause import ClauseError, check_clause

SIDE = "jira"

Deployment = Literal["auto", "cloud", "server"]

#: Concrete REST paths -> endpoint templates, for the call meter (the sandbox's names).
_ISSUE_LITERALS = "createmeta|bulk|picker|archive|unarchive|watching|events|properties"
JIRA_TEMPLATES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"(/rest/api/[^/]+/issue/)(?!(?:{_ISSUE_LITERALS})(?:/|$))[^/]+"), r"\1{key}"),
    (re.compile(r"(/issue/\{key\}/(?:comment|worklog|remotelink)/)[^/]+"), r"\1{id}"),
    (re.compile(r"(/issue/\{key\}/properties/)[^/]+"), r"\1{propertyKey}"),
    (re.compile(r"(/rest/api/[^/]+/project/)[^/]+"), r"\1{key}"),
    (re.compile(r"(/rest/api/[^/]+/version/)[^/]+"), r"\1{id}"),
    (re.compile(r"(/rest/api/[^/]+/bulk/queue/)[^/]+"), r"\1{taskId}"),
)
#: POSTs that only read (searches).
JIRA_READ_ONLY_POSTS = ("/search", "/search/jql", "/search/approximate-count")
#: The project permission that lets the user delete a comment it posted
#: (``reconcile --apply`` deletes a flag comment posted twice).
DELETE_OWN_COMMENTS = "DELETE_OWN_COMMENTS"


@dataclass(frozen=True)
class JiraSettings:
    """How to reach one Jira site and what part of it is in scope.

    Cloud signs in with ``email`` + ``api_token`` (basic auth); Server/Data Center with a
    ``personal_access_token`` (bearer). Secrets are kept out of ``repr``.
    """

    url: str
    deployment: Deployment = "auto"
    email: str | None = None
    api_token: str | None = field(default=None, repr=False)
    personal_access_token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    projects: tuple[str, ...] = ()
    jql: str | None = None
    max_retries: int = 3
    timeout_seconds: float = 30.0
    #: How far each incremental pull reaches back before its cursor (clock skew, commits
    #: landing late on the server side).
    overlap_seconds: int = 300

    def __post_init__(self) -> None:
        # The URL is not echoed: it may carry user:password@.
        if (self.url or "").lower().startswith("http://"):
            raise ConfigError(
                "[jira] url starts with http://: the API token would travel in clear text; "
                "write https:// (Jira Cloud and Server both serve HTTPS)",
                side=SIDE,
            )
        if not re.match(r"^https://[^/\s]+", self.url or ""):
            raise ConfigError(
                "[jira] url is not a site URL; write it like https://example.atlassian.net",
                side=SIDE,
            )
        if self.deployment not in ("auto", "cloud", "server"):
            raise ConfigError(
                f"[jira] deployment {self.deployment!r} is unknown; use auto, cloud or server",
                side=SIDE,
            )
        _ = self.auth_kind  # validates the credentials now, not at first use
        if not self.projects and not (self.jql and self.jql.strip()):
            raise ConfigError(
                "[jira] needs a scope: set projects (keys) and/or jql (an extra clause); "
                "Jira Cloud refuses unbounded searches",
                side=SIDE,
            )
        if any(not key.strip() for key in self.projects):
            raise ConfigError("[jira] projects contains an empty key", side=SIDE)
        if self.jql and self.jql.strip():
            # The clause goes inside the scope's parentheses: one that is not a balanced
            # expression could close them and widen the search beyond the projects.
            try:
                check_clause(self.jql)
            except ClauseError as exc:
                raise ConfigError(f"[jira] jql: {exc}", side=SIDE) from None
        if self.max_retries < 0 or self.timeout_seconds <= 0 or self.overlap_seconds < 0:
            raise ConfigError(
                "[jira] max_retries and overlap_seconds must be >= 0, timeout_seconds > 0",
                side=SIDE,
            )

    @property
    def auth_kind(self) -> Literal["basic", "token"]:
        """Which credentials sign the calls: ``basic`` (email + API token) or ``token`` (PAT)."""
        basic = bool(self.email and self.api_token)
        token = bool(self.personal_access_token)
        if self.deployment == "cloud" and basic:
            return "basic"
        if self.deployment == "server" and token:
            return "token"
        if basic and token and self.deployment == "auto":
            raise ConfigError(
                "[jira] has both email/api_token and personal_access_token; set deployment "
                "to cloud or server so it is clear which to use",
                side=SIDE,
            )
        if basic:
            return "basic"
        if token:
            return "token"
        if self.api_token and not self.email:
            raise ConfigError("[jira] api_token needs email (the Atlassian account's)", side=SIDE)
        raise ConfigError(
            "[jira] has no credentials: set email and api_token (Cloud) or "
            "personal_access_token (Server/Data Center), from the environment or a *_file key",
            side=SIDE,
        )

    @property
    def credential_hint(self) -> str:
        """Which config keys hold the credentials in use (for error messages)."""
        if self.auth_kind == "basic":
            return "[jira] email and api_token (an API token of that Atlassian account)"
        return "[jira] personal_access_token (created in the Jira user's profile; it may expire)"


def jira_meter(budget: int | None = None) -> CallMeter:
    """A call meter for Jira with its endpoint templates and read-only POSTs."""
    return CallMeter(SIDE, JIRA_TEMPLATES, budget, JIRA_READ_ONLY_POSTS)
