"""The Salesforce emulator's backend: the seeded org, writes validated as Salesforce does,
sessions, the daily API budget, and query cursors. HTTP lives in ``routes.py``.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.sandbox.http import Router, SandboxRequest, SandboxResponse
from connectors.sandbox.salesforce.bulk import QueryJob
from connectors.sandbox.salesforce.ingest import MAX_UPLOAD_BYTES, IngestJob
from connectors.sandbox.salesforce.metadata import BY_NAME, SObjectDef, sobject
from connectors.sandbox.salesforce.query import CompiledQuery, compile_soql
from connectors.sandbox.salesforce.store import RecordStore, Transaction
from connectors.sandbox.salesforce.values import FieldValueError, from_json, now_ms
from connectors.sandbox.salesforce.writes import WriteMixin
from connectors.sandbox.world import World, salesforce_id

Record = dict[str, Any]

ORG_ID = salesforce_id("00D", 1)
INTEGRATION_USER_ID = salesforce_id("005", 1000)
DEFAULT_ACCESS_TOKEN = ORG_ID[:15] + "!AQsandbox.static.session"
#: The refresh token the org accepts for the ``refresh_token`` grant unless one is given
#: (what a connected app's web-server flow would have handed the user once).
DEFAULT_REFRESH_TOKEN = "5Aep861sandbox.static.refresh.token"
#: Query cursors idle this long are gone (Salesforce: 15 minutes); at most this many open.
CURSOR_IDLE = timedelta(minutes=15)
MAX_CURSORS = 100

_DEFAULT_CODES = {
    400: "BAD_REQUEST",
    401: "INVALID_SESSION_ID",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "UNKNOWN_EXCEPTION",
    502: "SERVER_UNAVAILABLE",
    503: "SERVER_UNAVAILABLE",
    504: "REQUEST_RUNNING_TOO_LONG",
}
#: Salesforce's request limits: the URI, and the URI with the headers, at most 16,384 bytes
#: each (414 URI Too Long, 431 Request Header Fields Too Large past them).
MAX_URI_BYTES = 16_384
MAX_HEAD_BYTES = 16_384
#: Paths that neither need a session nor count against the API budget.
_OPEN_PREFIXES = ("/services/oauth2/", "/services/Soap/u/")


def sf_error(
    status: int, message: str, code: str | None = None, fields: list[str] | None = None
) -> SandboxResponse:
    """Salesforce's error shape: a top-level list of ``{message, errorCode, fields}``."""
    entry: dict[str, Any] = {
        "message": message,
        "errorCode": code or _DEFAULT_CODES.get(status, "UNKNOWN_EXCEPTION"),
    }
    if fields is not None:
        entry["fields"] = fields
    return SandboxResponse.json([entry], status=status)


@dataclass
class Cursor:
    """Rows of an answered query not yet fetched, behind a ``nextRecordsUrl`` locator."""

    locator: str
    compiled: CompiledQuery
    rows: list[Record]
    batch: int
    include_deleted: bool
    last_used: datetime


@dataclass
class ValidationRule:
    """A test hook standing in for an org's validation rule."""

    predicate: Callable[[Record], bool]
    message: str


