"""Fault injection for the sandbox: what the control API's ``POST /_sandbox/faults`` sets.

A fault applies to the next ``count`` matching calls, or to a ``rate`` share of them
(drawn from a seeded generator, so a run is repeatable), optionally only to calls whose
endpoint template contains ``endpoint`` and whose method is ``method``.

Besides refusals (429, 5xx, a dropped connection...), ``drop_after`` applies the call and
then drops the connection (the client cannot tell that its write happened), and a fault
can garble the answer the
way a broken proxy or a truncated transfer does (:data:`CONTENT_KINDS`): the call is
served as usual, then its answer is truncated, replaced by an HTML page or an empty
body, given invalid UTF-8, or rewritten (``set``/``remove`` JSON paths such as
``issues.*.fields.summary``, ``*`` meaning every element of a list or object).
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from connectors.sandbox.http import SandboxResponse

#: Faults that serve the call, then garble its answer (a proxy page, a cut transfer...).
CONTENT_KINDS = ("truncated", "html", "empty", "invalid_utf8", "rewrite")
#: Faults that serve the call (a write is applied) and then cut the connection before the
#: answer leaves: the client cannot tell whether its write happened.
AFTER_KINDS = (*CONTENT_KINDS, "drop_after")
KINDS = (
    "429",
    "500",
    "502",
    "503",
    "slow",
    "drop",
    "drop_after",
    "expired_session",
    "timeout",
    *CONTENT_KINDS,
)
#: What a proxy in front of the API answers with (kind "html").
PROXY_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{status} Bad Gateway</title></head>\n"
    "<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response from an "
    "upstream server.</p><hr><address>corporate-proxy/2.4</address></body></html>\n"
)


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
    #: kind "html": the status of the page (502 by default; 200 for a login page).
    status: int | None = None
    #: kind "rewrite": JSON path -> new value; paths to delete.
    set_values: dict[str, Any] = field(default_factory=dict)
    remove_paths: list[str] = field(default_factory=list)
    #: kind "rewrite": string values of ``set`` are repeated to this many characters.
    repeat_to: int | None = None
    #: kind "invalid_utf8": the key whose string values get the bytes (default: the first
    #: string value of the answer).
    key: str | None = None

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
        status = payload.get("status")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise FaultSpecError("'status' must be an HTTP status code")
        to_set, to_remove = payload.get("set") or {}, payload.get("remove") or []
        if not isinstance(to_set, dict) or not isinstance(to_remove, list):
            raise FaultSpecError("'set' is an object of path -> value, 'remove' a list of paths")
        if kind == "rewrite" and not (to_set or to_remove):
            raise FaultSpecError("a rewrite fault needs 'set' and/or 'remove'")
        repeat_to = payload.get("repeat_to")
        if repeat_to is not None and (not isinstance(repeat_to, int) or repeat_to < 1):
            raise FaultSpecError("'repeat_to' must be a positive integer (characters)")
        return cls(
            kind=kind,
            count=count,
            rate=float(rate) if rate is not None else None,
            retry_after=retry_after,
            delay_ms=delay_ms,
            endpoint=str(endpoint) if endpoint else None,
            method=str(method).upper() if method else None,
            status=status,
            set_values={str(k): v for k, v in to_set.items()},
            remove_paths=[str(p) for p in to_remove],
            repeat_to=repeat_to,
            key=str(payload["key"]) if payload.get("key") else None,
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
            **({"status": self.status} if self.status is not None else {}),
            **(
                {"set": sorted(self.set_values), "remove": self.remove_paths}
                if self.kind == "rewrite"
                else {}
            ),
        }

    def matches(self, method: str, stats_key: str) -> bool:
        """Whether this fault applies to a call of that method and endpoint."""
        if self.method and self.method != method:
            return False
        return not (self.endpoint and self.endpoint not in stats_key)

    def garble(self, response: SandboxResponse) -> SandboxResponse:
        """The answer a content fault turns ``response`` into (see :data:`CONTENT_KINDS`)."""
        if self.kind == "html":
            status = self.status or 502
            page = PROXY_PAGE.format(status=status).encode()
            return SandboxResponse(status, page, {"Content-Type": "text/html; charset=utf-8"})
        if self.kind == "empty":
            return SandboxResponse(200, b"", dict(response.headers))
        if self.kind == "truncated":
            body = response.body[: max(1, len(response.body) // 2)]
            return SandboxResponse(response.status, body, dict(response.headers))
        if self.kind == "invalid_utf8":
            # Bytes that are never UTF-8, inside the first string value of the document.
            bad = b"\xff\xfe\xc3("
            if self.key:
                marker = f'"{self.key}":"'.encode()
                body = response.body.replace(marker, marker + bad)
            else:
                at = response.body.find(b'":"')
                at = at + 3 if at >= 0 else len(response.body) // 2
                body = response.body[:at] + bad + response.body[at:]
            return SandboxResponse(response.status, body, dict(response.headers))
        return self._rewrite(response)

    def _rewrite(self, response: SandboxResponse) -> SandboxResponse:
        try:
            document = json.loads(response.body.decode("utf-8"))
        except ValueError:
            return response  # nothing to rewrite in an answer that is not JSON
        for path, value in self.set_values.items():
            if isinstance(value, str) and self.repeat_to:
                value = (value * (self.repeat_to // max(1, len(value)) + 1))[: self.repeat_to]
            _apply(document, path.split("."), value, remove=False)
        for path in self.remove_paths:
            _apply(document, path.split("."), None, remove=True)
        return SandboxResponse.json(document, response.status, response.headers)


def _apply(node: Any, parts: list[str], value: Any, *, remove: bool) -> None:
    """Set (or delete) the value at a dotted path in a JSON document; ``*`` fans out."""
    head, rest = parts[0], parts[1:]
    if head == "*":
        children = list(node.keys()) if isinstance(node, dict) else range(len(node))
        targets: list[Any] = list(children) if isinstance(node, (dict, list)) else []
    elif isinstance(node, dict):
        targets = [head] if (head in node or not rest) else []
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        targets = [int(head)]
    else:
        targets = []
    for target in targets:
        if rest:
            _apply(node[target], rest, value, remove=remove)
        elif remove:
            if isinstance(node, dict):
                node.pop(target, None)
        else:
            node[target] = value


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
