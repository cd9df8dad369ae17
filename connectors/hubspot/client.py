"""The session with HubSpot: one httpx client, every call paced, retried and converted once.

Why httpx and not ``hubspot-api-client``: the official client is generated per API
(``crm.companies``, ``crm.associations.v4``, ``files`` ... each its own urllib3 pool and
exception classes), retries nothing by itself yet hides the response headers the pacing
needs (``X-HubSpot-RateLimit-*``) behind per-API ``*_with_http_info`` variants, and cannot
take one metered, CA-pinned transport for all of them. Over httpx, the few endpoints we use
are plain JSON, one :class:`~connectors.hubspot.transport.MeteredTransport` sees every
attempt, and the one tenacity policy (:mod:`connectors.retry`) wraps each call. The
official client stays what the tests probe the sandbox with.

:meth:`HubSpotClient.call` is the one place a request runs: paced by the portal's burst
headers, inside the retry policy (dropped connections, 429 honouring Retry-After, 5xx),
with one token renewal on a 401 for OAuth apps, and HubSpot's errors turned into ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from connectors.calls import CallMeter
from connectors.exceptions import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    RemoteError,
    RetriableError,
    UnreachableError,
)
from connectors.failures import transport_reason
from connectors.hubspot.auth import OAuthTokens, PrivateAppToken, Tokens
from connectors.hubspot.errors import RateLimits, convert
from connectors.hubspot.settings import SECTION, SIDE, HubSpotSettings
from connectors.hubspot.transport import MeteredTransport, PlainHttpRefused, new_meter
from connectors.retry import RetryPolicy, TransientFailure

#: Searches a second HubSpot serves per portal (it answers 429 above about five).
SEARCH_PER_SECOND = 4.0


class _Renew(Exception):
    """A 401 an OAuth app answers by renewing its token once."""


class HubSpotClient:
    """A signed-in HubSpot session behind pacing, retries, metering and error conversion.

    Building one never talks to the network; the first call does. ``transport`` replaces
    the real HTTPS transport (the sandbox in-process, or a test's fault); the meter and
    the plain-http refusal stay in front of it.
    """

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        meter: CallMeter | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings.check()
        self.settings = settings
        self.meter = meter or new_meter()
        self.http = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            transport=MeteredTransport(self.meter, settings.ca_bundle, transport),
            timeout=settings.timeout,
            follow_redirects=False,
        )
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.tokens: Tokens = (
            PrivateAppToken(settings.access_token or "")
            if settings.auth == "private_app"
            else OAuthTokens(settings, self._send_grant, clock)
        )
        self.limits: RateLimits | None = None
        self._window_started: float | None = None
        #: Seconds slept to stay under the burst limit, for tests and logs.
        self.paced = 0.0
        self._last_search: float | None = None
        self._account: dict[str, Any] | None = None

    @property
    def instance_url(self) -> str:
        """The base of links to companies, ``https://app.hubspot.com/contacts/{portal}/company``
        (a company's page is this plus ``/{id}``). The portal comes from ``portal_id`` or,
        unset, from the portal's details read by :meth:`connect`; before that, the app's
        address alone (no call here: ``isinstance`` against the seam reads properties)."""
        portal = self.settings.portal_id
        domain = "app.hubspot.com"
        if self._account is not None:
            portal = portal or self._account.get("portalId")
            domain = str(self._account.get("uiDomain") or domain)
        if portal is None:
            return f"https://{domain}"
        return f"https://{domain}/contacts/{portal}/company"

    def connect(self) -> None:
        """Sign in: an OAuth app gets its first token (one call); the portal's details are
        read unless ``portal_id`` is set (one call)."""
        self.tokens.token()
        if self.settings.portal_id is None and self._account is None:
            self._account = dict(
                self.call("read the portal's details", "GET", "/account-info/v3/details") or {}
            )

    def close(self) -> None:
        """Close the HTTP session."""
        self.http.close()

    # -- calls ----------------------------------------------------------------------------

    def call(
        self,
        what: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Send one request and return its JSON (None for an empty answer).

        ``what`` names the call in messages. With ``idempotent=False`` a request that may
        have been applied (a broken connection, a 5xx) is not sent again.
        """
        renewed = False
        while True:
            try:
                return self._retrying(
                    what,
                    lambda: self._attempt(
                        what, method, path, json, params, files, data, idempotent
                    ),
                )
            except _Renew:
                if renewed or not self.tokens.renewable:
                    raise AuthError(
                        "HubSpot refused the token"
                        + (" right after renewing it" if renewed else "")
                        + f"; check {SECTION} "
                        + (
                            "access_token"
                            if not self.tokens.renewable
                            else "client_id, "
                            "client_secret and refresh_token, and the app's installation"
                        ),
                        side=SIDE,
                    ) from None
                renewed = True
                self.tokens.renew()

    def _retrying(self, what: str, attempt: Callable[[], Any]) -> Any:
        try:
            return self.retry.call(attempt, self.sleep)
        except TransientFailure as exc:
            raise RetriableError(
                f"{what} still failed after {self.retry.attempts} attempts ({exc}); nothing "
                "was lost, the next cycle tries again",
                side=SIDE,
                retry_after=exc.retry_after,
            ) from None

    def _attempt(
        self,
        what: str,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, Any] | None,
        files: Any,
        data: Mapping[str, Any] | None,
        idempotent: bool,
    ) -> Any:
        self._pace()
        headers = {"Authorization": f"Bearer {self.tokens.token()}", "Accept": "application/json"}
        request = self.http.build_request(
            method, path, json=json, params=params, files=files, data=data, headers=headers
        )
        response = self._guarded_send(request, idempotent)
        self._observe(response)
        if response.status_code == 401:
            raise _Renew()
        if response.status_code >= 400:
            raise convert(what, response, self.settings.secrets, self.limits, idempotent=idempotent)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise RemoteError(
                f"HubSpot at {self.settings.origin} answered {method} {request.url.path} (HTTP "
                f"{response.status_code}, {response.headers.get('Content-Type', 'no type')}) "
                f"with a body that is not JSON; check {SECTION} base_url and that no proxy "
                "intercepts the API; the next cycle tries again",
                side=SIDE,
                status=response.status_code,
            ) from None

    def _send_grant(self, request: httpx.Request) -> httpx.Response:
        """Send the OAuth grant (metered, retried on dropped connections and 5xx)."""

        def attempt() -> httpx.Response:
            response = self._guarded_send(request, True)
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientFailure(f"token grant answered HTTP {response.status_code}")
            return response

        result: httpx.Response = self._retrying("renew the OAuth token", attempt)
        return result

    def _guarded_send(self, request: httpx.Request, idempotent: bool) -> httpx.Response:
        """Send; transport failures become TransientFailure, ConfigError or UnreachableError."""
        try:
            return self.http.send(request)
        except PlainHttpRefused as exc:
            raise ConfigError(f"{exc} (check {SECTION} base_url)", side=SIDE) from None
        except BudgetExhausted:
            raise
        except httpx.ConnectError as exc:
            reason = transport_reason(exc)
            if "certificate" in reason.lower() or "ssl" in reason.lower():
                raise UnreachableError(
                    f"cannot reach HubSpot at {self.settings.origin}: TLS verification failed "
                    f"({reason}); check {SECTION} ca_bundle and base_url",
                    side=SIDE,
                ) from None
            raise TransientFailure(f"no connection to {self.settings.origin}: {reason}") from None
        except httpx.TransportError as exc:
            if not idempotent:
                raise RetriableError(
                    f"the connection broke during a write that is not safe to repeat "
                    f"({transport_reason(exc)}); check the record before retrying",
                    side=SIDE,
                ) from None
            raise TransientFailure(f"connection error: {transport_reason(exc)}") from None

    def search(self, object_type: str, body: Mapping[str, Any]) -> Any:
        """One page of ``POST /crm/v3/objects/{type}/search``, at most
        :data:`SEARCH_PER_SECOND` a second (HubSpot's search limit, apart from the burst)."""
        if self._last_search is not None:
            wait = self._last_search + 1.0 / SEARCH_PER_SECOND - self.clock()
            if wait > 0:
                self.paced += wait
                self.sleep(wait)
        self._last_search = self.clock()
        return self.call(
            f"search {object_type}", "POST", f"/crm/v3/objects/{object_type}/search", json=body
        )

    # -- pacing ---------------------------------------------------------------------------

    def _observe(self, response: httpx.Response) -> None:
        previous = self.limits
        self.limits = RateLimits.from_headers(response.headers, previous)
        now = self.clock()
        limits = self.limits
        if limits.burst_remaining is not None and (
            previous is None
            or previous.burst_remaining is None
            or limits.burst_remaining > previous.burst_remaining
            or self._window_started is None
        ):
            # The remaining count went up: a new window started with this call.
            self._window_started = now

    def _pace(self) -> None:
        """Wait for the next 10-second window when the burst is nearly spent; stop cleanly
        when the daily limit is."""
        limits = self.limits
        if limits is None:
            return
        if limits.daily_remaining is not None and limits.daily_remaining <= 0:
            raise BudgetExhausted(
                f"the portal's daily API limit ({limits.daily or '?'} calls, shared with its "
                "other apps) is spent; the next cycle resumes when HubSpot resets it",
                side=SIDE,
            )
        if limits.burst_remaining is None or limits.burst_remaining > self.settings.burst_reserve:
            return
        interval = (limits.interval_ms or 10_000) / 1000.0
        started = self._window_started if self._window_started is not None else self.clock()
        wait = max(0.0, started + interval - self.clock())
        if wait > 0:
            self.paced += wait
            self.sleep(wait)
        # Assume a fresh window after the wait until the next answer says otherwise.
        self.limits = RateLimits(
            limits.daily, limits.daily_remaining, limits.burst, None, limits.interval_ms
        )
        self._window_started = None
