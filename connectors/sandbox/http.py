"""Transport-neutral requests, responses and routing for the sandbox emulators.

A backend's routes take a :class:`SandboxRequest` and return a :class:`SandboxResponse`;
the same routes are then served in-process through ``responses`` and over real HTTPS
through WSGI (see ``app.py``), like moto's ``responses.py``/``urls.py`` split.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

JSON_TYPE = "application/json;charset=UTF-8"


class CaseInsensitiveDict(dict[str, str]):
    """Header mapping keyed by lower-cased names."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        super().__init__()
        for key, value in (items or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class SandboxRequest:
    """One HTTP request as a route sees it."""

    method: str
    path: str  # as sent: percent-encoded; path_params are decoded
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    query_string: str = ""  # as sent, for the URI length limits

    @property
    def uri_length(self) -> int:
        """Bytes of the request URI (path and query string) as sent."""
        return len(self.path) + (len(self.query_string) + 1 if self.query_string else 0)

    @property
    def head_length(self) -> int:
        """Bytes of the URI and the header lines together."""
        return self.uri_length + sum(len(k) + len(v) + 4 for k, v in self.headers.items())

    @classmethod
    def build(
        cls,
        method: str,
        path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
        base_url: str = "",
    ) -> SandboxRequest:
        """Build a request from raw parts (query string undecoded)."""
        return cls(
            method=method.upper(),
            path=path,
            query=parse_qs(query_string, keep_blank_values=True),
            headers=CaseInsensitiveDict(headers),
            body=body,
            base_url=base_url,
            query_string=query_string,
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """Every value of a repeated query parameter, comma-separated values split."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(part for part in value.split(",") if part != "")
        return out

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError on malformed JSON."""
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """The body parsed as application/x-www-form-urlencoded."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}


@dataclass
class SandboxResponse:
    """One HTTP response produced by a route."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> SandboxResponse:
        """A JSON response."""
        merged = {"Content-Type": JSON_TYPE}
        merged.update(headers or {})
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status=status, body=body, headers=merged)

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> SandboxResponse:
        """A response with no body."""
        return cls(status=status, body=b"", headers=dict(headers or {}))

    @classmethod
    def text(
        cls, text: str, status: int = 200, content_type: str = "text/plain;charset=UTF-8"
    ) -> SandboxResponse:
        """A text (or XML) response."""
        return cls(status=status, body=text.encode("utf-8"), headers={"Content-Type": content_type})


class DropConnection(Exception):
    """Raised by fault injection: the transport closes the connection without answering."""


Handler = Callable[[SandboxRequest], SandboxResponse]
#: Whether a call writes: fixed per route, or decided from the request (Composite).
WriteRule = bool | Callable[[SandboxRequest], bool]

_PARAM = re.compile(r"\{(\w+)(?::(path))?\}")


@dataclass(frozen=True)
class Route:
    """A method plus a path template such as ``/rest/api/2/issue/{key}``."""

    method: str
    template: str
    handler: Handler
    write: WriteRule
    regex: re.Pattern[str]

    def writes(self, request: SandboxRequest) -> bool:
        """Whether this call counts as a write."""
        if callable(self.write):
            try:
                return bool(self.write(request))
            except ValueError:  # a malformed body: the handler will refuse it
                return True
        return self.write

    @property
    def stats_key(self) -> str:
        """Key under which calls to this route are counted."""
        return f"{self.method} {self.template}"


def compile_template(template: str) -> re.Pattern[str]:
    """Turn ``/a/{x}/b/{rest:path}`` into an anchored regex with named groups."""
    pattern = ""
    pos = 0
    for match in _PARAM.finditer(template):
        pattern += re.escape(template[pos : match.start()])
        name, kind = match.group(1), match.group(2)
        pattern += f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"
        pos = match.end()
    pattern += re.escape(template[pos:])
    return re.compile(f"^{pattern}/?$")


class Router:
    """Ordered route table; the first matching template wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self, method: str, template: str, handler: Handler, write: WriteRule | None = None
    ) -> None:
        """Register a handler; ``write`` defaults to True for every method but GET/HEAD."""
        is_write = method.upper() not in ("GET", "HEAD") if write is None else write
        self.routes.append(
            Route(method.upper(), template, handler, is_write, compile_template(template))
        )

    def route(
        self, method: str, template: str, write: WriteRule | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add`."""

        def register(handler: Handler) -> Handler:
            self.add(method, template, handler, write)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Return (route, path params, path_known). path_known tells 405 from 404."""
        path_known = False
        for route in self.routes:
            found = route.regex.match(path)
            if found is None:
                continue
            path_known = True
            if route.method == method.upper():
                return route, {k: v for k, v in found.groupdict().items()}, True
        return None, {}, path_known
