"""The HubSpot emulator's backend: the portal's records, associations, search index,
tokens, scopes and limits. No HTTP here: ``responses.py`` turns requests into calls of
these methods and their answers into JSON."""

from __future__ import annotations

import math
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from connectors.sandbox.http import Router, SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot.schema import (
    CUSTOM_FQN,
    CUSTOM_NAME,
    CUSTOM_TYPE_ID,
    STANDARD_TYPES,
    Prop,
    Schema,
)
from connectors.sandbox.hubspot.values import iso, stored
from connectors.sandbox.world import World

DEFAULT_PRIVATE_APP_TOKEN: Final = "pat-na1-sandbox-static-token"
DEFAULT_CLIENT_ID: Final = "sandbox-client-id"
DEFAULT_CLIENT_SECRET: Final = "sandbox-client-secret"
DEFAULT_REFRESH_TOKEN: Final = "na1-sandbox-refresh-token"
PORTAL_ID: Final = 4400100
BATCH_LIMIT: Final = 100
BURST_INTERVAL_MS: Final = 10_000
NO_CREDENTIALS: Final = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
    "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
MISSING_SCOPES_MESSAGE: Final = (
    "This app hasn't been granted all required scopes to make this call. Read more about "
    "required scopes here: https://developers.hubspot.com/scopes."
)
#: Every scope the demo apps are granted (a test removes some through the control API).
ALL_SCOPES: Final = frozenset(
    {
        "crm.objects.companies.read",
        "crm.objects.companies.write",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "tickets",
        "crm.objects.feedback_submissions.read",
        "crm.objects.custom.read",
        "crm.objects.custom.write",
        "crm.schemas.custom.read",
        "crm.objects.owners.read",
        "files",
    }
)


@dataclass
class HsRecord:
    """One record: its current properties and what the search index holds of it."""

    id: str
    type_id: str
    properties: dict[str, str | None]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None
    merged_into: str | None = None
    #: (visible from, snapshot or None when removed): search sees the last one visible.
    index: list[tuple[int, dict[str, str | None] | None]] = field(default_factory=list)

    def as_json(self, names: list[str] | None) -> dict[str, Any]:
        """The record as HubSpot answers it, with the properties asked for (defaults)."""
        wanted = (
            names if names is not None else ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]
        )
        base = ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]
        props = {n: self.properties.get(n) for n in dict.fromkeys([*wanted, *base])}
        doc: dict[str, Any] = {
            "id": self.id,
            "properties": props,
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.updated_ms),
            "archived": self.archived_ms is not None,
        }
        if self.archived_ms is not None:
            doc["archivedAt"] = iso(self.archived_ms)
        return doc


