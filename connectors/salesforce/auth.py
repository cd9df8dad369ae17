"""Logging in: one function per auth kind, each returning ``(session_id, instance_url)``.

simple-salesforce builds its login URLs as ``https://{domain}.salesforce.com``; our config
names a ``login_url`` instead (a My Domain, a sandbox org, or a local emulator), so these
functions call its ``soap_login``/``token_login`` with URLs of our own and the same
payloads it would send. They raise simple-salesforce's ``SalesforceAuthenticationFailed``;
:func:`auth_error` turns that into our AuthError naming the settings to check.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin, token_login

from connectors.calls import CallMeter
from connectors.exceptions import AuthError, ConfigError
from connectors.failures import redact
from connectors.salesforce.settings import SECTION, SalesforceSettings, host_of

Login = Callable[[SalesforceSettings, requests.Session], tuple[str, str]]

#: Concrete paths -> endpoint templates, applied in order (see CallMeter.template).
TEMPLATES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/composite/sobjects/[^/{]+/[^/{]+$"), "/composite/sobjects/{sobject}/{field}"),
    (re.compile(r"/(query|queryAll)/[^/{]+$"), r"/\1/{cursor}"),
    (re.compile(r"/sobjects/[^/{]+/describe/?$"), "/sobjects/{sobject}/describe"),
    (re.compile(r"/sobjects/[^/{]+/[^/{]+/[^/{]+$"), "/sobjects/{sobject}/{field}/{value}"),
    (re.compile(r"/sobjects/[^/{]+/[^/{]+$"), "/sobjects/{sobject}/{id}"),
    (re.compile(r"/sobjects/[^/{]+$"), "/sobjects/{sobject}"),
    (re.compile(r"^/services/Soap/u/[^/]+$"), "/services/Soap/u/{version}"),
    (re.compile(r"/jobs/(ingest|query)/[^/{]+/([A-Za-z]+)$"), r"/jobs/\1/{job}/\2"),
    (re.compile(r"/jobs/(ingest|query)/[^/{]+$"), r"/jobs/\1/{job}"),
)


def new_meter(budget: int | None = None) -> CallMeter:
    """A call meter for the Salesforce side with our endpoint templates."""
    # Logins change no data; our Composite calls carry queries only (writes go
    # through /composite/sobjects).
    reads = ("/composite", "/services/oauth2/token", "/services/Soap/u/{version}")
    return CallMeter("salesforce", TEMPLATES, budget, read_only_posts=reads)


class TimeoutSession(requests.Session):
    """A session with a default timeout, so no call (logins included) can hang forever."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        """Send with ``timeout`` unless the caller gave one."""
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def _base(settings: SalesforceSettings) -> str:
    return settings.login_url.rstrip("/")


def _https(instance: str) -> str:
    """simple-salesforce returns the instance host; we keep a URL."""
    return instance if "://" in instance else f"https://{instance}"


def password_login(settings: SalesforceSettings, session: requests.Session) -> tuple[str, str]:
    """Username + password + security token through the SOAP ``login`` call."""
    session_id, instance = SalesforceLogin(
        username=settings.username,
        password=settings.password,
        security_token=settings.security_token or "",
        sf_version=settings.api_version,
        session=session,
        # scratch_url replaces https://{domain}.salesforce.com in the SOAP URL.
        scratch_url=_base(settings),
    )
    return session_id, _https(instance)


def _token(
    settings: SalesforceSettings,
    session: requests.Session,
    data: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> tuple[str, str]:
    try:
        access_token, instance = token_login(
            f"{_base(settings)}/services/oauth2/token",
            data,
            host_of(settings.login_url),
            settings.consumer_key or "",
            headers,
            None,
            session,
        )
    except AttributeError:  # an error body that is not an OAuth error object
        raise SalesforceAuthenticationFailed(None, "unexpected token endpoint answer") from None
    if not access_token or not instance:
        raise SalesforceAuthenticationFailed(
            "NO_TOKEN", "the token endpoint answered without access_token or instance_url"
        )
    return str(access_token), _https(str(instance))


def oauth_password_login(
    settings: SalesforceSettings, session: requests.Session
) -> tuple[str, str]:
    """OAuth username-password flow (a connected app's consumer key and secret)."""
    return _token(
        settings,
        session,
        {
            "grant_type": "password",
            "client_id": settings.consumer_key,
            "client_secret": settings.consumer_secret,
            "username": settings.username,
            # As with SOAP, the security token (if any) follows the password.
            "password": (settings.password or "") + (settings.security_token or ""),
        },
    )


def jwt_assertion(settings: SalesforceSettings, now: datetime | None = None) -> str:
    """The signed JWT bearer assertion (RS256), valid for three minutes."""
    key: str | bytes
    if settings.private_key:
        key = settings.private_key
    else:
        path = Path(settings.private_key_file or "")
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read {SECTION} private_key_file {path}: {exc.strerror}",
                side="salesforce",
            ) from None
    expires = (now or datetime.now(UTC)) + timedelta(minutes=3)
    claims = {
        "iss": settings.consumer_key,
        "sub": settings.username,
        "aud": _base(settings),
        "exp": int(expires.timestamp()),
    }
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError):
        which = "private_key" if settings.private_key else "private_key_file"
        raise ConfigError(
            f"{SECTION} {which} is not a usable RSA private key in PEM form",
            side="salesforce",
        ) from None


def jwt_login(settings: SalesforceSettings, session: requests.Session) -> tuple[str, str]:
    """OAuth JWT bearer flow (consumer key + the certificate's private key)."""
    return _token(
        settings,
        session,
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt_assertion(settings),
        },
    )


def client_credentials_login(
    settings: SalesforceSettings, session: requests.Session
) -> tuple[str, str]:
    """OAuth client credentials flow against the org's My Domain."""
    pair = f"{settings.consumer_key}:{settings.consumer_secret}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return _token(settings, session, {"grant_type": "client_credentials"}, headers)


LOGINS: dict[str, Login] = {
    "password": password_login,
    "oauth_password": oauth_password_login,
    "jwt": jwt_login,
    "client_credentials": client_credentials_login,
}

#: What to check when a login of each kind is refused.
_CHECK: dict[str, str] = {
    "password": "username, password and security_token (a password change resets the token)",
    "oauth_password": "username, password, security_token, consumer_key and consumer_secret",
    "jwt": (
        "username, consumer_key and private_key/private_key_file (the connected app must hold "
        "the matching certificate and the user must be pre-authorized)"
    ),
    "client_credentials": (
        "consumer_key, consumer_secret and login_url (the connected app needs a run-as user)"
    ),
    "session": "access_token and instance_url",
}


def auth_error(settings: SalesforceSettings, exc: SalesforceAuthenticationFailed) -> AuthError:
    """Our AuthError for a refused login: the remote's reason and which settings to check."""
    code = exc.code if exc.code is not None else "refused"
    reason = redact(f"{code}: {exc.auth_message}".strip().rstrip(":"), settings.secrets)
    return AuthError(
        f"login at {settings.login_url} as {settings.auth!r} was refused ({reason}); "
        f"check {SECTION} {_CHECK[settings.auth]}",
        side="salesforce",
    )
