"""Pacing by Jira Cloud's rate-limit headers: slow down before the 429, not only after.

Jira Cloud limits requests per second per endpoint and method (``jira-burst-based``) and
writes per issue (``jira-per-issue-on-write``), and says where a caller stands in each
answer: ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (ISO 8601,
when the window frees), ``X-RateLimit-NearLimit`` (under 20% left), ``RateLimit-Reason``
and ``Retry-After`` on a 429, and for the points quota of apps ``Beta-RateLimit``
(``r=`` left, ``t=`` seconds to reset). :class:`Pacer` keeps what the last answer of each
endpoint said and, before the next request to it:

- waits for the window's reset when nothing is left (the request would be refused);
- near the limit, spreads what is left over the rest of the window;
- after a per-issue 429, waits out its Retry-After before writing to that issue again
  (other issues and endpoints go on; the client's own retry of that request waits too).

It is shared by the connector's clients (threads): one lock guards its state, and each
request reserves one call of its window so requests in flight are counted. A site that
sends no such header is never slowed. :class:`PacedAdapter` runs it around every attempt
the metered transport sends, the client's retries included.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from connectors.calls import CallMeter, MeteredAdapter
from connectors.jira.settings import JIRA_TEMPLATES

#: The longest single wait pacing makes (a Reset far off is a clock problem, not a plan).
MAX_WAIT: Final = 60.0
#: Under this share of the window left, requests are spread over what remains.
NEAR: Final = 0.2
PER_ISSUE: Final = "jira-per-issue-on-write"
_ISSUE = re.compile(r"/rest/api/[^/]+/issue/([^/]+)")
_BETA = re.compile(r"\br=(\d+).*?\bt=(\d+)|\bt=(\d+).*?\br=(\d+)")
_QUOTA = re.compile(r"\bq=(\d+)")


@dataclass
class _Window:
    limit: int
    remaining: int
    reset_at: float  # monotonic


def _reset_seconds(value: str | None, wall: float) -> float | None:
    """Seconds until an ISO 8601 ``X-RateLimit-Reset`` (None when unreadable)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - wall


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Pacer:
    """What Jira's rate-limit headers said, per endpoint and per issue (thread-safe)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self._meter = CallMeter("jira", JIRA_TEMPLATES)  # its templates only
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._issues: dict[str, float] = {}
        #: Seconds waited, and the waits made (the run summary, tests).
        self.waited = 0.0
        self.waits = 0

    def _endpoint(self, method: str, url: str) -> str:
        return f"{method} {self._meter.template(urlsplit(url).path)}"

    @staticmethod
    def _issue(method: str, url: str) -> str | None:
        if method == "GET":
            return None
        found = _ISSUE.search(urlsplit(url).path)
        return found.group(1) if found else None

    def before(self, method: str, url: str) -> None:
        """Wait, if the headers said so, before sending ``method url``."""
        endpoint, issue = self._endpoint(method, url), self._issue(method, url)
        with self._lock:
            now = self.clock()
            wait = 0.0
            window = self._windows.get(endpoint)
            if window is not None:
                if now >= window.reset_at:
                    del self._windows[endpoint]  # a fresh window: nothing known of it
                else:
                    left = window.reset_at - now
                    if window.remaining <= 0:
                        wait = left
                    elif window.remaining < NEAR * window.limit:
                        wait = left / (window.remaining + 1)
                    window.remaining -= 1  # this request, while it is in flight
            if issue is not None:
                wait = max(wait, self._issues.get(issue, 0.0) - now)
            wait = min(wait, MAX_WAIT)
            if wait > 0:
                self.waited += wait
                self.waits += 1
        if wait > 0:
            self.sleep(wait)

    def after(self, response: requests.Response) -> None:
        """Read the answer's rate-limit headers."""
        headers = response.headers
        request = response.request
        method = (request.method if request is not None else None) or "GET"
        url = (request.url if request is not None else None) or response.url or ""
        endpoint = self._endpoint(method, url)
        now, wall = self.clock(), self.wall()
        retry_after = _number(headers.get("Retry-After"))
        with self._lock:
            if response.status_code == 429 and headers.get("RateLimit-Reason") == PER_ISSUE:
                issue = self._issue(method, url)
                if issue is not None:
                    self._issues[issue] = now + min(retry_after or 1.0, MAX_WAIT)
                return
            limit = _number(headers.get("X-RateLimit-Limit"))
            remaining = _number(headers.get("X-RateLimit-Remaining"))
            reset = _reset_seconds(headers.get("X-RateLimit-Reset"), wall)
            beta = _BETA.search(headers.get("Beta-RateLimit") or "")
            if beta is not None and remaining is None:
                r, t = (beta.group(1), beta.group(2)) if beta.group(1) else beta.group(4, 3)
                remaining, reset = float(r), float(t)
                quota = _QUOTA.search(headers.get("Beta-RateLimit-Policy") or "")
                # Without the policy's quota, take what is left as near the end of it.
                limit = float(quota.group(1)) if quota else remaining / NEAR + 1
            if response.status_code == 429 and retry_after is not None:
                remaining, reset = 0.0, retry_after
            if remaining is None:
                return
            if reset is None or reset <= 0:
                reset = 1.0  # the burst window is one second
            self._windows[endpoint] = _Window(
                limit=int(limit or remaining or 1),
                remaining=int(remaining),
                reset_at=now + min(reset, MAX_WAIT),
            )


class PacedAdapter(MeteredAdapter):
    """The metered transport with a :class:`Pacer` around every attempt."""

    def __init__(
        self, meter: CallMeter, pacer: Pacer, ca_bundle: str | None = None, **kwargs: Any
    ) -> None:
        self.pacer = pacer
        super().__init__(meter, ca_bundle, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Wait as the pacer says, send (metered), read the answer's headers."""
        self.pacer.before(request.method or "GET", request.url or "")
        response = super().send(request, **kwargs)
        self.pacer.after(response)
        return response
