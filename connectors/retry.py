"""The one retry policy, written as data (tenacity), honouring ``Retry-After``.

Used around calls whose client does not retry by itself (simple-salesforce, httpx), and
around ``jira`` client calls for exactly the answers its ResilientSession does not retry:
500, 502, 504 and a 503 without Retry-After (``JiraConnector._retried``). What the
ResilientSession retries itself (429, a 503 with Retry-After, dropped connections) is
never retried again here, so attempts do not multiply; tune ``[jira] max_retries`` for
both. A Jira PUT that posts comments is re-sent only after reading back what it posted
(``JiraConnector._put_not_resent``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

T = TypeVar("T")


class TransientFailure(Exception):
    """Raised inside a retried block for a failure worth another attempt."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them."""

    attempts: int = 5
    initial_wait: float = 1.0
    multiplier: float = 2.0
    max_wait: float = 60.0

    def wait_seconds(self, attempt: int, retry_after: float | None) -> float:
        """Wait before attempt ``attempt + 1``: the server's Retry-After if given (capped),
        else exponential backoff."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_wait))
        return float(min(self.max_wait, self.initial_wait * self.multiplier ** (attempt - 1)))

    def call(self, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
        """Run ``fn``, retrying on TransientFailure; the last failure propagates."""

        def wait(state: RetryCallState) -> float:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            retry_after = error.retry_after if isinstance(error, TransientFailure) else None
            return self.wait_seconds(state.attempt_number, retry_after)

        retrying = Retrying(
            retry=retry_if_exception_type(TransientFailure),
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            sleep=sleep,
            reraise=True,
        )
        return retrying(fn)
