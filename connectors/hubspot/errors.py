"""HubSpot's answers classified by how to recover, and its rate-limit headers read.

:func:`convert` is the one place an HTTP error answer becomes one of ours
(:mod:`connectors.exceptions`) or a :class:`TransientFailure` the retry policy acts on.
HubSpot's error body: ``{"status": "error", "message", "correlationId", "category",
"errors"?: [{"message", "context"}]}``; a 429 adds ``policyName`` (``SECONDLY``, ``DAILY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from connectors.exceptions import AuthError, BudgetExhausted, QueryError, RemoteError
from connectors.failures import parse_retry_after, redact
from connectors.hubspot.settings import SECTION, SIDE
from connectors.retry import TransientFailure

#: Wait after a burst 429 without Retry-After: HubSpot's window is ten seconds.
BURST_WINDOW = 10.0


@dataclass(frozen=True)
class RateLimits:
    """The portal's limits as the last answer's headers gave them (None: not sent)."""

    daily: int | None = None
    daily_remaining: int | None = None
    burst: int | None = None
    burst_remaining: int | None = None
    interval_ms: int | None = None
    secondly_remaining: int | None = None

    @classmethod
    def from_headers(cls, headers: httpx.Headers, previous: RateLimits | None) -> RateLimits:
        """Read ``X-HubSpot-RateLimit-*``; a header missing keeps the previous value."""

        def number(name: str, old: int | None) -> int | None:
            value = headers.get(f"X-HubSpot-RateLimit-{name}")
            try:
                return int(value) if value is not None else old
            except ValueError:
                return old

        p = previous or cls()
        return cls(
            daily=number("Daily", p.daily),
            daily_remaining=number("Daily-Remaining", p.daily_remaining),
            burst=number("Max", p.burst),
            burst_remaining=number("Remaining", p.burst_remaining),
            interval_ms=number("Interval-Milliseconds", p.interval_ms),
            secondly_remaining=number("Secondly-Remaining", p.secondly_remaining),
        )


def body_of(response: httpx.Response) -> dict[str, Any]:
    """The error body as a dict (empty when it is not JSON)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def missing_scopes(body: dict[str, Any]) -> list[str]:
    """The scopes a 403 names as required (``requiredGranularScopes``, ``requiredScopes``)."""
    found: list[str] = []
    for item in body.get("errors") or []:
        context = item.get("context") if isinstance(item, dict) else None
        if isinstance(context, dict):
            for key in ("requiredGranularScopes", "requiredScopes"):
                found.extend(str(s) for s in context.get(key) or [])
    return list(dict.fromkeys(found))


def convert(
    what: str,
    response: httpx.Response,
    secrets: tuple[str, ...],
    limits: RateLimits | None,
    *,
    idempotent: bool = True,
) -> Exception:
    """Our error for an error answer (a TransientFailure: worth another attempt)."""
    status = response.status_code
    body = body_of(response)
    category = str(body.get("category") or body.get("errorType") or "")
    message = redact(str(body.get("message") or response.text[:300]), secrets)
    detail = f"{category}: {message}" if category else message
    if status == 429:
        if str(body.get("policyName") or "").upper() == "DAILY":
            shown = f" ({limits.daily} a day)" if limits is not None and limits.daily else ""
            return BudgetExhausted(
                f"the portal's daily API limit is spent{shown}, shared with its other apps; "
                "stopping cleanly, the next cycle resumes after midnight in the portal's "
                "time zone; lower [limits] to leave room for the other apps",
                side=SIDE,
            )
        wait = parse_retry_after(response.headers.get("Retry-After"))
        return TransientFailure(f"HTTP 429 {detail}", wait if wait is not None else BURST_WINDOW)
    if status >= 500:
        if not idempotent:
            return RemoteError(
                f"{what} failed with HTTP {status} and may have been applied; check the "
                "record before writing it again",
                side=SIDE,
                status=status,
            )
        return TransientFailure(f"HTTP {status} {detail}".strip())
    if status == 401:
        return AuthError(
            f"HubSpot refused the token ({detail}); for auth = 'private_app' set a valid "
            f"{SECTION} access_token (Settings > Integrations > Private apps), for 'oauth' "
            "check client_id, client_secret and refresh_token",
            side=SIDE,
        )
    if status == 403:
        scopes = missing_scopes(body)
        if scopes:
            return AuthError(
                f"{what} was refused: the app lacks the scope {' or '.join(scopes)}; add it "
                "to the private app (or the OAuth app's scopes, then re-authorize)",
                side=SIDE,
            )
        return AuthError(f"{what} was refused ({detail})", side=SIDE)
    if status == 400 and what.startswith("search"):
        return QueryError(f"{what} was refused ({detail}); check the configured names", side=SIDE)
    return RemoteError(f"{what} failed: HTTP {status} {detail}", side=SIDE, status=status)
