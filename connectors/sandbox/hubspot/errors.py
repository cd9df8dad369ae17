"""HubSpot's error answers and the messages and limits they quote."""

from __future__ import annotations

import secrets
from typing import Any, Final

from connectors.sandbox.http import SandboxResponse

BURST_INTERVAL_MS: Final = 10_000
NO_CREDENTIALS: Final = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
    "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
MISSING_SCOPES_MESSAGE: Final = (
    "This app hasn't been granted all required scopes to make this call. Read more about "
    "required scopes here: https://developers.hubspot.com/scopes."
)


def hs_error(
    status: int,
    message: str,
    category: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> SandboxResponse:
    """HubSpot's error shape."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": secrets.token_hex(8),
        "category": category or _CATEGORIES.get(status, "UNKNOWN"),
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return SandboxResponse.json(body, status=status)


_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    414: "URI_TOO_LONG",
    429: "RATE_LIMITS",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
