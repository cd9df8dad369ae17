"""Tokens: a private app's fixed Bearer token, or an OAuth app's access tokens renewed
from its refresh token before they expire (and once more on a 401)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import httpx

from connectors.exceptions import AuthError
from connectors.failures import redact
from connectors.hubspot.settings import SECTION, SIDE, HubSpotSettings

TOKEN_PATH = "/oauth/v1/token"


class Tokens(Protocol):
    """Where the Bearer token comes from."""

    renewable: bool

    def token(self) -> str:
        """A token valid for the next call (renewing first when due)."""
        ...

    def renew(self) -> None:
        """Get a new token now (after a 401)."""
        ...


class PrivateAppToken:
    """A private app's access token: fixed, never renewed."""

    renewable = False

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        """The configured token."""
        return self._token

    def renew(self) -> None:
        """A private app token cannot be renewed."""
        raise AuthError("a private app token cannot be renewed", side=SIDE)


class OAuthTokens:
    """Access tokens from the refresh-token grant, renewed ``renew_margin`` seconds before
    they expire. ``send`` posts the grant (through the metered client, so it is counted)."""

    renewable = True

    def __init__(
        self,
        settings: HubSpotSettings,
        send: Callable[[httpx.Request], httpx.Response],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._send = send
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        #: Grants made, for tests and logs.
        self.renewals = 0

    def token(self) -> str:
        """The current token, renewed first when it expires within the margin."""
        if self._token is None or self._clock() >= self._expires_at - self.settings.renew_margin:
            self.renew()
        assert self._token is not None
        return self._token

    def renew(self) -> None:
        """Post the refresh-token grant; AuthError naming the settings when refused."""
        s = self.settings
        request = httpx.Request(
            "POST",
            s.base_url.rstrip("/") + TOKEN_PATH,
            data={
                "grant_type": "refresh_token",
                "client_id": s.client_id or "",
                "client_secret": s.client_secret or "",
                "refresh_token": s.refresh_token or "",
            },
        )
        response = self._send(request)
        try:
            body = response.json()
        except ValueError:
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str):
            reason = body.get("message") or body.get("status") if isinstance(body, dict) else None
            shown = redact(str(reason or f"HTTP {response.status_code}"), s.secrets)
            raise AuthError(
                f"HubSpot refused the OAuth refresh token ({shown}); check {SECTION} "
                "client_id, client_secret and refresh_token (re-authorize the app if the "
                "refresh token was revoked)",
                side=SIDE,
            )
        self._token = token
        self._expires_at = self._clock() + float(body.get("expires_in") or 1800)
        self.renewals += 1
