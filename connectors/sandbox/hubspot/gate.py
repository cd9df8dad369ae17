"""The portal's gate: OAuth grants, sign-in, scopes, and the daily, burst and search
limits with HubSpot's headers and 429 bodies (a mixin of :class:`HubSpotBackend`)."""

from __future__ import annotations

import math
import secrets
from collections import deque
from collections.abc import Callable

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot.errors import (
    BURST_INTERVAL_MS,
    MISSING_SCOPES_MESSAGE,
    NO_CREDENTIALS,
    hs_error,
)


class PortalGate:
    """What every call passes before and after its route."""

    clock: Callable[[], float]
    client_id: str
    client_secret: str
    refresh_token: str
    private_app_token: str
    token_lifetime_s: int
    oauth_tokens: dict[str, float]
    token_grants: int
    scopes: set[str]
    daily_used: int
    daily_limit: int
    burst_limit: int
    burst_calls: deque[int]
    search_calls: deque[int]
    search_per_second: int
    index_lag_ms: int
    enterprise: bool

    def now_ms(self) -> int:
        """The portal's clock in epoch ms."""
        return int(self.clock() * 1000)

    #: The object type id of a name (:meth:`HubSpotBackend.type_id`).
    type_id: Callable[[str], str | None]

    def grant(self, form: dict[str, str]) -> SandboxResponse:
        """``POST /oauth/v1/token`` with the refresh-token grant."""
        if form.get("grant_type") != "refresh_token":
            return hs_error(400, "unsupported grant type", "BAD_GRANT_TYPE")
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return hs_error(400, "missing or unknown client id", "BAD_CLIENT_ID")
        if form.get("refresh_token") != self.refresh_token:
            return hs_error(400, "missing or unknown refresh token", "BAD_REFRESH_TOKEN")
        token = "CKsandbox" + secrets.token_urlsafe(24)
        self.oauth_tokens[token] = self.clock() + self.token_lifetime_s
        self.token_grants += 1
        return SandboxResponse.json(
            {
                "token_type": "bearer",
                "refresh_token": self.refresh_token,
                "access_token": token,
                "expires_in": self.token_lifetime_s,
            }
        )

    def expire_sessions(self) -> SandboxResponse:
        """Expire every OAuth access token (private app tokens do not expire)."""
        for token in self.oauth_tokens:
            self.oauth_tokens[token] = 0.0
        return hs_error(
            401,
            "The OAuth token used to make this call expired 1 second(s) ago.",
            "EXPIRED_AUTHENTICATION",
        )

    def error(self, status: int, message: str, code: str | None = None) -> SandboxResponse:
        """A response in HubSpot's error shape; a 429 (an injected fault's) is the burst
        limit's, as the portal's own are (:meth:`before_call`)."""
        if status == 429:
            return hs_error(
                429,
                "You have reached your ten_secondly_rolling limit.",
                "RATE_LIMITS",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
            )
        return hs_error(status, message, code if code and code != "NOT_FOUND" else None)

    def _authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        header = request.headers.get("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            return hs_error(
                401,
                NO_CREDENTIALS,
            )
        if token == self.private_app_token:
            request.path_params["_auth"] = "private_app"
            return None
        expires = self.oauth_tokens.get(token)
        if expires is None:
            return hs_error(401, "Authentication credentials not found.")
        if self.clock() >= expires:
            ago = max(1, int(self.clock() - expires))
            return hs_error(
                401,
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        request.path_params["_auth"] = "oauth"
        return None

    def before_call(self, request: SandboxRequest, write: bool) -> SandboxResponse | None:
        """Sign-in, scopes, then the daily, burst and search limits."""
        if request.path.startswith("/oauth/"):
            return None
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        from connectors.sandbox.hubspot.urls import required_scope

        scope = required_scope(self.type_id, request.method, request.path, write)
        if scope is not None and scope not in self.scopes:
            return hs_error(
                403,
                MISSING_SCOPES_MESSAGE,
                "MISSING_SCOPES",
                [
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [scope]},
                    }
                ],
            )
        now = self.now_ms()
        if self.daily_used >= self.daily_limit:
            return hs_error(
                429,
                "You have reached your daily limit.",
                "RATE_LIMITS",
                errorType="RATE_LIMIT",
                policyName="DAILY",
            )
        while self.burst_calls and self.burst_calls[0] <= now - BURST_INTERVAL_MS:
            self.burst_calls.popleft()
        if len(self.burst_calls) >= self.burst_limit:
            wait = math.ceil((self.burst_calls[0] + BURST_INTERVAL_MS - now) / 1000)
            response = hs_error(
                429,
                "You have reached your ten_secondly_rolling limit.",
                "RATE_LIMITS",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
            )
            response.headers["Retry-After"] = str(max(1, wait))
            return response
        if request.path.endswith("/search"):
            while self.search_calls and self.search_calls[0] <= now - 1000:
                self.search_calls.popleft()
            if len(self.search_calls) >= self.search_per_second:
                response = hs_error(
                    429,
                    "You have reached your secondly limit.",
                    "RATE_LIMITS",
                    errorType="RATE_LIMIT",
                    policyName="SECONDLY",
                )
                response.headers["Retry-After"] = "1"
                return response
            self.search_calls.append(now)
        self.burst_calls.append(now)
        self.daily_used += 1
        return None

    def after_call(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """HubSpot's rate-limit headers (the daily ones only for private apps)."""
        auth = request.path_params.get("_auth")
        if auth is None:
            return
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(BURST_INTERVAL_MS)
        response.headers["X-HubSpot-RateLimit-Max"] = str(self.burst_limit)
        response.headers["X-HubSpot-RateLimit-Remaining"] = str(
            max(0, self.burst_limit - len(self.burst_calls))
        )
        second = max(1, self.burst_limit // 10)
        recent = sum(1 for t in self.burst_calls if t > self.now_ms() - 1000)
        response.headers["X-HubSpot-RateLimit-Secondly"] = str(second)
        response.headers["X-HubSpot-RateLimit-Secondly-Remaining"] = str(max(0, second - recent))
        if auth == "private_app":
            response.headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, self.daily_limit - self.daily_used)
            )

    def control(self, request: SandboxRequest, path: str) -> SandboxResponse | None:
        """``/_sandbox/hubspot/...``: index lag, scopes, limits, the Enterprise hub."""
        if not path.startswith("/hubspot/") or request.method != "POST":
            return None
        payload = request.json() or {}
        what = path[len("/hubspot/") :]
        if what == "lag" and isinstance(payload.get("index_lag_ms"), int):
            self.index_lag_ms = payload["index_lag_ms"]
        elif what == "scopes" and isinstance(payload.get("revoke"), list):
            self.scopes -= {str(s) for s in payload["revoke"]}
        elif what == "limits":
            self.burst_limit = int(payload.get("burst_limit", self.burst_limit))
            self.daily_limit = int(payload.get("daily_limit", self.daily_limit))
            self.search_per_second = int(payload.get("search_per_second", self.search_per_second))
        elif what == "enterprise" and isinstance(payload.get("enterprise"), bool):
            self.enterprise = payload["enterprise"]
        else:
            return SandboxResponse.json(
                {"error": f"unknown or malformed control {what}"}, status=400
            )
        return SandboxResponse.json(
            {
                "index_lag_ms": self.index_lag_ms,
                "scopes": sorted(self.scopes),
                "burst_limit": self.burst_limit,
                "daily_limit": self.daily_limit,
                "enterprise": self.enterprise,
            }
        )
