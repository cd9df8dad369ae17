"""Salesforce's answers classified by how to recover: retry, stop, fix config or credentials.

:func:`convert` is the one place a simple-salesforce exception becomes one of ours
(``connectors.exceptions``) or a :class:`TransientFailure` the retry policy acts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simple_salesforce.exceptions import SalesforceError

from connectors.exceptions import (
    AuthError,
    BudgetExhausted,
    QueryError,
    RemoteError,
    RetriableError,
)
from connectors.failures import parse_retry_after as parse_retry_after
from connectors.failures import redact
from connectors.retry import TransientFailure

SIDE = "salesforce"

#: Error codes worth another attempt whatever the HTTP status.
RETRY_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
#: Codes of a query the org refuses because of the names in it (usually our config).
QUERY_CODES = frozenset(
    {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "INVALID_QUERY_FILTER_OPERATOR"}
)


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API usage from the last ``Sforce-Limit-Info`` header."""

    used: int
    total: int

    @property
    def remaining(self) -> int:
        """Calls left today (org-wide, all clients)."""
        return max(0, self.total - self.used)


class Unfinished(TransientFailure):
    """A retriable condition whose partial result the caller keeps when retries run out
    (row locks on some records of a collection); never turned into RetriableError."""


class NoConnection(TransientFailure):
    """No connection could be established (refused, DNS, connect timeout)."""


def first_error(content: Any) -> tuple[str, str]:
    """(errorCode, message) of a Salesforce error body (a list, a dict, or text)."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        item = content[0]
        code = item.get("errorCode") or item.get("statusCode") or ""
        return str(code), str(item.get("message", ""))
    if isinstance(content, dict):
        code = content.get("errorCode") or content.get("error") or ""
        return str(code), str(content.get("message") or content.get("error_description") or "")
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return "", str(content)[:300]


def convert(
    what: str,
    exc: SalesforceError,
    usage: ApiUsage | None,
    retry_after: float | None,
    secrets: tuple[str, ...],
) -> Exception:
    """Our error for a simple-salesforce error (a TransientFailure: worth another try)."""
    code, message = first_error(exc.content)
    message = redact(message, secrets)
    status = exc.status
    detail = f"{code}: {message}" if code else message
    # The daily org limit is a 403; 429s and concurrent-request limits pass with time.
    if code == "REQUEST_LIMIT_EXCEEDED" and status == 403 and "concurrent" not in message.lower():
        shown = f" ({usage.used}/{usage.total} calls used)" if usage else ""
        return BudgetExhausted(
            f"the org's daily API limit is spent{shown}; stopping cleanly, the next cycle "
            "resumes when Salesforce frees calls (rolling 24 hours); lower [limits] to "
            "leave room for other integrations",
            side=SIDE,
        )
    if status == 429 or status >= 500 or code in RETRY_CODES or code == "REQUEST_LIMIT_EXCEEDED":
        return TransientFailure(f"HTTP {status} {detail}".strip(), retry_after)
    if code == "INVALID_QUERY_LOCATOR":
        return RetriableError(
            f"{what}: the query cursor expired ({message}); the next cycle starts again",
            side=SIDE,
        )
    if status == 403:
        return AuthError(
            f"{what} was refused ({detail}); give the integration user the permission "
            "to read/write that object and its fields",
            side=SIDE,
        )
    if status == 400 and code in QUERY_CODES:
        return QueryError(f"{what} was refused ({detail}); check the configured names", side=SIDE)
    return RemoteError(f"{what} failed: HTTP {status} {detail}", side=SIDE, status=status)
