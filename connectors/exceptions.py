"""Errors classified by how to recover from them, converted once at the connector boundary.

The engine decides from the class alone: fix the config, fix the credentials, try again
later, park one record, or stop the cycle because an API budget is spent. Every message
says what to do and never contains a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""

    #: Which remote ("jira", "salesforce", ...), for messages and exit codes.
    side: str = ""

    def __init__(self, message: str, *, side: str = "") -> None:
        super().__init__(message)
        self.message = message
        if side:
            self.side = side

    def __str__(self) -> str:
        return f"{self.side}: {self.message}" if self.side else self.message


class ConfigError(ConnectorError):
    """The configuration names something the remote does not have, or is inconsistent.

    Recovery: a person fixes the config; retrying changes nothing.
    """


class AuthError(ConnectorError):
    """Credentials were refused or a session could not be (re-)established.

    Recovery: a person fixes the credentials or permissions.
    """


class UnreachableError(ConnectorError):
    """The remote could not be reached at all (DNS, refused, TLS verification).

    Recovery: check the URL, the network and ``ca_bundle``; then retry.
    """


class RetriableError(ConnectorError):
    """A transient failure (connection reset, 429, 5xx, row lock) that outlasted our retries.

    Recovery: the next cycle tries again; nothing was lost.
    """

    def __init__(self, message: str, *, side: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, side=side)
        self.retry_after = retry_after


class BudgetExhausted(ConnectorError):
    """An API budget is spent: ours per cycle/day, or the remote's (REQUEST_LIMIT_EXCEEDED).

    Recovery: stop cleanly, commit what is done, resume next cycle.
    """

    #: Why a connector stopped before the remote's own limit refused a call (the usage
    #: its headers showed and the setting that keeps the rest free), for the run's message.
    reason: str | None = None

    def __init__(self, message: str, *, side: str = "", reason: str | None = None) -> None:
        super().__init__(message, side=side)
        self.reason = reason


class RemoteError(ConnectorError):
    """The remote answered with an error we do not expect (a bug on one side or the other)."""

    def __init__(self, message: str, *, side: str = "", status: int | None = None) -> None:
        super().__init__(message, side=side)
        self.status = status


class QueryError(ConfigError):
    """The remote refused a query (JQL/SOQL), usually because of configured names."""


@dataclass(frozen=True)
class RecordError:
    """Why the remote refused one record of a batch (not an exception: batches go on)."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    @classmethod
    def from_salesforce(cls, error: dict[str, Any]) -> RecordError:
        """From an sObject Collections per-record error."""
        return cls(
            code=str(error.get("statusCode") or error.get("errorCode") or "UNKNOWN"),
            message=str(error.get("message", "")),
            fields=tuple(str(f) for f in error.get("fields") or ()),
        )

    def __str__(self) -> str:
        where = f" (fields: {', '.join(self.fields)})" if self.fields else ""
        return f"{self.code}: {self.message}{where}"


class RejectedRecord(ConnectorError):
    """One record the remote rejected; raised only where a single write is made.

    Recovery: park the record with its errors and go on with the rest.
    """

    def __init__(self, key: str, errors: list[RecordError], *, side: str = "") -> None:
        self.key = key
        self.errors = errors
        detail = "; ".join(str(e) for e in errors) or "no reason given"
        super().__init__(f"record {key} rejected: {detail}", side=side)
