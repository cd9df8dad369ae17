"""Every HTTP call a connector makes, counted per endpoint and checked against a budget.

The meter sits in a ``requests`` transport adapter, so it sees each attempt the vendor
clients make, retries included (they cost quota too), and can refuse a call before it
is sent when the budget the engine set for this cycle is spent.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter

from connectors.exceptions import BudgetExhausted
from connectors.tls import CaBundleAdapter

log = logging.getLogger(__name__)

#: (pattern, replacement) pairs turning concrete paths into endpoint templates.
Templates = Sequence[tuple[re.Pattern[str], str]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CallMeter:
    """Calls of one side per endpoint template, with an optional budget (thread-safe)."""

    def __init__(
        self,
        side: str,
        templates: Templates = (),
        budget: int | None = None,
        read_only_posts: Sequence[str] = (),
    ) -> None:
        self.side = side
        self.templates = templates
        self.budget = budget
        self.read_only_posts = tuple(read_only_posts)
        self.by_endpoint: Counter[str] = Counter()
        self.reads = 0
        self.writes = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        """Calls made so far."""
        return self.reads + self.writes

    @property
    def remaining(self) -> int | None:
        """Calls left in the budget (None: unlimited)."""
        return None if self.budget is None else max(0, self.budget - self.total)

    def template(self, path: str) -> str:
        """The endpoint template of a concrete path."""
        for pattern, replacement in self.templates:
            path = pattern.sub(replacement, path)
        return path

    def is_write(self, method: str, template: str) -> bool:
        """Whether a call changes remote data (searches sent by POST are reads)."""
        if method not in WRITE_METHODS:
            return False
        return not any(template.endswith(suffix) for suffix in self.read_only_posts)

    def charge(self, method: str, url: str) -> None:
        """Count one call, or raise BudgetExhausted if the budget is already spent."""
        template = self.template(urlsplit(url).path)
        with self._lock:
            if self.budget is not None and self.total >= self.budget:
                raise BudgetExhausted(
                    f"the API budget of {self.budget} calls for this cycle is spent; "
                    "the next cycle resumes where this one stopped "
                    "(raise [limits] in the config to allow more)",
                    side=self.side,
                )
            self.by_endpoint[f"{method} {template}"] += 1
            if self.is_write(method, template):
                self.writes += 1
            else:
                self.reads += 1

    def snapshot(self) -> dict[str, Any]:
        """Counts in the sandbox stats' shape, for reports and tests."""
        with self._lock:
            return {
                "total": self.reads + self.writes,
                "reads": self.reads,
                "writes": self.writes,
                "by_endpoint": dict(sorted(self.by_endpoint.items())),
            }

    def reset(self, budget: int | None = None) -> None:
        """Zero the counts and set a new budget (at the start of a cycle)."""
        with self._lock:
            self.by_endpoint.clear()
            self.reads = self.writes = 0
            self.budget = budget


class Attempts:
    """The requests this thread sent while it was open, per ``(METHOD, path)``: every
    attempt, the vendor client's own retries included, so a message can say how many
    times a call was tried rather than how many it might have been."""

    def __init__(self) -> None:
        self.sent: Counter[tuple[str, str]] = Counter()
        #: The last request sent: the one a transport failure without its request was.
        self.last: tuple[str, str] | None = None

    def of(self, method: str, url: str | None) -> int:
        """How many times ``method url`` was sent (0 when not through a metered session)."""
        return self.sent[(method.upper(), urlsplit(url or "").path)]

    def of_last(self) -> int:
        """How many times the last request sent was sent (0: none was)."""
        return self.sent[self.last] if self.last is not None else 0


_open = threading.local()


@contextmanager
def counting_attempts() -> Iterator[Attempts]:
    """Count the requests this thread sends in the ``with`` body (nests)."""
    attempts = Attempts()
    stack: list[Attempts] = _open.__dict__.setdefault("stack", [])
    stack.append(attempts)
    try:
        yield attempts
    finally:
        stack.remove(attempts)


class MeteredAdapter(CaBundleAdapter):
    """Transport adapter that charges a :class:`CallMeter` for every request it sends."""

    def __init__(self, meter: CallMeter, ca_bundle: str | None = None, **kwargs: Any) -> None:
        self.meter = meter
        super().__init__(ca_bundle, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Charge the meter, count the attempt, then send (each call a DEBUG line: -vv)."""
        method = request.method or "GET"
        self.meter.charge(method, request.url or "")
        path = urlsplit(request.url or "").path  # no query: short, and never a secret
        for attempts in getattr(_open, "stack", ()):
            attempts.sent[(method, path)] += 1
            attempts.last = (method, path)
        if not log.isEnabledFor(logging.DEBUG):
            return super().send(request, **kwargs)
        started = time.monotonic()
        try:
            response = super().send(request, **kwargs)
        except Exception as exc:
            log.debug(
                "%s %s %s: no answer after %.2f s (%s)",
                self.meter.side,
                method,
                path,
                time.monotonic() - started,
                type(exc).__name__,
            )
            raise
        log.debug(
            "%s %s %s -> HTTP %s in %.2f s",
            self.meter.side,
            method,
            path,
            response.status_code,
            time.monotonic() - started,
        )
        return response


class PlainHttpRefused(requests.exceptions.InvalidURL):
    """A request to a plain ``http://`` URL: refused before anything is sent."""


class RefusePlainHttp(BaseAdapter):
    """The transport for ``http://``: sends nothing. The config only takes https:// URLs,
    but a redirect (a 307/308 would resend a login's body, password included) or a URL an
    answer hands us could still point at plain HTTP; credentials never travel in clear."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Refuse: raise :class:`PlainHttpRefused` naming where the request was going."""
        parts = urlsplit(request.url or "")
        raise PlainHttpRefused(
            f"refused to send {request.method or 'GET'} {parts.scheme}://{parts.hostname}"
            f"{parts.path} over plain http:// (credentials would travel in clear text); "
            "a redirect or an answer pointed there: use the site's https:// address"
        )

    def close(self) -> None:
        """Nothing to close."""


def instrument(
    session: requests.Session, meter: CallMeter, ca_bundle: str | None = None
) -> requests.Session:
    """Meter (and pin the CA of) every request ``session`` sends; refuse plain http://."""
    adapter = MeteredAdapter(meter, ca_bundle)
    session.mount("https://", adapter)
    session.mount("http://", RefusePlainHttp())
    if ca_bundle:
        session.verify = ca_bundle
    return session
