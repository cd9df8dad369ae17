"""HTTP routes of the Salesforce emulator: versions, resources, limits, describe and SOQL.

Single-record routes are in ``sobjects.py``, Collections and Composite in
``composite.py``, logins in ``auth.py``; :func:`register_routes` wires them all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from connectors.sandbox.http import Handler, SandboxRequest, SandboxResponse
from connectors.sandbox.salesforce.metadata import SOBJECTS, SObjectDef, sobject
from connectors.sandbox.salesforce.query import CompiledQuery
from connectors.sandbox.salesforce.soql import SoqlError
from connectors.sandbox.schema import SF_API_VERSIONS

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.models import SalesforceBackend

DATA = "/services/data/v{version}"
#: Query page sizes (``Sforce-Query-Options: batchSize=N``): Salesforce's default and bounds.
QUERY_PAGE = {"default": 2000, "min": 200, "max": 2000}

_RELEASES = {
    "57.0": "Spring '23",
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
}
#: About one full page in this many comes back shorter than the batch size asked.
SHORT_PAGE_ONE_IN = 4
_BATCH_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


def not_found() -> SandboxResponse:
    """Salesforce's 404 for an unknown version, object or record."""
    from connectors.sandbox.salesforce.models import sf_error

    return sf_error(404, "The requested resource does not exist", "NOT_FOUND")


def versioned(handler: Handler) -> Handler:
    """404 for an API version the org does not serve, as Salesforce answers."""

    @wraps(handler)
    def check(request: SandboxRequest) -> SandboxResponse:
        if request.path_params.get("version") not in SF_API_VERSIONS:
            return not_found()
        return handler(request)

    return check


def with_sobject(handler: Callable[[SandboxRequest, SObjectDef], SandboxResponse]) -> Handler:
    """Resolve ``{sobject}`` (any case) and the version; 404 when either is unknown."""

    @versioned
    @wraps(handler)
    def resolve(request: SandboxRequest) -> SandboxResponse:
        obj = sobject(request.path_params.get("sobject", ""))
        if obj is None:
            return not_found()
        return handler(request, obj)

    return resolve


def register_routes(backend: SalesforceBackend) -> None:
    """Fill ``backend.router`` with every Salesforce route the sandbox serves."""
    from connectors.sandbox.salesforce.auth import register as register_auth
    from connectors.sandbox.salesforce.bulk import register as register_bulk
    from connectors.sandbox.salesforce.composite import register as register_composite
    from connectors.sandbox.salesforce.ingest import register as register_ingest
    from connectors.sandbox.salesforce.sobjects import register as register_sobjects

    register_auth(backend)
    _register_resources(backend)
    _register_query(backend)
    register_composite(backend)
    register_bulk(backend)
    register_ingest(backend)
    register_sobjects(backend)


