"""Fault injection for the sandbox: what the control API's ``POST /_sandbox/faults`` sets.

A fault applies to the next ``count`` matching calls, or to a ``rate`` share of them
(drawn from a seeded generator, so a run is repeatable), optionally only to calls whose
endpoint template contains ``endpoint`` and whose method is ``method``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

KINDS = ("429", "500", "502", "503", "slow", "drop", "expired_session", "timeout")


class FaultSpecError(ValueError):
    """A fault request the control API cannot accept."""


@dataclass
class Fault:
    """One injected fault and how many more calls it applies to."""

    kind: str
    count: int | None = None
    rate: float | None = None
    retry_after: int | None = None
    delay_ms: int = 0
    endpoint: str | None = None
    method: str | None = None

    @classmethod
    def from_json(cls, payload: Any) -> Fault:
        """Validate a control-API fault document."""
        if not isinstance(payload, dict):
            raise FaultSpecError("a fault is a JSON object with at least 'kind'")
        kind = str(payload.get("kind", ""))
        if kind not in KINDS:
            raise FaultSpecError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
        count, rate = payload.get("count"), payload.get("rate")
        if count is None and rate is None:
            count = 1
        if count is not None and (not isinstance(count, int) or count < 1):
            raise FaultSpecError("'count' must be a positive integer")
        if rate is not None and (not isinstance(rate, (int, float)) or not 0 < rate <= 1):
            raise FaultSpecError("'rate' must be a number in (0, 1]")
        retry_after = payload.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise FaultSpecError("'retry_after' must be a non-negative integer (seconds)")
        delay_ms = payload.get("delay_ms", 0 if kind != "slow" else 1000)
        if not isinstance(delay_ms, int) or delay_ms < 0:
            raise FaultSpecError("'delay_ms' must be a non-negative integer")
        endpoint = payload.get("endpoint")
        method = payload.get("method")
        return cls(
            kind=kind,
            count=count,
            rate=float(rate) if rate is not None else None,
            retry_after=retry_after,
            delay_ms=delay_ms,
            endpoint=str(endpoint) if endpoint else None,
            method=str(method).upper() if method else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The fault as the control API shows it."""
        return {
            "kind": self.kind,
            "count": self.count,
            "rate": self.rate,
            "retry_after": self.retry_after,
            "delay_ms": self.delay_ms,
            "endpoint": self.endpoint,
            "method": self.method,
        }

    def matches(self, method: str, stats_key: str) -> bool:
        """Whether this fault applies to a call of that method and endpoint."""
        if self.method and self.method != method:
            return False
        return not (self.endpoint and self.endpoint not in stats_key)


class FaultInjector:
    """Thread-safe queue of active faults; the first matching one fires."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.fired = 0

    def add(self, fault: Fault) -> None:
        """Activate a fault."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        """The faults still active."""
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def draw(self, method: str, stats_key: str) -> Fault | None:
        """The fault to apply to this call, if any; consumes one use of a counted fault."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, stats_key):
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    self.fired += 1
                    return fault
                if fault.rate is not None and self._random.random() < fault.rate:
                    self.fired += 1
                    return fault
            return None