def hs_error(
    status: int,
    message: str,
    category: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> SandboxResponse:
    """HubSpot's error shape."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": secrets.token_hex(8),
        "category": category or _CATEGORIES.get(status, "UNKNOWN"),
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return SandboxResponse.json(body, status=status)


_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    414: "URI_TOO_LONG",
    429: "RATE_LIMITS",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


@dataclass
class Rejection:
    """A test hook standing in for a portal's validation: refuse a write when it holds."""

    type_id: str
    predicate: Callable[[dict[str, str | None]], bool]
    message: str


class HubSpotBackend:
    """The emulated portal, loaded from a :class:`World`."""

    max_uri_bytes = 8_192

    def __init__(
        self,
        world: World,
        *,
        private_app_token: str = DEFAULT_PRIVATE_APP_TOKEN,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        refresh_token: str = DEFAULT_REFRESH_TOKEN,
        enterprise: bool = True,
        burst_limit: int = 190,
        daily_limit: int = 500_000,
        search_per_second: int = 5,
        index_lag_ms: int = 0,
        token_lifetime_s: int = 1800,
        clock: Callable[[], float] | None = None,
    ) -> None:
        from connectors.sandbox.hubspot.urls import register_routes

        self.world = world
        self.private_app_token = private_app_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.enterprise = enterprise
        self.burst_limit = burst_limit
        self.daily_limit = daily_limit
        self.search_per_second = search_per_second
        self.index_lag_ms = index_lag_ms
        self.token_lifetime_s = token_lifetime_s
        #: Seconds since the epoch (a test shares a fake one with the client it drives).
        self.clock: Callable[[], float] = clock or time.time
        self.router = Router()
        self.rejections: list[Rejection] = []
        register_routes(self)
        self.reset()

    # -- world ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Restore the seeded portal, tokens, scopes and counters."""
        from connectors.sandbox.hubspot.seed import load

        self.schema = Schema.default()
        self.records: dict[str, dict[str, HsRecord]] = {t: {} for t in self.schema.props}
        self.associations: dict[tuple[str, str], dict[str, dict[str, str]]] = defaultdict(dict)
        self.owners: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self._next_id = 1000
        self.scopes = set(ALL_SCOPES)
        self.oauth_tokens: dict[str, float] = {}  # token -> expires at (epoch seconds)
        self.token_grants = 0
        self.daily_used = 0
        self.burst_calls: deque[int] = deque()
        self.search_calls: deque[int] = deque()
        self.rejections.clear()
        #: Bumped by every change, resets included (search answers are cached per version).
        self.version = getattr(self, "version", 0) + 1
        self._visible_until = 0
        load(self, self.world)

    def visibility_key(self) -> int | None:
        """None once every change is searchable, else now (search depends on the time)."""
        now = self.now_ms()
        return None if now >= self._visible_until else now

    def _changed(self, visible_from: int) -> None:
        self.version += 1
        self._visible_until = max(self._visible_until, visible_from)

    def now_ms(self) -> int:
        """The portal's clock in epoch ms."""
        return int(self.clock() * 1000)

    def new_id(self) -> str:
        """The next record id (numeric, as HubSpot's are)."""
        self._next_id += 1
        return str(self._next_id)

    def type_id(self, name: str) -> str | None:
        """The object type id of a name HubSpot accepts (None: no such object)."""
        lowered = name.lower()
        if lowered in STANDARD_TYPES:
            return STANDARD_TYPES[lowered]
        if lowered in STANDARD_TYPES.values():
            return lowered
        if self.enterprise and lowered in (CUSTOM_TYPE_ID, CUSTOM_NAME, CUSTOM_FQN):
            return CUSTOM_TYPE_ID
        return None

    def props(self, type_id: str) -> dict[str, Prop]:
        """The property definitions of a type."""
        return self.schema.props[type_id]

    # -- writes ---------------------------------------------------------------------------

    def validate(
        self, type_id: str, values: dict[str, Any], creating: bool
    ) -> tuple[dict[str, str | None], list[dict[str, Any]]]:
        """The values as stored, and HubSpot's per-property errors."""
        props = self.props(type_id)
        out: dict[str, str | None] = {}
        problems: list[dict[str, Any]] = []
        for name, raw in values.items():
            prop = props.get(name)
            if prop is None:
                problems.append(
                    {
                        "isValid": False,
                        "message": f'Property "{name}" does not exist',
                        "error": "PROPERTY_DOESNT_EXIST",
                        "name": name,
                    }
                )
                continue
            if prop.read_only:
                problems.append(
                    {
                        "isValid": False,
                        "message": f'"{name}" is a read only property; its value cannot be set.',
                        "error": "READ_ONLY_VALUE",
                        "name": name,
                    }
                )
                continue
            value, problem = stored(prop, raw)
            if problem:
                problems.append(
                    {"isValid": False, "message": problem, "error": "INVALID_VALUE", "name": name}
                )
            else:
                out[name] = value
        return out, problems

    def write(
        self, type_id: str, record: HsRecord | None, values: dict[str, str | None]
    ) -> HsRecord:
        """Apply validated values: create when ``record`` is None; the search index sees the
        change ``index_lag_ms`` later."""
        now = self.now_ms()
        if record is None:
            rid = self.new_id()
            record = HsRecord(
                rid, type_id, {"hs_object_id": rid, "hs_createdate": iso(now)}, now, now
            )
            self.records[type_id][rid] = record
        record.properties.update(values)
        record.updated_ms = now
        record.properties["hs_lastmodifieddate"] = iso(now)
        record.index.append((now + self.index_lag_ms, dict(record.properties)))
        self._changed(now + self.index_lag_ms)
        return record

    def rejected(self, type_id: str, values: dict[str, str | None]) -> str | None:
        """The message of a test rejection that holds for these values."""
        for rule in self.rejections:
            if rule.type_id == type_id and rule.predicate(values):
                return rule.message
        return None

    def archive(self, record: HsRecord) -> None:
        """Archive (delete) a record: gone from lists and, after the lag, from search."""
        now = self.now_ms()
        record.archived_ms = now
        record.index.append((now + self.index_lag_ms, None))
        self._changed(now + self.index_lag_ms)

    def merge(self, type_id: str, primary: HsRecord, merged: HsRecord) -> HsRecord:
        """Merge ``merged`` into ``primary``: its associations move, its id is recorded in
        ``hs_merged_object_ids``; the merged record no longer exists on its own."""
        for (from_type, to_type), table in list(self.associations.items()):
            if from_type == type_id and merged.id in table:
                for to_id, label in table.pop(merged.id).items():
                    self.associate(type_id, primary.id, to_type, to_id, label)
        ids = [i for i in (primary.properties.get("hs_merged_object_ids") or "").split(";") if i]
        ids += [
            merged.id,
            *[i for i in (merged.properties.get("hs_merged_object_ids") or "").split(";") if i],
        ]
        merged.merged_into = primary.id
        now = self.now_ms()
        merged.index.append((now + self.index_lag_ms, None))
        self._changed(now + self.index_lag_ms)
        primary.properties["hs_merged_object_ids"] = ";".join(ids)
        return self.write(type_id, primary, {})

    def live(self, type_id: str, rid: str) -> HsRecord | None:
        """A record by id, following merges; None when missing or archived."""
        record = self.records.get(type_id, {}).get(rid)
        seen = 0
        while record is not None and record.merged_into is not None and seen < 10:
            record = self.records[type_id].get(record.merged_into)
            seen += 1
        if record is None or record.archived_ms is not None:
            return None
        return record

    def by_unique(self, type_id: str, prop: str, value: str) -> HsRecord | None:
        """The live record whose unique ``prop`` is ``value``."""
        for record in self.records[type_id].values():
            if (
                record.archived_ms is None
                and record.merged_into is None
                and record.properties.get(prop) == value
            ):
                return record
        return None

    # -- associations ---------------------------------------------------------------------

    def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, label: str | None = None
    ) -> None:
        """Associate both ways (labels: "Primary" or None)."""
        self.associations[(from_type, to_type)].setdefault(from_id, {})[to_id] = label or ""
        self.associations[(to_type, from_type)].setdefault(to_id, {})[from_id] = label or ""
        self.version += 1

    def associated(self, from_type: str, from_id: str, to_type: str) -> dict[str, str]:
        """The live records of ``to_type`` associated to one record, with labels."""
        table = self.associations.get((from_type, to_type), {})
        return {
            t: lab for t, lab in table.get(from_id, {}).items() if self.live(to_type, t) is not None
        }

    # -- search index ---------------------------------------------------------------------

    def searchable(
        self, type_id: str, with_associations: bool = False
    ) -> list[tuple[str, dict[str, Any], dict[str, set[str]]]]:
        """What search sees now: each record's last indexed snapshot (eventual
        consistency), with its associations by singular name when a filter needs them."""
        now = self.now_ms()
        rows = []
        for record in self.records[type_id].values():
            snapshot: dict[str, str | None] | None = None
            for visible, snap in reversed(record.index):
                if visible <= now:
                    snapshot = snap
                    break
            if snapshot is None:
                continue
            assoc: dict[str, set[str]] = {}
            if with_associations:
                for (from_type, to_type), table in self.associations.items():
                    if from_type == type_id and record.id in table:
                        name = next((n for n, t in STANDARD_TYPES.items() if t == to_type), to_type)
                        singular = "company" if name == "companies" else name.rstrip("s")
                        assoc[singular] = set(table[record.id])
            rows.append((record.id, snapshot, assoc))
        return rows

    # -- auth, scopes, limits --------------------------------------------------------------

    def grant(self, form: dict[str, str]) -> SandboxResponse:
        """``POST /oauth/v1/token`` with the refresh-token grant."""
        if form.get("grant_type") != "refresh_token":
            return hs_error(400, "unsupported grant type", "BAD_GRANT_TYPE")
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return hs_error(400, "missing or unknown client id", "BAD_CLIENT_ID")
        if form.get("refresh_token") != self.refresh_token:
            return hs_error(400, "missing or unknown refresh token", "BAD_REFRESH_TOKEN")
        token = "CKsandbox" + secrets.token_urlsafe(24)
        self.oauth_tokens[token] = self.clock() + self.token_lifetime_s
        self.token_grants += 1
        return SandboxResponse.json(
            {
                "token_type": "bearer",
                "refresh_token": self.refresh_token,
                "access_token": token,
                "expires_in": self.token_lifetime_s,
            }
        )

    def expire_sessions(self) -> SandboxResponse:
        """Expire every OAuth access token (private app tokens do not expire)."""
        for token in self.oauth_tokens:
            self.oauth_tokens[token] = 0.0
        return hs_error(
            401,
            "The OAuth token used to make this call expired 1 second(s) ago.",
            "EXPIRED_AUTHENTICATION",
        )

    def error(self, status: int, message: str, code: str | None = None) -> SandboxResponse:
        """A response in HubSpot's error shape."""
        return hs_error(status, message, code if code and code != "NOT_FOUND" else None)

    def _authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        header = request.headers.get("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            return hs_error(
                401,
                NO_CREDENTIALS,
            )
        if token == self.private_app_token:
            request.path_params["_auth"] = "private_app"
            return None
        expires = self.oauth_tokens.get(token)
        if expires is None:
            return hs_error(401, "Authentication credentials not found.")
        if self.clock() >= expires:
            ago = max(1, int(self.clock() - expires))
            return hs_error(
                401,
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        request.path_params["_auth"] = "oauth"
        return None

    def before_call(self, request: SandboxRequest, write: bool) -> SandboxResponse | None:
        """Sign-in, scopes, then the daily, burst and search limits."""
        if request.path.startswith("/oauth/"):
            return None
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        from connectors.sandbox.hubspot.urls import required_scope

        scope = required_scope(self, request.method, request.path, write)
        if scope is not None and scope not in self.scopes:
            return hs_error(
                403,
                MISSING_SCOPES_MESSAGE,
                "MISSING_SCOPES",
                [
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [scope]},
                    }
                ],
            )
        now = self.now_ms()
        if self.daily_used >= self.daily_limit:
            return hs_error(
                429,
                "You have reached your daily limit.",
                "RATE_LIMITS",
                errorType="RATE_LIMIT",
                policyName="DAILY",
            )
        while self.burst_calls and self.burst_calls[0] <= now - BURST_INTERVAL_MS:
            self.burst_calls.popleft()
        if len(self.burst_calls) >= self.burst_limit:
            wait = math.ceil((self.burst_calls[0] + BURST_INTERVAL_MS - now) / 1000)
            response = hs_error(
                429,
                "You have reached your ten_secondly_rolling limit.",
                "RATE_LIMITS",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
            )
            response.headers["Retry-After"] = str(max(1, wait))
            return response
        if request.path.endswith("/search"):
            while self.search_calls and self.search_calls[0] <= now - 1000:
                self.search_calls.popleft()
            if len(self.search_calls) >= self.search_per_second:
                response = hs_error(
                    429,
                    "You have reached your secondly limit.",
                    "RATE_LIMITS",
                    errorType="RATE_LIMIT",
                    policyName="SECONDLY",
                )
                response.headers["Retry-After"] = "1"
                return response
            self.search_calls.append(now)
        self.burst_calls.append(now)
        self.daily_used += 1
        return None

    def after_call(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """HubSpot's rate-limit headers (the daily ones only for private apps)."""
        auth = request.path_params.get("_auth")
        if auth is None:
            return
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(BURST_INTERVAL_MS)
        response.headers["X-HubSpot-RateLimit-Max"] = str(self.burst_limit)
        response.headers["X-HubSpot-RateLimit-Remaining"] = str(
            max(0, self.burst_limit - len(self.burst_calls))
        )
        second = max(1, self.burst_limit // 10)
        recent = sum(1 for t in self.burst_calls if t > self.now_ms() - 1000)
        response.headers["X-HubSpot-RateLimit-Secondly"] = str(second)
        response.headers["X-HubSpot-RateLimit-Secondly-Remaining"] = str(max(0, second - recent))
        if auth == "private_app":
            response.headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, self.daily_limit - self.daily_used)
            )

    def control(self, request: SandboxRequest, path: str) -> SandboxResponse | None:
        """``/_sandbox/hubspot/...``: index lag, scopes, limits, the Enterprise hub."""
        if not path.startswith("/hubspot/") or request.method != "POST":
            return None
        payload = request.json() or {}
        what = path[len("/hubspot/") :]
        if what == "lag" and isinstance(payload.get("index_lag_ms"), int):
            self.index_lag_ms = payload["index_lag_ms"]
        elif what == "scopes" and isinstance(payload.get("revoke"), list):
            self.scopes -= {str(s) for s in payload["revoke"]}
        elif what == "limits":
            self.burst_limit = int(payload.get("burst_limit", self.burst_limit))
            self.daily_limit = int(payload.get("daily_limit", self.daily_limit))
            self.search_per_second = int(payload.get("search_per_second", self.search_per_second))
        elif what == "enterprise" and isinstance(payload.get("enterprise"), bool):
            self.enterprise = payload["enterprise"]
        else:
            return SandboxResponse.json(
                {"error": f"unknown or malformed control {what}"}, status=400
            )
        return SandboxResponse.json(
            {
                "index_lag_ms": self.index_lag_ms,
                "scopes": sorted(self.scopes),
                "burst_limit": self.burst_limit,
                "daily_limit": self.daily_limit,
                "enterprise": self.enterprise,
            }
        )