class SalesforceBackend(WriteMixin):
    """The emulated org: records loaded from a :class:`World`, plus auth and limits."""

    def __init__(
        self,
        world: World,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        username: str = "sandbox@example.com",
        password: str = "sandbox-password",
        security_token: str = "sandbox-security-token",
        consumer_key: str = "sandbox-consumer-key",
        consumer_secret: str = "sandbox-consumer-secret",
        daily_api_limit: int = 100_000,
        clock: Callable[[], datetime] | None = None,
        instance_url: str | None = None,
        jwt_public_key: str | bytes | None = None,
        refresh_token: str = DEFAULT_REFRESH_TOKEN,
    ) -> None:
        from connectors.sandbox.salesforce.routes import register_routes

        self.world = world
        self.access_token = access_token
        self.username = username
        self.password = password
        self.security_token = security_token
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.daily_api_limit = daily_api_limit
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        #: Where logins send clients; None answers with the URL the login came in on.
        self.instance_url = instance_url
        #: When set, JWT bearer assertions must be signed by the matching private key.
        self.jwt_public_key = jwt_public_key
        self.max_uri_bytes = MAX_URI_BYTES
        self.max_head_bytes = MAX_HEAD_BYTES
        self.refresh_token = refresh_token
        #: Refresh tokens the token endpoint takes (revoking one removes it).
        self.refresh_tokens: set[str] = {refresh_token}
        self.org_id = ORG_ID
        self.user_id = INTEGRATION_USER_ID
        self.router = Router()
        self.rules: dict[str, list[ValidationRule]] = {}
        self.store = RecordStore()
        self.sessions: dict[str, datetime] = {}
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.query_jobs: dict[str, QueryJob] = {}
        self.ingest_jobs: dict[str, IngestJob] = {}
        #: Test hooks: the next ingest job fails after this many records; the upload cap.
        self.ingest_fail_after: int | None = None
        self.max_ingest_bytes = MAX_UPLOAD_BYTES
        #: Bulk API batches processed today, and the org's daily limit of them
        #: (``DailyBulkApiBatches`` in ``/limits``).
        self.bulk_batches_used = 0
        self.daily_bulk_batches = 15_000
        self.api_used = 0
        self.api_enabled = True
        self._budget_day: date | None = None
        self.counters: dict[str, int] = {}
        register_routes(self)
        self.reset()

    # -- Backend protocol -------------------------------------------------------------------

    def reset(self) -> None:
        """Restore the seeded world, the static session, an unspent budget and the user's
        API access; drop query cursors, Bulk query and ingest jobs and validation rules.
        Configuration (credentials, clock, limit) stays."""
        self.store = RecordStore()
        self.counters = {}
        self.rules = {}
        self.cursors.clear()
        self.query_jobs.clear()
        self.ingest_jobs.clear()
        self.ingest_fail_after = None
        self.bulk_batches_used = 0
        # Logins survive a reset (it restores data, not auth); the static token is live again.
        self.sessions[self.access_token] = self.now()
        self.api_used = 0
        self._budget_day = self.now().date()
        self.api_enabled = True
        from connectors.sandbox.salesforce.seed import load_world

        load_world(self, self.world)

    def error(self, status: int, message: str, code: str | None = None) -> SandboxResponse:
        """An error response in Salesforce's shape."""
        return sf_error(status, message, code)

    def expire_sessions(self) -> SandboxResponse:
        """Revoke every session (the static one too); the current call gets a 401."""
        self.sessions.clear()
        return self.invalid_session()

    def before_call(self, request: SandboxRequest, write: bool) -> SandboxResponse | None:
        """Check the Bearer session and spend one call of the daily budget."""
        if request.path.startswith(_OPEN_PREFIXES) or request.path.rstrip("/") == "/services/data":
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or token.strip() not in self.sessions:
            return self.invalid_session()
        if not self.api_enabled:
            # A live session the org will not take for REST: the connected app lacks the
            # "api" scope, the profile "API Enabled", or an IP policy locks it out.
            return self._unauthorized("This session is not valid for use with the REST API")
        return self.spend_call()

    def control(self, request: SandboxRequest, path: str) -> SandboxResponse | None:
        """Salesforce's own control endpoints (None: not one of them).

        ``GET/POST /_sandbox/user`` reads or sets the integration user's access:
        ``{"api_enabled": false}`` makes every REST call answer 401 "This session is not
        valid for use with the REST API" while logins still succeed, as an org does whose
        profile lacks "API Enabled" (or whose connected app lacks the "api" scope).
        """
        if path != "/user" or request.method not in ("GET", "POST"):
            return None
        if request.method == "POST":
            payload = request.json()
            enabled = payload.get("api_enabled") if isinstance(payload, dict) else None
            if not isinstance(enabled, bool):
                return SandboxResponse.json(
                    {"error": 'send {"api_enabled": true|false}'}, status=400
                )
            self.api_enabled = enabled
        return SandboxResponse.json({"api_enabled": self.api_enabled})

    def after_call(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """Report the org's daily usage on every REST response."""
        if not request.path.startswith(_OPEN_PREFIXES):
            response.headers["Sforce-Limit-Info"] = (
                f"api-usage={self.api_used}/{self.daily_api_limit}"
            )

    # -- sessions and budget ----------------------------------------------------------------

    def invalid_session(self) -> SandboxResponse:
        """The 401 Salesforce answers for a missing, expired or revoked session."""
        return self._unauthorized("Session expired or invalid")

    def _unauthorized(self, message: str) -> SandboxResponse:
        response = sf_error(401, message, "INVALID_SESSION_ID")
        # Salesforce names its scheme on every 401, as RFC 9110 asks.
        response.headers["WWW-Authenticate"] = "Token"
        return response

    def issue_session(self) -> str:
        """A new session token (what each successful login hands out)."""
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(48)}"
        self.sessions[token] = self.now()
        return token

    def spend_call(self) -> SandboxResponse | None:
        """Count one API call; a 403 once the daily budget is spent (it refills each day)."""
        today = self.now().date()
        if today != self._budget_day:
            self._budget_day, self.api_used = today, 0
        if self.api_used >= self.daily_api_limit:
            return sf_error(403, "TotalRequests Limit exceeded.", "REQUEST_LIMIT_EXCEEDED")
        self.api_used += 1
        return None

    @property
    def api_usage(self) -> tuple[int, int]:
        """(calls used today, daily limit)."""
        return self.api_used, self.daily_api_limit

    # -- time and ids -----------------------------------------------------------------------

    def now(self) -> datetime:
        """The clock in UTC at millisecond precision."""
        return now_ms(self.clock())

    def next_number(self, key: str) -> int:
        """The next value of a per-prefix counter (Ids, auto-numbers)."""
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]

    def new_id(self, obj: SObjectDef | str) -> str:
        """A fresh 18-character Id with the object's key prefix."""
        prefix = obj if isinstance(obj, str) else obj.key_prefix
        return salesforce_id(prefix, self.next_number(prefix))

    # -- queries ----------------------------------------------------------------------------

    def run_query(self, soql: str, include_deleted: bool) -> tuple[CompiledQuery, list[Record]]:
        """Compile and answer a SOQL statement; raises ``SoqlError``."""
        compiled = compile_soql(soql, self.store.live)
        obj = compiled.sobject
        candidates: Iterable[Record]
        ordered = False
        if compiled.id_filter is not None:
            candidates = [
                found[1]
                for i in sorted(compiled.id_filter)
                if (found := self.store.get(i)) is not None
                and found[0] is obj
                and (include_deleted or not found[1].get("IsDeleted"))
            ]
        elif compiled.modstamp_bounds is not None or (
            compiled.natural_order and compiled.sort_keys
        ):
            low, high = compiled.modstamp_bounds or (None, None)
            candidates = self.store.iter_by_modstamp(obj, low, high, include_deleted)
            ordered = True
        else:
            candidates = self.store.iter_records(obj, include_deleted)
        return compiled, compiled.execute(candidates, ordered)

    def open_cursor(
        self, compiled: CompiledQuery, rows: list[Record], batch: int, include_deleted: bool
    ) -> str:
        """Keep the rows after the first page; returns the locator."""
        self.expire_cursors()
        locator = self.new_id("01g")
        self.cursors[locator] = Cursor(locator, compiled, rows, batch, include_deleted, self.now())
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)
        return locator

    def expire_cursors(self) -> None:
        """Drop cursors idle for longer than :data:`CURSOR_IDLE`."""
        limit = self.now() - CURSOR_IDLE
        for locator in [k for k, c in self.cursors.items() if c.last_used < limit]:
            del self.cursors[locator]

    # -- test helpers -----------------------------------------------------------------------

    def add_validation_rule(
        self, sobject_name: str, predicate: Callable[[Record], bool], message: str
    ) -> None:
        """Reject writes whose resulting record matches ``predicate``
        (``FIELD_CUSTOM_VALIDATION_EXCEPTION`` with ``message``)."""
        obj = self.sobject_def(sobject_name)
        self.rules.setdefault(obj.name, []).append(ValidationRule(predicate, message))

    def clear_validation_rules(self) -> None:
        """Remove every validation rule."""
        self.rules.clear()

    def sobject_def(self, name: str) -> SObjectDef:
        """An sObject's metadata; KeyError for an unknown name."""
        obj = sobject(name)
        if obj is None:
            known = ", ".join(o.name for o in BY_NAME.values())
            raise KeyError(f"no sObject {name!r}; known: {known}")
        return obj

    def get_record(self, sobject_name: str, record_id: str) -> Record | None:
        """A copy of a record (deleted ones too, with ``IsDeleted`` true), or None."""
        found = self.store.get(record_id)
        if found is None or found[0] is not self.sobject_def(sobject_name):
            return None
        return dict(found[1])

    def records(self, sobject_name: str, include_deleted: bool = False) -> list[Record]:
        """Copies of every record of an object, in creation order."""
        obj = self.sobject_def(sobject_name)
        return [dict(r) for r in self.store.iter_records(obj, include_deleted)]

    def create_record(self, sobject_name: str, **fields: Any) -> str:
        """Insert a record from Python values (system fields may be given); returns its Id."""
        obj = self.sobject_def(sobject_name)
        return self.insert(obj, self._python_values(obj, fields), trusted=True)

    def update_record(self, sobject_name: str, record_id: str, **fields: Any) -> None:
        """Change fields of a record and bump its ``SystemModstamp`` (unless given)."""
        obj = self.sobject_def(sobject_name)
        self.modify(obj, record_id, self._python_values(obj, fields), trusted=True)

    def delete_record(self, sobject_name: str, record_id: str) -> None:
        """Move a record to the recycle bin (``IsDeleted`` true, only ``queryAll`` sees it)."""
        self.remove(self.sobject_def(sobject_name), record_id)

    def merge_records(self, sobject_name: str, master_id: str, *merged_ids: str) -> None:
        """Merge up to two records into ``master_id`` as Salesforce's merge does: each one
        merged goes to the recycle bin with ``MasterRecordId`` naming the master, the
        records that refer to it (a Case's ``AccountId``, a lookup) move to the master,
        and the master's ``SystemModstamp`` moves."""
        obj = self.sobject_def(sobject_name)
        if obj.field("MasterRecordId") is None:
            raise ValueError(f"{obj.name} records cannot be merged")
        if not 1 <= len(merged_ids) <= 2 or master_id in merged_ids:
            raise ValueError("a merge takes a master and one or two other records")
        with self.transaction():
            self.modify(obj, master_id, {}, trusted=True)
            for merged_id in merged_ids:
                for other in BY_NAME.values():
                    lookups = [
                        f.name
                        for f in other.fields
                        if obj.name in f.reference_to and f.name != "MasterRecordId"
                    ]
                    for record in list(self.store.iter_records(other, False)) if lookups else ():
                        moved = {n: master_id for n in lookups if record.get(n) == merged_id}
                        if moved:
                            self.modify(other, str(record["Id"]), moved, trusted=True)
                self.remove(obj, merged_id)
                found = self.store.get(merged_id)
                assert found is not None
                self.store.put(obj, {**found[1], "MasterRecordId": master_id})

    def transaction(self) -> Any:
        """A savepoint over the store (see :meth:`RecordStore.transaction`)."""
        return self.store.transaction()

    def _python_values(self, obj: SObjectDef, fields: dict[str, Any]) -> Record:
        values: Record = {}
        for key, value in fields.items():
            fdef = obj.field(key)
            if fdef is None:
                raise FieldValueError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                )
            if isinstance(value, datetime):
                values[fdef.name] = now_ms(value) if fdef.type == "datetime" else value.date()
            elif isinstance(value, (date, bytes)):
                values[fdef.name] = value
            else:
                values[fdef.name] = from_json(fdef, value)
        return values


__all__ = ["Cursor", "SalesforceBackend", "Transaction", "sf_error"]
