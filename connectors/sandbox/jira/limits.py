"""Jira Cloud's rate limits, when a test or the world asks for them: a per-second rate per
endpoint and method (``jira-burst-based``) and a per-issue write limit
(``jira-per-issue-on-write``), with Jira's headers.

Off by default (``per_second`` and ``issue_writes`` None): then no header is added and
nothing is refused. On, every answer of a limited endpoint carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (ISO 8601, when the window frees a
call), ``X-RateLimit-NearLimit: true`` under 20% left, and ``Beta-RateLimit-Policy``; a
refusal is a 429 with ``Retry-After`` (whole seconds, at least 1) and
``RateLimit-Reason``. Windows slide on :attr:`RateLimits.clock` (monotonic seconds, a
test injects its own).

Set through the backend (``backend.limits.per_second = 10``) or the control API:
``POST /_sandbox/jira/limits {"per_second": 10, "issue_writes": 3, "issue_window_seconds":
10}`` (``null`` turns one off).
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from connectors.sandbox.http import SandboxResponse

if TYPE_CHECKING:
    from connectors.sandbox.jira.models import JiraBackend

BURST = "jira-burst-based"
PER_ISSUE = "jira-per-issue-on-write"
WINDOW_SECONDS = 1.0


def iso_time(moment: datetime) -> str:
    """``2026-12-04T01:02:03.456Z``: X-RateLimit-Reset's form, to the millisecond."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RateLimits:
    """The limits of one backend and the calls they count (under the app's lock)."""

    def __init__(self, backend: JiraBackend) -> None:
        self.backend = backend
        #: Calls per second per endpoint and method; None: no limit, no headers.
        self.per_second: int | None = None
        #: Writes to one issue within :attr:`issue_window`; None: no limit.
        self.issue_writes: int | None = None
        self.issue_window = 10.0
        self.clock: Callable[[], float] = time.monotonic
        self.wall: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._calls: dict[str, deque[float]] = {}
        self._writes: dict[str, deque[float]] = {}
        #: 429s answered, by RateLimit-Reason.
        self.refused: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        """Whether any limit is on."""
        return self.per_second is not None or self.issue_writes is not None

    def _window(self, calls: deque[float], now: float, length: float) -> None:
        while calls and calls[0] <= now - length:
            calls.popleft()

    def admit(self, endpoint: str, issue: str | None) -> SandboxResponse | None:
        """Count one call of ``endpoint`` (a write to ``issue`` when given); a 429 when a
        limit is spent (the refused call is not counted)."""
        now = self.clock()
        if self.per_second is not None:
            calls = self._calls.setdefault(endpoint, deque())
            self._window(calls, now, WINDOW_SECONDS)
            if len(calls) >= self.per_second:
                return self._refuse(BURST, calls[0] + WINDOW_SECONDS - now, endpoint)
        if self.issue_writes is not None and issue is not None:
            writes = self._writes.setdefault(issue, deque())
            self._window(writes, now, self.issue_window)
            if len(writes) >= self.issue_writes:
                return self._refuse(PER_ISSUE, writes[0] + self.issue_window - now, endpoint)
            writes.append(now)
        if self.per_second is not None:
            self._calls[endpoint].append(now)
        return None

    def _refuse(self, reason: str, wait: float, endpoint: str) -> SandboxResponse:
        self.refused[reason] += 1
        response = self.backend.error(429, "Rate limit exceeded.")
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        response.headers["RateLimit-Reason"] = reason
        self.decorate(endpoint, response, wait)
        return response

    def decorate(self, endpoint: str, response: SandboxResponse, wait: float = 0.0) -> None:
        """Jira's rate-limit headers for ``endpoint``'s current window."""
        if self.per_second is None:
            if wait:
                reset = self.wall() + timedelta(seconds=wait)
                response.headers["X-RateLimit-Reset"] = iso_time(reset)
            return
        now = self.clock()
        calls = self._calls.get(endpoint) or deque()
        self._window(calls, now, WINDOW_SECONDS)
        remaining = max(0, self.per_second - len(calls))
        frees = (calls[0] + WINDOW_SECONDS - now) if calls else WINDOW_SECONDS
        reset = self.wall() + timedelta(seconds=max(wait, frees))
        response.headers["X-RateLimit-Limit"] = str(self.per_second)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = iso_time(reset)
        if remaining < 0.2 * self.per_second:
            response.headers["X-RateLimit-NearLimit"] = "true"
        response.headers["Beta-RateLimit-Policy"] = f'"{BURST}";q={self.per_second};w=1'

    def configure(self, payload: Any) -> dict[str, Any]:
        """Apply a control-API document; returns the limits in force (ValueError when
        malformed)."""
        if not isinstance(payload, dict):
            raise ValueError("the limits are a JSON object")
        for key in ("per_second", "issue_writes"):
            if key in payload:
                value = payload[key]
                if value is not None and (not isinstance(value, int) or value < 1):
                    raise ValueError(f"'{key}' must be a positive integer or null")
                setattr(self, key, value)
        if "issue_window_seconds" in payload:
            window = payload["issue_window_seconds"]
            if not isinstance(window, int | float) or window <= 0:
                raise ValueError("'issue_window_seconds' must be a positive number")
            self.issue_window = float(window)
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        """The limits in force and the 429s answered."""
        return {
            "per_second": self.per_second,
            "issue_writes": self.issue_writes,
            "issue_window_seconds": self.issue_window,
            "refused": dict(self.refused),
        }
