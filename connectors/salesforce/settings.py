"""How to reach and log in to one Salesforce org (the ``[crm.salesforce]`` config section)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from connectors.exceptions import ConfigError

AuthKind = Literal["password", "oauth_password", "jwt", "client_credentials", "session"]
AUTH_KINDS: tuple[AuthKind, ...] = (
    "password",
    "oauth_password",
    "jwt",
    "client_credentials",
    "session",
)
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
#: Login hosts shared by every org; client credentials need the org's own My Domain.
GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
SECTION = "[crm.salesforce]"

#: Settings each auth kind needs (private_key_file may stand in for private_key).
REQUIRED: dict[str, tuple[str, ...]] = {
    "password": ("username", "password", "security_token"),
    "oauth_password": ("username", "password", "consumer_key", "consumer_secret"),
    "jwt": ("username", "consumer_key", "private_key"),
    "client_credentials": ("consumer_key", "consumer_secret"),
    "session": ("instance_url", "access_token"),
}


@dataclass(frozen=True)
class SalesforceSettings:
    """Connection and credentials; secrets are kept out of ``repr``."""

    auth: AuthKind = "password"
    login_url: str = DEFAULT_LOGIN_URL
    instance_url: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    consumer_key: str | None = None
    consumer_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    private_key_file: str | None = None
    access_token: str | None = field(default=None, repr=False)
    api_version: str = "59.0"
    ca_bundle: str | None = None
    timeout: float = 60.0
    #: A push of more records than this upserts through Bulk API 2.0 jobs.
    bulk_threshold: int = 2000
    #: Collection requests in flight at once.
    parallel_writes: int = 4
    #: Share of the org's daily API limit left to its other integrations: calls stop when
    #: Sforce-Limit-Info shows no more than this left (writes go one at a time at twice it).
    daily_reserve_percent: float = 5.0

    @property
    def login_based(self) -> bool:
        """Whether a session can be renewed by logging in again (all but ``session``)."""
        return self.auth != "session"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value set, to scrub from any text we show."""
        values = (
            self.password,
            self.security_token,
            self.consumer_secret,
            self.private_key,
            self.access_token,
        )
        return tuple(v for v in values if v)

    def check(self) -> None:
        """Raise ConfigError naming the first missing or malformed setting (no network)."""
        if self.auth not in AUTH_KINDS:
            raise ConfigError(
                f"{SECTION} auth = {self.auth!r} is not one of {', '.join(AUTH_KINDS)}",
                side="salesforce",
            )
        for name in REQUIRED[self.auth]:
            value = getattr(self, name)
            if name == "private_key":
                value = value or self.private_key_file
            # An empty security token is valid for users logging in from a trusted IP range.
            if value is None or (value == "" and name != "security_token"):
                shown = "private_key or private_key_file" if name == "private_key" else name
                raise ConfigError(
                    f"{SECTION} {shown} is required for auth = {self.auth!r}", side="salesforce"
                )
        _check_url("login_url", self.login_url)
        if self.instance_url is not None:
            _check_url("instance_url", self.instance_url)
        if not re.fullmatch(r"\d+\.\d", self.api_version):
            raise ConfigError(
                f"{SECTION} api_version = {self.api_version!r} must look like '59.0' (no 'v')",
                side="salesforce",
            )
        if self.auth == "client_credentials" and host_of(self.login_url) in GENERIC_LOGIN_HOSTS:
            raise ConfigError(
                f"{SECTION} login_url must be your org's My Domain URL "
                "(https://<domain>.my.salesforce.com) for auth = 'client_credentials'",
                side="salesforce",
            )
        if self.timeout <= 0:
            raise ConfigError(f"{SECTION} timeout must be positive seconds", side="salesforce")
        if self.bulk_threshold < 1 or self.parallel_writes < 1:
            raise ConfigError(
                f"{SECTION} bulk_threshold and parallel_writes must be at least 1",
                side="salesforce",
            )
        if not 0 <= self.daily_reserve_percent < 100:
            raise ConfigError(
                f"{SECTION} daily_reserve_percent must be from 0 up to (not including) 100",
                side="salesforce",
            )


def host_of(url: str) -> str:
    """The host (with any port) of a URL."""
    return urlsplit(url).netloc.lower()


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, without path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _check_url(name: str, url: str) -> None:
    # The URL is not echoed: it may carry user:password@.
    parts = urlsplit(url)
    if parts.scheme.lower() == "http":
        raise ConfigError(
            f"{SECTION} {name} starts with http://: the password, keys and session would "
            "travel in clear text; write https:// (Salesforce only serves HTTPS)",
            side="salesforce",
        )
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigError(
            f"{SECTION} {name} must be an https:// URL, like https://login.salesforce.com",
            side="salesforce",
        )
