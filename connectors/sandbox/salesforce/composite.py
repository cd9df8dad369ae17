"""sObject Collections (``/composite/sobjects``) and Composite (``/composite``).

Collections write up to 200 records in one call, one result per record in input order;
with ``allOrNone`` a single failure rolls every record back. Composite runs up to 25
subrequests (at most 5 of them queries or Collections) through the same router as one
API call (one budget unit, one stats entry); Composite Batch (``/composite/batch``) runs up
to 25 independent subrequests, each one API call.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.salesforce.metadata import BY_PREFIX, SObjectDef, sobject
from connectors.sandbox.salesforce.render import render_record
from connectors.sandbox.salesforce.routes import DATA, versioned, with_sobject
from connectors.sandbox.salesforce.sobjects import failure, field_list
from connectors.sandbox.salesforce.values import FieldValueError
from connectors.sandbox.salesforce.writes import MultipleMatches

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.models import SalesforceBackend

Record = dict[str, Any]
#: Limits of one call, as Salesforce sets them.
MAX_COLLECTION_RECORDS = 200
MAX_COMPOSITE_SUBREQUESTS = 25
#: Of those, at most this many may be queries (query, queryAll, query more) or Collections.
MAX_COMPOSITE_QUERIES = 5

_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}
_HEAVY = re.compile(r"^/services/data/v[^/]+/(query|queryAll|composite/sobjects)(/|$)")
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")


def _error(status: int, message: str, code: str) -> SandboxResponse:
    from connectors.sandbox.salesforce.models import sf_error

    return sf_error(status, message, code)


def _body(request: SandboxRequest) -> tuple[list[Any], bool] | SandboxResponse:
    payload = request.json()
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        return _error(
            400,
            "The request body must be a JSON object with a 'records' list.",
            "JSON_PARSER_ERROR",
        )
    records = payload["records"]
    if len(records) > MAX_COLLECTION_RECORDS:
        return _error(
            400,
            "record limit reached. cannot submit more than "
            f"{MAX_COLLECTION_RECORDS} records into this call",
            "EXCEEDED_ID_LIMIT",
        )
    return records, bool(payload.get("allOrNone", False))


def _record_type(record: Any, default: SObjectDef | None = None) -> SObjectDef:
    kind = record.get("attributes", {}).get("type") if isinstance(record, dict) else None
    if kind is None and default is not None:
        return default
    obj = sobject(kind) if isinstance(kind, str) else None
    if obj is None:
        raise FieldValueError(
            "INVALID_TYPE",
            f"sObject type '{kind}' is not supported."
            if kind
            else "Each record needs attributes.type.",
        )
    if default is not None and obj is not default:
        raise FieldValueError(
            "INVALID_TYPE", f"Record type {obj.name} does not match {default.name} of the request."
        )
    return obj


def run_batch(
    backend: SalesforceBackend, items: list[Any], all_or_none: bool, write: Callable[[Any], Record]
) -> SandboxResponse:
    """Apply ``write`` to each item; one result each; undo all on failure when all-or-none."""
    results: list[Record] = []
    with backend.transaction() as tx:
        for item in items:
            try:
                results.append({**write(item), "success": True, "errors": []})
            except FieldValueError as exc:
                results.append({**_given_id(item), "success": False, "errors": [exc.as_error()]})
        if all_or_none and not all(r["success"] for r in results):
            tx.rollback()
            results = [
                result
                if not result["success"]
                else {**_given_id(item), "success": False, "errors": [dict(_ROLLED_BACK)]}
                for item, result in zip(items, results, strict=True)
            ]
    return SandboxResponse.json(results)


def _given_id(item: Any) -> Record:
    """``{"id": ...}`` when the request named the record (updates, deletes), else nothing."""
    if isinstance(item, dict) and isinstance(item.get("Id"), str):
        return {"id": item["Id"]}
    return {}


def register(backend: SalesforceBackend) -> None:
    """Add the Collections and Composite routes to ``backend.router``."""
    router = backend.router
    base = DATA + "/composite/sobjects"

    @router.route("POST", base)
    @versioned
    def create(request: SandboxRequest) -> SandboxResponse:
        parsed = _body(request)
        if isinstance(parsed, SandboxResponse):
            return parsed

        def write(record: Any) -> Record:
            obj = _record_type(record)
            if isinstance(record, dict) and record.get("Id"):
                raise FieldValueError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
                )
            return {"id": backend.insert(obj, backend.prepare(obj, record, creating=True))}

        return run_batch(backend, *parsed, write)

    @router.route("PATCH", base)
    @versioned
    def update(request: SandboxRequest) -> SandboxResponse:
        parsed = _body(request)
        if isinstance(parsed, SandboxResponse):
            return parsed

        def write(record: Any) -> Record:
            record_id = record.get("Id") if isinstance(record, dict) else None
            if not isinstance(record_id, str) or not record_id:
                raise FieldValueError(
                    "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"]
                )
            obj = _record_type(record, BY_PREFIX.get(record_id[:3]))
            obj, _ = backend.live_record(obj, record_id)
            values = backend.prepare(obj, record, creating=False)
            return {"id": backend.modify(obj, record_id, values)}

        return run_batch(backend, *parsed, write)

    @router.route("PATCH", base + "/{sobject}/{field}")
    @with_sobject
    def upsert(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        parsed = _body(request)
        if isinstance(parsed, SandboxResponse):
            return parsed
        try:
            fdef = backend.external_field(obj, request.path_params["field"])
        except FieldValueError as exc:
            return failure(exc)
        records, all_or_none = parsed

        def key_of(record: Any) -> str | None:
            if not isinstance(record, dict):
                return None
            found = [v for k, v in record.items() if k.lower() == fdef.name.lower()]
            return str(found[0]) if found and found[0] not in (None, "") else None

        repeated = Counter(k.lower() for k in map(key_of, records) if k is not None)

        def write(record: Any) -> Record:
            _record_type(record, obj)
            value = key_of(record)
            if value is None:
                raise FieldValueError("MISSING_ARGUMENT", f"{fdef.name} not specified", [fdef.name])
            if repeated[value.lower()] > 1:
                raise FieldValueError(
                    "DUPLICATE_EXTERNAL_ID",
                    f"Duplicate external id specified: {value}",
                    [fdef.name],
                )
            creating = not backend.match_external(obj, fdef, value)
            skip = tuple(k for k in record if k.lower() == fdef.name.lower())
            values = backend.prepare(obj, record, creating=creating, skip=skip)
            try:
                record_id, created = backend.upsert(obj, fdef, value, values)
            except MultipleMatches as exc:
                raise FieldValueError(
                    "DUPLICATE_EXTERNAL_ID",
                    f"{fdef.name}: more than one record found for external id field: {exc.ids}",
                    [fdef.name],
                ) from None
            return {"id": record_id, "created": created}

        return run_batch(backend, records, all_or_none, write)

    @router.route("DELETE", base)
    @versioned
    def delete(request: SandboxRequest) -> SandboxResponse:
        ids = request.args("ids")
        if len(ids) > MAX_COLLECTION_RECORDS:
            return _error(
                400,
                "record limit reached. cannot submit more than "
                f"{MAX_COLLECTION_RECORDS} records into this call",
                "EXCEEDED_ID_LIMIT",
            )
        all_or_none = (request.arg("allOrNone") or "false").lower() == "true"
        return run_batch(
            backend,
            [{"Id": i} for i in ids],
            all_or_none,
            lambda item: {"id": backend.remove(None, item["Id"])},
        )

    def retrieve(
        request: SandboxRequest, obj: SObjectDef, ids: list[str], names: list[str]
    ) -> SandboxResponse:
        if len(ids) > 2000:
            return _error(400, "Too many ids: the limit is 2000.", "EXCEEDED_ID_LIMIT")
        try:
            fields = field_list(obj, names)
        except FieldValueError as exc:
            return failure(exc)
        if fields is None:
            return _error(400, "The 'fields' parameter is required.", "MISSING_ARGUMENT")
        out: list[Any] = []
        for record_id in ids:
            try:
                _, record = backend.live_record(obj, record_id)
            except FieldValueError:
                out.append(None)
                continue
            out.append(render_record(obj, record, request.path_params["version"], fields))
        return SandboxResponse.json(out)

    @router.route("GET", base + "/{sobject}")
    @with_sobject
    def retrieve_get(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        return retrieve(request, obj, request.args("ids"), request.args("fields"))

    @router.route("POST", base + "/{sobject}", write=False)
    @with_sobject
    def retrieve_post(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        payload = request.json()
        if not isinstance(payload, dict):
            return _error(400, 'Expected {"ids": [...], "fields": [...]}.', "JSON_PARSER_ERROR")
        return retrieve(
            request,
            obj,
            [str(i) for i in payload.get("ids") or []],
            [str(f) for f in payload.get("fields") or []],
        )

    router.add(
        "POST",
        DATA + "/composite",
        versioned(lambda r: _composite(backend, r)),
        write=_composite_writes,
    )
    router.add(
        "POST",
        DATA + "/composite/batch",
        versioned(lambda r: _batch(backend, r)),
        write=lambda r: _subrequests_write(r, "batchRequests"),
    )


_HALTED = [
    {"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}
]


def _batch(backend: SalesforceBackend, request: SandboxRequest) -> SandboxResponse:
    """Composite Batch: up to 25 independent subrequests (tap-salesforce describes its
    objects with it), each committed on its own and each one API call."""
    payload = request.json()
    subrequests = payload.get("batchRequests") if isinstance(payload, dict) else None
    if not isinstance(subrequests, list) or not subrequests:
        return _error(
            400, "The request body needs a non-empty 'batchRequests' list.", "JSON_PARSER_ERROR"
        )
    if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
        return _error(
            400,
            f"Received {len(subrequests)} subrequests; a batch request takes at most "
            f"{MAX_COMPOSITE_SUBREQUESTS}.",
            "LIMIT_EXCEEDED",
        )
    halt = bool(payload.get("haltOnError", False))
    results: list[Record] = []
    failed = False
    for index, sub in enumerate(subrequests):
        if failed and halt:
            results.append({"statusCode": 412, "result": _HALTED})
            continue
        if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
            response = _error(
                400, "Each batch request needs a method and a url.", "INVALID_BATCH_REQUEST"
            )
        else:
            # The outer call was one API call; every further subrequest is one more.
            spent = backend.spend_call() if index else None
            url = str(sub["url"])
            # Batch URLs start at the version ("v61.0/sobjects"); full paths work too.
            path = url if url.startswith("/") else "/services/data/" + url
            if spent is not None:
                response = spent
            elif "/composite/batch" in urlsplit(path).path:
                response = _error(
                    400, f"The batch request URL {url} is not supported.", "INVALID_BATCH_REQUEST"
                )
            else:
                response = _dispatch(
                    backend, request, str(sub.get("method", "GET")), path, sub.get("richInput"), {}
                )
        parsed = json.loads(response.body) if response.body else None
        results.append({"statusCode": response.status, "result": parsed})
        failed = failed or response.status >= 400
    return SandboxResponse.json({"hasErrors": failed, "results": results})


def _subrequests_write(request: SandboxRequest, key: str) -> bool:
    payload = request.json()
    subrequests = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(subrequests, list):
        return True
    return any(
        not isinstance(sub, dict) or str(sub.get("method", "GET")).upper() != "GET"
        for sub in subrequests
    )


def _composite_writes(request: SandboxRequest) -> bool:
    """A Composite call of GET subrequests only (e.g. several queries) is a read."""
    return _subrequests_write(request, "compositeRequest")


def _composite(backend: SalesforceBackend, request: SandboxRequest) -> SandboxResponse:
    payload = request.json()
    subrequests = payload.get("compositeRequest") if isinstance(payload, dict) else None
    if not isinstance(subrequests, list) or not subrequests:
        return _error(
            400, "The request body needs a non-empty 'compositeRequest' list.", "JSON_PARSER_ERROR"
        )
    if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
        return _error(
            400,
            f"Received {len(subrequests)} subrequests; a composite request takes "
            f"at most {MAX_COMPOSITE_SUBREQUESTS}.",
            "LIMIT_EXCEEDED",
        )
    heavy = sum(1 for sub in subrequests if _is_query_or_collection(sub))
    if heavy > MAX_COMPOSITE_QUERIES:
        return _error(
            400,
            f"Received {heavy} query or sObject Collections subrequests; a composite request "
            f"takes at most {MAX_COMPOSITE_QUERIES} (Query, QueryAll, query more and "
            "Collections each count).",
            "LIMIT_EXCEEDED",
        )
    all_or_none = bool(payload.get("allOrNone", False))
    answers: list[Record] = []
    bodies: dict[str, Any] = {}
    halted = {
        "errorCode": "PROCESSING_HALTED",
        "message": "The transaction was rolled back since another operation in the same "
        "transaction failed.",
    }
    with backend.transaction() as tx:
        failed = False
        for sub in subrequests:
            ref = str(sub.get("referenceId", "")) if isinstance(sub, dict) else ""
            if failed and all_or_none:
                answers.append(_answer(400, [halted], ref))
                continue
            try:
                url = _resolve(str(sub["url"]), bodies)
                body = (
                    json.loads(_resolve(json.dumps(sub["body"]), bodies))
                    if sub.get("body") is not None
                    else None
                )
            except (KeyError, TypeError, IndexError, ValueError) as exc:
                answers.append(
                    _answer(
                        400,
                        [
                            {
                                "errorCode": "PROCESSING_HALTED",
                                "message": f"Invalid reference specified or bad subrequest: {exc}",
                            }
                        ],
                        ref,
                    )
                )
                failed = True
                continue
            response = _dispatch(
                backend,
                request,
                str(sub.get("method", "GET")),
                url,
                body,
                sub.get("httpHeaders") or {},
            )
            parsed = json.loads(response.body) if response.body else None
            answers.append(_answer(response.status, parsed, ref, response.headers))
            if response.status < 300:
                bodies[ref] = parsed
            else:
                failed = True
        if failed and all_or_none:
            tx.rollback()
            answers = [
                a if a["httpStatusCode"] >= 300 else _answer(400, [halted], a["referenceId"])
                for a in answers
            ]
    return SandboxResponse.json({"compositeResponse": answers})


def _is_query_or_collection(sub: Any) -> bool:
    """Whether a subrequest is one of the at most five queries or Collections a composite
    request may hold (``query``, ``queryAll``, their next pages, ``composite/sobjects``)."""
    url = sub.get("url") if isinstance(sub, dict) else None
    if not isinstance(url, str):
        return False
    return _HEAVY.search(unquote(urlsplit(url).path)) is not None


def _answer(status: int, body: Any, ref: str, headers: dict[str, str] | None = None) -> Record:
    kept = {k: v for k, v in (headers or {}).items() if k.lower() == "location"}
    return {"body": body, "httpHeaders": kept, "httpStatusCode": status, "referenceId": ref}


def _resolve(text: str, bodies: dict[str, Any]) -> str:
    """Replace ``@{ref.path}`` with values from earlier answers (``records[0].Id`` works)."""

    def value(match: re.Match[str]) -> str:
        current: Any = bodies[match.group(1)]
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", match.group(2)):
            current = current[int(part[1:-1])] if part.startswith("[") else current[part]
        return str(current)

    return _REFERENCE.sub(value, text)


def _dispatch(
    backend: SalesforceBackend,
    outer: SandboxRequest,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str],
) -> SandboxResponse:
    """Run one subrequest through the router (no second budget unit, no stats)."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path.startswith("/services/data/v") or path.rstrip("/").endswith("/composite"):
        return _error(
            400,
            f"The subrequest URL {url} is not supported in a composite request.",
            "INVALID_COMPOSITE_REQUEST",
        )
    merged = dict(outer.headers)
    merged.update(headers)
    sub = SandboxRequest.build(
        method,
        path,
        parts.query,
        merged,
        json.dumps(body).encode() if body is not None else b"",
        base_url=outer.base_url,
    )
    route, params, known = backend.router.match(sub.method, path)
    if route is None:
        return _error(
            405 if known else 404,
            f"Method {sub.method} is not allowed here."
            if known
            else "The requested resource does not exist",
            "METHOD_NOT_ALLOWED" if known else "NOT_FOUND",
        )
    sub.path_params = {k: unquote(v) for k, v in params.items()}
    try:
        response = route.handler(sub)
    except json.JSONDecodeError as exc:
        return _error(400, f"Malformed JSON body: {exc.msg}.", "JSON_PARSER_ERROR")
    if response.status == 201 and isinstance(body, dict):
        created = json.loads(response.body or b"{}")
        if isinstance(created, dict) and created.get("id"):
            response.headers["Location"] = f"{path.rstrip('/')}/{created['id']}"
    return response
