"""How to reach and sign in to one HubSpot portal, and what to read there (the
``[crm.hubspot]`` config section the engine will build this from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from connectors.exceptions import ConfigError

SIDE = "hubspot"
SECTION = "[crm.hubspot]"
DEFAULT_BASE_URL = "https://api.hubapi.com"
AuthKind = Literal["private_app", "oauth"]
Escalation = Literal["priority", "property"]
#: Priorities that make a ticket escalated under ``escalation = "priority"``.
ESCALATED_PRIORITIES = frozenset({"HIGH", "URGENT"})


@dataclass(frozen=True)
class HubSpotSettings:
    """Connection, credentials and the portal's names; secrets are kept out of ``repr``."""

    auth: AuthKind = "private_app"
    base_url: str = DEFAULT_BASE_URL
    #: A private app's access token (``auth = "private_app"``).
    access_token: str | None = field(default=None, repr=False)
    #: An OAuth app (``auth = "oauth"``): tokens come from the refresh token.
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    #: The portal (hub) id, for links to records; unset, it is read when connecting.
    portal_id: int | None = None
    timeout: float = 60.0
    #: Seconds before an OAuth token's expiry at which it is renewed.
    renew_margin: float = 300.0
    #: Seconds of ``hs_lastmodifieddate`` re-read each pull (the search index lags).
    overlap_seconds: int = 300
    #: Archived (deleted) records are listed at most this often (a list has no filter).
    deletes_every_seconds: int = 3600
    #: Tickets: ``priority`` (HIGH or URGENT) or ``property`` (a truthy ``escalation_property``).
    escalation: Escalation = "priority"
    escalation_property: str | None = None
    #: The report object ([push.crm] object): its custom object, or, when the portal has
    #: none by that name, the companies (described, read and written there).
    report_object: str | None = None
    #: In the report records the engine passes: the field holding the company id and
    #: the one holding the Jira project key (company-properties mode keeps one project).
    report_company_field: str = "company_id"
    report_project_field: str = "jira_project_key"
    #: Feedback submissions read as survey answers (``hs_survey_type``): one scale only,
    #: as surveys are aggregated on one scale (NPS 0-10; CSAT 1-5 ...).
    survey_types: tuple[str, ...] = ("NPS",)
    #: Calls left in a 10-second window below which the client waits for the next one.
    burst_reserve: int = 5

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value set, to scrub from any text we show."""
        values = (self.access_token, self.client_secret, self.refresh_token)
        return tuple(v for v in values if v)

    def check(self) -> None:
        """Raise ConfigError naming the first missing or malformed setting (no network)."""
        if self.auth not in ("private_app", "oauth"):
            raise ConfigError(
                f"{SECTION} auth = {self.auth!r} is not one of private_app, oauth", side=SIDE
            )
        needed = (
            ("access_token",)
            if self.auth == "private_app"
            else ("client_id", "client_secret", "refresh_token")
        )
        for name in needed:
            if not getattr(self, name):
                raise ConfigError(
                    f"{SECTION} {name} is required for auth = {self.auth!r}", side=SIDE
                )
        parts = urlsplit(self.base_url)
        if parts.scheme.lower() == "http":
            raise ConfigError(
                f"{SECTION} base_url starts with http://: the token would travel in clear "
                "text; write https:// (HubSpot only serves HTTPS)",
                side=SIDE,
            )
        if parts.scheme != "https" or not parts.netloc:
            raise ConfigError(
                f"{SECTION} base_url must be an https:// URL, like {DEFAULT_BASE_URL}", side=SIDE
            )
        if self.timeout <= 0 or self.overlap_seconds < 0 or self.deletes_every_seconds < 0:
            raise ConfigError(
                f"{SECTION} timeout must be positive, overlap_seconds and "
                "deletes_every_seconds not negative",
                side=SIDE,
            )
        if self.escalation not in ("priority", "property"):
            raise ConfigError(
                f"{SECTION} escalation = {self.escalation!r} is not one of priority, property",
                side=SIDE,
            )
        from connectors.hubspot.search import FilterValueError, value

        for survey_type in self.survey_types:
            try:
                value("hs_survey_type", survey_type)
            except FilterValueError as exc:
                raise ConfigError(f"{SECTION} survey_types: {exc.message}", side=SIDE) from None
        if self.escalation == "property" and not self.escalation_property:
            raise ConfigError(
                f"{SECTION} escalation_property is required for escalation = 'property'",
                side=SIDE,
            )

    @property
    def origin(self) -> str:
        """``https://host[:port]`` of the API."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"
