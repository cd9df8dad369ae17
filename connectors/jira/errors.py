"""Client errors converted once, at the connector boundary, into recovery classes.

``jira`` raises ``JIRAError`` for any non-2xx answer it did not retry (or stopped
retrying) and lets ``requests`` exceptions through for the transport. Here they become
the classes of :mod:`connectors.exceptions`, with messages that say what to do and never
carry a credential.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from jira.exceptions import JIRAError

from connectors.calls import Attempts, PlainHttpRefused, counting_attempts
from connectors.exceptions import (
    AuthError,
    ConfigError,
    ConnectorError,
    QueryError,
    RecordError,
    RejectedRecord,
    RemoteError,
    RetriableError,
    UnreachableError,
)
from connectors.failures import is_connect_failure, tls_failure, transport_reason
from connectors.jira.settings import SIDE, JiraSettings


def _retry_after(response: requests.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def retry_after_of(exc: JIRAError) -> float | None:
    """The ``Retry-After`` seconds of a refusal, if it carries a readable one."""
    return _retry_after(exc.response)


def not_retried_by_client(exc: JIRAError) -> bool:
    """Whether the client's ResilientSession gave up on this answer at once: 500, 502, 504
    and the other 5xx, and a 503 without Retry-After. (It retries 429, a 503 with
    Retry-After and a dropped connection ``max_retries`` times by itself; those are not
    ours to retry again.)"""
    status = exc.status_code
    if status is None or status < 500:
        return False
    return status != 503 or retry_after_of(exc) is None


def endpoint_of(url: str | None, method: str = "GET") -> str:
    """``METHOD /path`` of a request URL (no host, no query: short, and never a secret)."""
    path = urlsplit(url or "").path or "/"
    return f"{method} {path}"


def read_json(response: requests.Response, action: str, url: str) -> Any:
    """The JSON document of a 2xx answer; RemoteError naming the endpoint when the body is
    empty or not JSON (a proxy's or login page, a transfer cut short)."""
    method = response.request.method if response.request is not None else None
    where = endpoint_of(response.url, method or "GET")
    kind = response.headers.get("Content-Type") or "no content type"
    if not response.content:
        problem = "an empty body"
    else:
        try:
            # Invalid UTF-8 inside a string is kept as U+FFFD, as requests' .json() does.
            return json.loads(response.content.decode("utf-8", errors="replace"))
        except ValueError:
            problem = f"{len(response.content)} bytes that are not JSON ({kind})"
    raise RemoteError(
        f"Jira at {url} answered {action} ({where}, HTTP {response.status_code}) with "
        f"{problem}; check that [jira] url is the site root and that no proxy or login "
        "page intercepts the API; the next cycle tries again",
        side=SIDE,
        status=response.status_code,
    )


def _endpoint(exc: JIRAError) -> str:
    request = exc.response.request if exc.response is not None else None
    return endpoint_of(exc.url, (request.method if request is not None else None) or "GET")


def _record_errors(exc: JIRAError) -> list[RecordError]:
    """Jira's ``errorMessages``/``errors`` as record errors (``errors`` names fields)."""
    status = f"HTTP_{exc.status_code}"
    body: Any = None
    if exc.response is not None:
        try:
            body = exc.response.json()
        except ValueError:
            body = None
    out: list[RecordError] = []
    if isinstance(body, dict):
        out += [RecordError(status, str(m)) for m in body.get("errorMessages") or ()]
        errors = body.get("errors")
        if isinstance(errors, dict):
            out += [RecordError(status, str(m), (str(f),)) for f, m in errors.items()]
    return out or [RecordError(status, exc.text or "no reason given")]


class ErrorBoundary:
    """Turns client exceptions into :mod:`connectors.exceptions` for one Jira site."""

    def __init__(self, settings: JiraSettings) -> None:
        self.settings = settings
        #: ``METHOD /path (HTTP n, content type)`` of the last answer, for messages.
        self.last_answer = ""

    def observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Response hook: remember what answered last (the client hides it on a body
        that is not JSON)."""
        method = response.request.method if response.request is not None else None
        kind = response.headers.get("Content-Type") or "no content type"
        self.last_answer = (
            f"{endpoint_of(response.url, method or 'GET')}, HTTP {response.status_code}, {kind}"
        )

    @contextmanager
    def guard(
        self,
        action: str,
        *,
        key: str | None = None,
        jql: str | None = None,
        connecting: bool = False,
    ) -> Iterator[None]:
        """Run a client call; re-raise its failure classified.

        ``key``: the call writes that issue (400/404 reject the record, not the cycle).
        ``jql``: the call runs that query (400 is a query the config must fix).
        ``connecting``: the first contact (a connection failure means unreachable).

        Messages count the attempts the failing request got (the client's retries and
        ours, as the transport saw them), not the most it might have had.
        """
        with counting_attempts() as attempts:
            try:
                yield
            except ConnectorError:
                raise
            except JIRAError as exc:
                request = exc.response.request if exc.response is not None else None
                tries = attempts.of(_method(request), exc.url)
                error = self.from_jira(exc, action, key=key, jql=jql, tries=tries)
                if isinstance(error, AuthError):
                    raise error from None
                raise error from exc
            except requests.exceptions.SSLError as exc:
                raise self._unreachable(action, exc, tls=True) from None
            except requests.exceptions.ConnectionError as exc:
                if connecting:
                    raise self._unreachable(action, exc, tls=False) from None
                raise self._connection_lost(action, exc, attempts) from exc
            except requests.exceptions.Timeout as exc:
                raise RetriableError(
                    f"Jira did not answer within {self.settings.timeout_seconds:g} s while trying "
                    f"to {action}; the next cycle tries again (or raise [jira] timeout_seconds)",
                    side=SIDE,
                ) from exc
            except PlainHttpRefused as exc:
                raise ConfigError(f"{exc} (set in [jira] url?)", side=SIDE) from None
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
                raise ConfigError(
                    f"[jira] url {self.settings.url!r} is not usable: {exc}", side=SIDE
                ) from None
            except ValueError:  # a 2xx answer that is not JSON (a login or proxy page)
                where = f" ({self.last_answer})" if self.last_answer else ""
                raise RemoteError(
                    f"Jira at {self.settings.url} answered {action}{where} with something that "
                    "is not JSON; check that [jira] url is the site root and that no proxy or "
                    "login page intercepts the API; the next cycle tries again",
                    side=SIDE,
                ) from None

    def _connection_lost(
        self, action: str, exc: requests.exceptions.ConnectionError, attempts: Attempts
    ) -> RetriableError:
        """A connection that could not be made, or broke, on every attempt it got."""
        request = exc.request if isinstance(exc.request, requests.PreparedRequest) else None
        sent = attempts.of(_method(request), request.url) if request else attempts.of_last()
        tries = _tries(sent)
        reason = transport_reason(exc)
        if is_connect_failure(exc):
            return RetriableError(
                f"cannot reach Jira at {self.settings.url} to {action} ({reason}{tries}); "
                "check [jira] url and the network or proxy; the next cycle tries again",
                side=SIDE,
            )
        return RetriableError(
            f"the connection to Jira broke while trying to {action} ({reason}{tries}); "
            "the next cycle tries again",
            side=SIDE,
        )

    def from_jira(
        self,
        exc: JIRAError,
        action: str,
        *,
        key: str | None = None,
        jql: str | None = None,
        tries: int = 0,
    ) -> ConnectorError:
        """The recovery class of one ``JIRAError``; ``tries``: how many times the request
        was sent (0: not known)."""
        status = exc.status_code
        url = self.settings.url
        reason = exc.text or "no reason given"
        if status == 401:
            return AuthError(
                f"Jira at {url} refused the credentials (HTTP 401) while trying to {action}; "
                f"check {self.settings.credential_hint}",
                side=SIDE,
            )
        if status == 403:
            return AuthError(
                f"Jira at {url} refused to {action} (HTTP 403: {reason}); check that the "
                f"user of {self.settings.credential_hint} has permission (browse, edit, "
                "comment on the projects in scope)",
                side=SIDE,
            )
        if status is not None and (status == 429 or status >= 500):
            retry_after = _retry_after(exc.response)
            answered = "kept answering" if tries > 1 else "answered"
            detail = f"{answered} HTTP {status} to {action} ({_endpoint(exc)}{_tries(tries)})"
            # 429 and a 503 with Retry-After say "later": more retries would wait longer.
            if status == 429 or (status == 503 and retry_after is not None):
                detail += "; the next cycle tries again (raise [jira] max_retries to wait longer)"
            else:
                detail += "; the next cycle tries again"
            return RetriableError(f"Jira {detail}", side=SIDE, retry_after=retry_after)
        if key is not None and status in (400, 404, 409, 413):
            return RejectedRecord(key, _record_errors(exc), side=SIDE)
        if jql is not None and status == 400:
            return QueryError(
                f"Jira refused the search {jql!r}: {reason}; check [jira] projects and jql",
                side=SIDE,
            )
        if status == 410:
            return RemoteError(
                f"Jira at {url} answered 410 Gone to {action}: Jira Cloud removed /search; "
                "set [jira] deployment to auto or cloud",
                side=SIDE,
                status=status,
            )
        return RemoteError(
            f"Jira at {url} answered HTTP {status} to {action}: {reason}",
            side=SIDE,
            status=status,
        )

    def _unreachable(self, action: str, exc: Exception, *, tls: bool) -> UnreachableError:
        if tls:
            failure = tls_failure(
                exc, section="[jira]", ca_bundle=self.settings.ca_bundle, url_keys="[jira] url"
            )
            return UnreachableError(failure.line(f"Jira at {self.settings.url}"), side=SIDE)
        ca = self.settings.ca_bundle or "not set"
        return UnreachableError(
            f"cannot reach Jira at {self.settings.url} to {action} ({transport_reason(exc)}); "
            f"check [jira] url, the network or proxy, and [jira] ca_bundle (now {ca})",
            side=SIDE,
        )


def _method(request: requests.PreparedRequest | None) -> str:
    return (request.method if request is not None else None) or "GET"


def _tries(n: int) -> str:
    """``; 4 attempts`` / ``; 1 attempt, not retried`` (nothing when not counted)."""
    if n <= 0:
        return ""
    return "; 1 attempt, not retried" if n == 1 else f"; {n} attempts"
