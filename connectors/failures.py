"""Transport failures in plain words, for the one line a user reads.

``requests`` wraps what went wrong three deep: ``SSLError(MaxRetryError("... Max retries
exceeded with url ... (Caused by SSLError(SSLCertVerificationError(1, '[SSL:
CERTIFICATE_VERIFY_FAILED] ...')))"))``. Its text names a retry count that is urllib3's,
not ours, and reprs of objects. Here the innermost cause is found and said briefly:
"connection refused", "the certificate is not signed by the CA in [jira] ca_bundle".

Also the two small helpers every connector's error handling shares: :func:`redact` and
:func:`parse_retry_after`.
"""

from __future__ import annotations

import email.utils
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

#: OpenSSL verification codes meaning "no trusted CA signed this chain".
_UNTRUSTED = frozenset({2, 18, 19, 20, 21, 27})
_NOT_YET_VALID = 9
_EXPIRED = 10
_HOST_MISMATCH = 62
_SSL_TEXT = re.compile(r"^\[SSL(?:: [A-Z_]+)?\]\s*|\s*\(_ssl\.c:\d+\)$")


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (args, urllib3's ``reason``, the exception chain),
    outermost first, each once."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            inner.append(reason)
        inner += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo.extend(inner)


def transport_reason(exc: BaseException) -> str:
    """What a connection failure comes down to, in a few words: ``connection refused``,
    ``the host name was not found``, ``timed out``, ``connection reset by peer``."""
    for cause in causes(exc):
        if isinstance(cause, socket.gaierror):
            return f"the host name was not found ({cause.strerror or cause})"
        if isinstance(cause, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(cause, ssl.SSLError):
            return tls_reason(cause)
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[0].lower() + cause.strerror[1:]
    for cause in causes(exc):  # no OS error inside: the innermost message, short
        if not any(isinstance(a, BaseException) for a in getattr(cause, "args", ())):
            text = str(cause)
            if "Remote end closed connection" in text:
                return "the server closed the connection without answering"
            if text and "Max retries exceeded" not in text:
                return _short(re.sub(r"^[A-Za-z]+Connection(?:Pool)?\([^)]*\):\s*", "", text))
    return _short(type(exc).__name__)


def is_connect_failure(exc: BaseException) -> bool:
    """Whether no connection was made at all (refused, unknown host, connect timeout), as
    opposed to one that broke after it was made."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    return any(isinstance(c, NewConnectionError | ConnectTimeoutError) for c in causes(exc))


def tls_reason(exc: BaseException) -> str:
    """The short reason of a TLS failure: OpenSSL's verification message, or the handshake
    error without its ``[SSL: ...]`` tag and source line."""
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_message:
            return str(cause.verify_message)
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLError):
            text = cause.args[1] if len(cause.args) > 1 else str(cause)
            return _short(_SSL_TEXT.sub("", str(text)) or str(cause.reason or "TLS error"))
    return "TLS error"


@dataclass(frozen=True)
class TlsFailure:
    """A TLS failure said for one side: what is wrong with the certificate, and the fix."""

    problem: str
    fix: str
    #: The certificate was refused (else the handshake failed before it was read).
    certificate: bool = True

    def line(self, who: str) -> str:
        """``cannot verify the TLS certificate of <who>: <problem>; <fix>``."""
        if not self.certificate:
            return f"the TLS handshake with {who} failed ({self.problem}); {self.fix}"
        return f"cannot verify the TLS certificate of {who}: {self.problem}; {self.fix}"


def tls_failure(
    exc: BaseException, *, section: str, ca_bundle: str | None, url_keys: str
) -> TlsFailure:
    """What a TLS failure means for the config ``section`` (``[jira]``): the certificate
    is signed by a CA the bundle does not hold, is for another host, has expired...; the
    fix names the key to change (``ca_bundle``, or ``url_keys`` for a host mismatch)."""
    reason = tls_reason(exc)
    code = next(
        (c.verify_code for c in causes(exc) if isinstance(c, ssl.SSLCertVerificationError)),
        None,
    )
    key = f"{section} ca_bundle"
    if code in _UNTRUSTED:
        where = (
            f"the CA in {key} ({ca_bundle})"
            if ca_bundle
            else f"a CA of the system store ({key} is not set)"
        )
        return TlsFailure(
            f"the certificate is not signed by {where} (OpenSSL: {reason})",
            f"set {key} to the PEM file of the CA that signed the site's certificate",
        )
    if code == _HOST_MISMATCH:
        return TlsFailure(
            f"the certificate is for another host name ({reason})",
            f"check that {url_keys} names the host the certificate was issued to",
        )
    if code == _EXPIRED:
        return TlsFailure(
            f"the certificate has expired ({reason})",
            "the site must renew it (or this machine's clock is wrong)",
        )
    if code == _NOT_YET_VALID:
        return TlsFailure(
            f"the certificate is not valid yet ({reason})", "check this machine's clock"
        )
    if code is not None:
        bundle = ca_bundle or "not set: the system store"
        return TlsFailure(f"the certificate was refused ({reason})", f"check {key} (now {bundle})")
    return TlsFailure(
        reason, f"check that {url_keys} is the site's https:// address", certificate=False
    )


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