def _register_resources(backend: SalesforceBackend) -> None:
    router = backend.router

    @router.route("GET", "/services/data")
    def versions(request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse.json(
            [
                {"label": _RELEASES.get(v, f"v{v}"), "url": f"/services/data/v{v}", "version": v}
                for v in SF_API_VERSIONS
            ]
        )

    @router.route("GET", DATA)
    @versioned
    def resources(request: SandboxRequest) -> SandboxResponse:
        base = f"/services/data/v{request.path_params['version']}"
        names = ("sobjects", "query", "queryAll", "composite", "limits", "search", "tooling")
        return SandboxResponse.json({name: f"{base}/{name}" for name in names})

    @router.route("GET", DATA + "/limits")
    @versioned
    def limits(request: SandboxRequest) -> SandboxResponse:
        used, limit = backend.api_usage
        return SandboxResponse.json(
            {
                "DailyApiRequests": {"Max": limit, "Remaining": max(limit - used, 0)},
                "DailyBulkApiBatches": {
                    "Max": backend.daily_bulk_batches,
                    "Remaining": max(backend.daily_bulk_batches - backend.bulk_batches_used, 0),
                },
                "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            }
        )

    @router.route("GET", DATA + "/sobjects")
    @versioned
    def global_describe(request: SandboxRequest) -> SandboxResponse:
        version = request.path_params["version"]
        return SandboxResponse.json(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [o.global_entry(version) for o in SOBJECTS],
            }
        )

    @router.route("GET", DATA + "/sobjects/{sobject}")
    @with_sobject
    def basic_info(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        version = request.path_params["version"]
        return SandboxResponse.json(
            {"objectDescribe": obj.global_entry(version), "recentItems": []}
        )

    @router.route("GET", DATA + "/sobjects/{sobject}/describe")
    @with_sobject
    def describe(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        return SandboxResponse.json(obj.describe(request.path_params["version"]))


def batch_size(request: SandboxRequest, default: int | None = None) -> int:
    """The page size asked for by ``Sforce-Query-Options``, within Salesforce's bounds."""
    found = _BATCH_RE.search(request.headers.get("Sforce-Query-Options", "") or "")
    if found is None:
        return default or QUERY_PAGE["default"]
    return max(QUERY_PAGE["min"], min(QUERY_PAGE["max"], int(found.group(1))))


def page_size(seed: int, soql: str, start: int, batch: int, total: int) -> int:
    """Rows in the page starting at ``start``: ``batch``, but now and then fewer when more
    rows follow, as Salesforce does "based on the size and complexity of records queried"
    (``batchSize`` is not guaranteed). Which pages shrink, and by how much, follows from the
    seed, the query text and the offset, so a run is repeatable."""
    if total - start <= batch:
        return batch
    digest = hashlib.sha256(f"{seed}:{start}:{soql}".encode()).digest()
    if digest[0] % SHORT_PAGE_ONE_IN:
        return batch
    return batch - 1 - int.from_bytes(digest[1:3], "big") % (batch // 2)


def _register_query(backend: SalesforceBackend) -> None:
    from connectors.sandbox.salesforce.models import sf_error

    router = backend.router

    def page(
        request: SandboxRequest,
        compiled: CompiledQuery,
        rows: list[dict[str, Any]],
        start: int,
        batch: int,
        include_deleted: bool,
        locator: str | None,
    ) -> SandboxResponse:
        version = request.path_params["version"]
        end = start + page_size(backend.world.seed, compiled.query.text, start, batch, len(rows))
        body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows)}
        if end < len(rows):
            if locator is None:
                locator = backend.open_cursor(compiled, rows, batch, include_deleted)
            # Salesforce points queryAll's next pages at /query/ too (the locator remembers
            # that deleted rows are included); clients must follow the URL as given.
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        elif locator is not None:
            backend.cursors.pop(locator, None)
        body["records"] = [compiled.render(r, version) for r in rows[start:end]]
        return SandboxResponse.json(body)

    def run(request: SandboxRequest, include_deleted: bool) -> SandboxResponse:
        soql = request.arg("q")
        if not soql:
            return sf_error(400, "A query string has to be specified", "MALFORMED_QUERY")
        try:
            compiled, rows = backend.run_query(soql, include_deleted)
        except SoqlError as exc:
            return sf_error(400, exc.message, exc.code)
        if compiled.count == "count":
            return SandboxResponse.json({"totalSize": len(rows), "done": True, "records": []})
        if compiled.count == "aggregate":
            return SandboxResponse.json(
                {
                    "totalSize": 1,
                    "done": True,
                    "records": [
                        {
                            "attributes": {"type": "AggregateResult"},
                            "expr0": compiled.aggregate(rows),
                        }
                    ],
                }
            )
        return page(request, compiled, rows, 0, batch_size(request), include_deleted, None)

    def more(request: SandboxRequest) -> SandboxResponse:
        locator, _, offset = request.path_params["locator"].rpartition("-")
        backend.expire_cursors()
        cursor = backend.cursors.get(locator)
        if cursor is None or not offset.isdigit() or int(offset) > len(cursor.rows):
            return sf_error(400, "invalid query locator", "INVALID_QUERY_LOCATOR")
        cursor.last_used = backend.now()
        return page(
            request,
            cursor.compiled,
            cursor.rows,
            int(offset),
            batch_size(request, cursor.batch),
            cursor.include_deleted,
            locator,
        )

    router.add("GET", DATA + "/query", versioned(lambda r: run(r, False)))
    router.add("GET", DATA + "/queryAll", versioned(lambda r: run(r, True)))
    router.add("GET", DATA + "/query/{locator}", versioned(more))
    router.add("GET", DATA + "/queryAll/{locator}", versioned(more))
