"""The session with Salesforce: login, every call retried and converted once, describes.

:meth:`SalesforceClient.call` is the one place a simple-salesforce call runs: inside the
retry policy (connection errors, 429, 5xx, UNABLE_TO_LOCK_ROW), with one re-login on an
expired session for login-based auth, and with simple-salesforce's exceptions turned into
ours (``connectors.exceptions``) on the way out.
"""

from __future__ import annotations

import difflib
import functools
import json
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from urllib3.exceptions import MaxRetryError, NewConnectionError

from connectors import soql
from connectors.calls import CallMeter, PlainHttpRefused, instrument
from connectors.exceptions import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    RemoteError,
    RetriableError,
    UnreachableError,
)
from connectors.failures import tls_failure, transport_reason
from connectors.retry import RetryPolicy, TransientFailure
from connectors.salesforce.auth import LOGINS, TimeoutSession, auth_error, new_meter
from connectors.salesforce.errors import (
    SIDE,
    ApiUsage,
    NoConnection,
    Unfinished,
    convert,
    first_error,
    parse_retry_after,
)
from connectors.salesforce.settings import SECTION, SalesforceSettings, origin

T = TypeVar("T")


class SalesforceClient:
    """A logged-in simple-salesforce client behind retries, metering and error conversion.

    Building one never talks to the network; :meth:`connect` (or the first call) does.
    """

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        meter: CallMeter | None = None,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        settings.check()
        self.settings = settings
        self.meter = meter or new_meter()
        self.session = instrument(
            session or TimeoutSession(settings.timeout), self.meter, settings.ca_bundle
        )
        self.session.hooks["response"].append(self._observe)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.logins = 0
        self._sf: Salesforce | None = None
        self._usage: ApiUsage | None = None
        self._usage_at = 0.0
        self._retry_after: float | None = None
        self._last_status = 0
        self._last_endpoint = ""
        self._last_type = ""
        self._describes: dict[str, dict[str, Any]] = {}

    # -- session --------------------------------------------------------------------------

    def connect(self) -> None:
        """Log in (login-based auth) and build the simple-salesforce client."""
        s = self.settings
        if s.login_based:
            session_id, instance_url = self._login()
        else:
            session_id, instance_url = s.access_token or "", s.instance_url or ""
        self._sf = Salesforce(
            instance_url=instance_url,
            session_id=session_id,
            version=s.api_version,
            session=self.session,
        )

    @property
    def sf(self) -> Salesforce:
        """The simple-salesforce client (connecting on first use)."""
        if self._sf is None:
            self.connect()
        assert self._sf is not None
        return self._sf

    @property
    def instance_url(self) -> str:
        """The instance the session talks to (after connect)."""
        return f"https://{self.sf.sf_instance}"

    @property
    def api_usage(self) -> ApiUsage | None:
        """The org's API usage (used/total) as last reported, None before any call."""
        return self._usage

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Response hook: remember limit usage, Retry-After and status of the last answer."""
        self._last_status = response.status_code
        method = response.request.method if response.request is not None else None
        self._last_endpoint = f"{method or 'GET'} {urlsplit(response.url).path or '/'}"
        self._last_type = response.headers.get("Content-Type") or "no content type"
        self._retry_after = parse_retry_after(response.headers.get("Retry-After"))
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self._usage = ApiUsage(usage.used, usage.total)
                self._usage_at = time.monotonic()

    def _login(self) -> tuple[str, str]:
        s = self.settings
        login = LOGINS[s.auth]

        def attempt() -> tuple[str, str]:
            try:
                return self._guard(s.login_url, lambda: login(s, self.session), idempotent=True)
            except SalesforceAuthenticationFailed as exc:
                # A refused SOAP login is a 500 carrying a fault code (INVALID_LOGIN), a
                # refused OAuth grant a 400 with an error code; only a 429/5xx without
                # such a code is an outage worth retrying.
                if not isinstance(exc.code, str) and (
                    self._last_status == 429 or self._last_status >= 500
                ):
                    raise TransientFailure(
                        f"login answered HTTP {self._last_status}", self._retry_after
                    ) from None
                raise auth_error(s, exc) from None

        result = self._retrying(f"login at {s.login_url}", s.login_url, attempt)
        self.logins += 1
        return result

    # -- calls ----------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[Salesforce], T], *, idempotent: bool = True) -> T:
        """Run ``fn(sf)`` with retries, one re-login on an expired session, and our errors.

        ``what`` names the call in messages. With ``idempotent=False`` a call that may have
        been applied is not sent again (429s, row locks and refused connections still are).
        """
        self._check_org_budget(what)
        relogged = False
        while True:
            sf = self.sf
            base = f"https://{sf.sf_instance}"
            try:
                return self._retrying(
                    what, base, functools.partial(self._attempt, what, base, sf, fn, idempotent)
                )
            except SalesforceExpiredSession as exc:
                if _rest_refused(exc):
                    # Not an expired session: the org refuses REST for it, and a fresh
                    # login gets the same answer. Only an admin's change helps.
                    raise AuthError(self._rest_refused_message(), side=SIDE) from None
                if not self.settings.login_based:
                    raise AuthError(
                        "Salesforce refused the access token (INVALID_SESSION_ID): it expired "
                        f"or was revoked; set a fresh {SECTION} access_token, or configure a "
                        "login-based auth so sessions renew themselves",
                        side=SIDE,
                    ) from None
                if relogged:
                    raise AuthError(
                        "Salesforce refused a session right after a successful login "
                        "(INVALID_SESSION_ID); check that the user has the 'API Enabled' "
                        "permission and that the session is not locked to another IP",
                        side=SIDE,
                    ) from None
                relogged = True
                self.connect()

    @property
    def org_reserve(self) -> int:
        """Daily calls left to the org's other integrations (0 before any answer)."""
        usage = self._usage
        if usage is None:
            return 0
        return int(usage.total * self.settings.daily_reserve_percent / 100)

    @property
    def paced(self) -> bool:
        """Whether the org's daily usage is near our reserve (within twice it): writes go
        one request at a time then, leaving the org's concurrency to others."""
        usage, reserve = self._usage, self.org_reserve
        return usage is not None and reserve > 0 and usage.remaining <= 2 * reserve

    def _check_org_budget(self, what: str) -> None:
        """Stop before ``what`` when the org's daily usage (``Sforce-Limit-Info`` on the
        last answer) leaves no more than the reserve for its other integrations."""
        usage, reserve = self._usage, self.org_reserve
        if usage is None or reserve <= 0 or usage.remaining > reserve:
            return
        if time.monotonic() - self._usage_at > USAGE_FRESH:
            return  # an old report (a long-lived serve): one call goes and brings a new one
        reason = (
            f"Sforce-Limit-Info shows {usage.used:,} of the org's {usage.total:,} daily calls "
            f"used: the {usage.remaining:,} left are kept for its other integrations by "
            f"{SECTION} daily_reserve_percent = {self.settings.daily_reserve_percent:g}"
        )
        raise BudgetExhausted(
            f"stopping before {what}: {reason}; the next cycle resumes when Salesforce frees "
            "calls (its limit is a rolling 24 hours)",
            side=SIDE,
            reason=reason,
        )

    def _rest_refused_message(self) -> str:
        issuer = (
            "the connected app you log in through"
            if self.settings.login_based
            else "the connected app that issued the access_token"
        )
        return (
            f"Salesforce took the {'login' if self.settings.login_based else 'access token'} "
            f"as {self.settings.username or 'the integration user'} but refuses the session "
            f"for the REST API (INVALID_SESSION_ID: {REST_REFUSED}); logging in again will not "
            f"help. An admin must allow API access: give {issuer} the OAuth scope 'api' "
            "(Manage user data via APIs), give the user's profile or a permission set the "
            "'API Enabled' permission, and check the connected app's IP Relaxation and the "
            "profile's Login IP Ranges (and API Access Control, if the org uses it)"
        )

    def _retrying(self, what: str, base: str, attempt: Callable[[], T]) -> T:
        try:
            return self.retry.call(attempt, self.sleep)
        except Unfinished:
            raise
        except NoConnection as exc:  # on every attempt: the policy stops only when spent
            raise self._unreachable(base, f"{exc}; {_attempts(self.retry.attempts)}") from None
        except TransientFailure as exc:
            # Only a spent policy lets a TransientFailure out: every attempt was made.
            raise RetriableError(
                f"{what} still failed after {_attempts(self.retry.attempts)} ({exc}); "
                "nothing was lost, the next cycle tries again",
                side=SIDE,
                retry_after=exc.retry_after,
            ) from None

    def _attempt(
        self,
        what: str,
        base: str,
        sf: Salesforce,
        fn: Callable[[Salesforce], T],
        idempotent: bool,
    ) -> T:
        try:
            return self._guard(base, lambda: fn(sf), idempotent)
        except SalesforceExpiredSession:
            raise
        except SalesforceError as exc:
            error = convert(what, exc, self._usage, self._retry_after, self.settings.secrets)
            if not idempotent and isinstance(error, TransientFailure) and exc.status >= 500:
                error = RetriableError(
                    f"{what} failed with HTTP {exc.status} and may have been applied; "
                    "check the record before writing it again",
                    side=SIDE,
                )
            raise error from None

    def _guard(self, base: str, fn: Callable[[], T], idempotent: bool) -> T:
        """Run ``fn``; transport failures become TransientFailure or UnreachableError."""
        try:
            return fn()
        except PlainHttpRefused as exc:
            raise ConfigError(
                f"{exc} (check {SECTION} login_url and instance_url)", side=SIDE
            ) from None
        except requests.exceptions.SSLError as exc:
            failure = tls_failure(
                exc,
                section=SECTION,
                ca_bundle=self.settings.ca_bundle,
                url_keys=f"{SECTION} login_url and instance_url",
            )
            raise UnreachableError(
                failure.line(f"Salesforce at {origin(base)}"), side=SIDE
            ) from None
        except requests.exceptions.ConnectTimeout:
            raise NoConnection(f"no connection within {self.settings.timeout:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            inner = exc.args[0] if exc.args else None
            if isinstance(inner, MaxRetryError) and isinstance(inner.reason, NewConnectionError):
                raise NoConnection(transport_reason(exc)) from None
            if not idempotent:
                raise RetriableError(
                    f"the connection broke during a write that is not safe to repeat "
                    f"({transport_reason(exc)}); check the record before retrying",
                    side=SIDE,
                ) from None
            raise TransientFailure(f"connection error: {transport_reason(exc)}") from None
        except requests.exceptions.Timeout:
            if not idempotent:
                raise RetriableError(
                    "a write that is not safe to repeat timed out; check the record",
                    side=SIDE,
                ) from None
            raise TransientFailure(f"no answer within {self.settings.timeout:g} s") from None
        except (json.JSONDecodeError, requests.exceptions.JSONDecodeError):
            # A 2xx answer that is not JSON: a proxy's or login page, a transfer cut short.
            raise RemoteError(
                f"Salesforce at {origin(base)} answered {self._last_endpoint} (HTTP "
                f"{self._last_status}, {self._last_type}) with a body that is not JSON; check "
                f"{SECTION} instance_url and login_url and that no proxy or login page "
                "intercepts the API; the next cycle tries again",
                side=SIDE,
                status=self._last_status,
            ) from None

    def _unreachable(self, base: str, reason: str) -> UnreachableError:
        return UnreachableError(
            f"cannot reach Salesforce at {origin(base)} ({reason}); check {SECTION} "
            "login_url and instance_url, and the network or proxy",
            side=SIDE,
        )

    # -- describe -------------------------------------------------------------------------

    def restore_describe(self, sobject: str, describe: dict[str, Any]) -> None:
        """Use a describe cached from an earlier run instead of reading it again."""
        self._describes[soql.identifier(sobject).lower()] = dict(describe)

    def describe(self, sobject: str) -> dict[str, Any]:
        """The describe of one object, fetched once per client (one per run)."""
        key = soql.identifier(sobject).lower()
        if key not in self._describes:
            try:
                result = self.call(
                    f"describe {sobject}",
                    lambda sf: sf.restful(f"sobjects/{sobject}/describe"),
                )
            except RemoteError as exc:
                if exc.status != 404:
                    raise
                names = [str(o.get("name")) for o in self._global_describe()]
                raise ConfigError(
                    f"Salesforce has no object {sobject!r} visible to this user"
                    f"{_candidates(sobject, names)}; check the configured object name and "
                    "the user's object permissions",
                    side=SIDE,
                ) from None
            self._describes[key] = dict(result or {})
        return self._describes[key]

    def _global_describe(self) -> list[dict[str, Any]]:
        result = self.call("describe", lambda sf: sf.describe())
        return list((result or {}).get("sobjects", []))

    def resolve_fields(self, sobject: str, fields: Iterable[str]) -> list[str]:
        """The fields' API names as describe spells them; ConfigError for a missing one."""
        described = self.describe(sobject)
        by_lower = {str(f["name"]).lower(): str(f["name"]) for f in described.get("fields", [])}
        resolved = []
        for name in fields:
            if "." in soql.identifier(name):
                resolved.append(self._resolve_path(described, sobject, name))
                continue
            found = by_lower.get(soql.identifier(name).lower())
            if found is None:
                raise ConfigError(
                    f"{described.get('name', sobject)} has no field {name!r} visible to this "
                    f"user{_candidates(name, list(by_lower.values()))}; fix the field name in "
                    "the config or the user's field-level security",
                    side=SIDE,
                )
            resolved.append(found)
        return resolved

    def _resolve_path(self, described: dict[str, Any], sobject: str, path: str) -> str:
        """A parent relationship path such as ``Owner.Name``, its relationship spelled as
        describe has it. The parent's own field is not described: that would cost one
        more call per run for a standard field (``Name``) every parent object has."""
        relationship, _, rest = path.partition(".")
        by_relationship = {
            str(f["relationshipName"]).lower(): str(f["relationshipName"])
            for f in described.get("fields", [])
            if f.get("relationshipName")
        }
        found = by_relationship.get(relationship.lower())
        if found is None:
            raise ConfigError(
                f"{described.get('name', sobject)} has no relationship {relationship!r} visible "
                f"to this user{_candidates(relationship, list(by_relationship.values()))}; fix "
                "the field path in the config or the user's field-level security",
                side=SIDE,
            )
        return f"{found}.{rest}"

    def field_info(self, sobject: str, name: str) -> dict[str, Any]:
        """The describe entry of one field (ConfigError when missing)."""
        (resolved,) = self.resolve_fields(sobject, [name])
        fields = self.describe(sobject).get("fields", [])
        return next(dict(f) for f in fields if f["name"] == resolved)


#: Seconds a Sforce-Limit-Info report is trusted to refuse a call before it is sent; past
#: that (the next cycle of a long-lived ``serve``) a call goes out and reports afresh.
USAGE_FRESH = 60.0

#: What Salesforce says on a 401 for a live session it will not take for REST.
REST_REFUSED = "This session is not valid for use with the REST API"


def _rest_refused(exc: SalesforceExpiredSession) -> bool:
    """Whether a 401 is the "not valid for use with the REST API" kind (connected app,
    profile or IP policy), not an expired or revoked session."""
    _, message = first_error(exc.content)
    return REST_REFUSED.lower() in message.lower()


def _candidates(name: str, names: list[str]) -> str:
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(lowered[c] for c in close)}?)" if close else ""


def _attempts(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"
