"""Single-record routes: create, retrieve, update, delete, upsert and retrieve by external id,
blob fields (``ContentVersion/{id}/VersionData``), and the ``deleted``/``updated`` feeds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.salesforce.metadata import FieldDef, SObjectDef, normalize_id
from connectors.sandbox.salesforce.render import attributes, render_record
from connectors.sandbox.salesforce.routes import DATA, not_found, with_sobject
from connectors.sandbox.salesforce.values import FieldValueError, format_datetime, parse_datetime
from connectors.sandbox.salesforce.writes import MultipleMatches

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.models import SalesforceBackend

Record = dict[str, Any]


def failure(exc: FieldValueError) -> SandboxResponse:
    """A rejected write as Salesforce answers it."""
    from connectors.sandbox.salesforce.models import sf_error

    return sf_error(exc.status, exc.message, exc.code, exc.fields)


def multiple(version: str, obj: SObjectDef, ids: list[str]) -> SandboxResponse:
    """HTTP 300: the URLs of every record an external id matched."""
    return SandboxResponse.json([attributes(obj, i, version)["url"] for i in ids], status=300)


def field_list(obj: SObjectDef, names: list[str]) -> list[FieldDef] | None:
    """Fields named in ``?fields=``; raises for an unknown one."""
    if not names:
        return None
    found: list[FieldDef] = []
    for name in names:
        fdef = obj.field(name.strip())
        if fdef is None:
            raise FieldValueError(
                "INVALID_FIELD",
                f"No such column '{name}' on entity "
                f"'{obj.name}'. If you are attempting to use a custom field, be "
                "sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate "
                "names.",
            )
        found.append(fdef)
    return found


def register(backend: SalesforceBackend) -> None:
    """Add the single-record routes to ``backend.router``."""
    router = backend.router
    path = DATA + "/sobjects/{sobject}"

    @router.route("GET", path + "/deleted")
    @with_sobject
    def deleted(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        low, high = _window(request)
        rows = [
            r for r in backend.store.iter_by_modstamp(obj, low, high, True) if r.get("IsDeleted")
        ]
        return SandboxResponse.json(
            {
                "deletedRecords": [
                    {"id": r["Id"], "deletedDate": format_datetime(r["SystemModstamp"])}
                    for r in rows
                ],
                "earliestDateAvailable": format_datetime(low) if low else None,
                "latestDateCovered": format_datetime(high or backend.now()),
            }
        )

    @router.route("GET", path + "/updated")
    @with_sobject
    def updated(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        low, high = _window(request)
        rows = backend.store.iter_by_modstamp(obj, low, high, False)
        return SandboxResponse.json(
            {
                "ids": [r["Id"] for r in rows],
                "latestDateCovered": format_datetime(high or backend.now()),
            }
        )

    @router.route("POST", path)
    @with_sobject
    def create(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        if not obj.createable:
            return failure(
                FieldValueError(
                    "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support create"
                )
            )
        try:
            record_id = backend.insert(obj, backend.prepare(obj, request.json(), creating=True))
        except FieldValueError as exc:
            return failure(exc)
        return SandboxResponse.json({"id": record_id, "success": True, "errors": []}, status=201)

    @router.route("GET", path + "/{record_id}")
    @with_sobject
    def retrieve(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        try:
            _, record = backend.live_record(obj, request.path_params["record_id"])
            fields = field_list(obj, request.args("fields"))
        except FieldValueError as exc:
            return failure(exc)
        return SandboxResponse.json(
            render_record(obj, record, request.path_params["version"], fields)
        )

    @router.route("PATCH", path + "/{record_id}")
    @with_sobject
    def update(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        try:
            backend.live_record(obj, request.path_params["record_id"])
            values = backend.prepare(obj, request.json(), creating=False)
            backend.modify(obj, request.path_params["record_id"], values)
        except FieldValueError as exc:
            return failure(exc)
        return SandboxResponse.empty(204)

    @router.route("DELETE", path + "/{record_id}")
    @with_sobject
    def delete(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        try:
            backend.remove(obj, request.path_params["record_id"])
        except FieldValueError as exc:
            return failure(exc)
        return SandboxResponse.empty(204)

    @router.route("GET", path + "/{key}/{value}")
    @with_sobject
    def get_by_key(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        key, value = request.path_params["key"], request.path_params["value"]
        version = request.path_params["version"]
        blob = obj.field(value)
        if normalize_id(key) and blob is not None and blob.type == "base64":
            try:
                _, record = backend.live_record(obj, key)
            except FieldValueError as exc:
                return failure(exc)
            data = record.get(blob.name) or b""
            return SandboxResponse(200, data, {"Content-Type": "application/octet-stream"})
        try:
            fdef = backend.external_field(obj, key)
            ids = backend.match_external(obj, fdef, value)
            fields = field_list(obj, request.args("fields"))
        except FieldValueError as exc:
            return failure(exc)
        if not ids:
            return not_found()
        if len(ids) > 1:
            return multiple(version, obj, ids)
        return SandboxResponse.json(
            render_record(obj, backend.store.by_id[ids[0]][1], version, fields)
        )

    @router.route("PATCH", path + "/{key}/{value}")
    @with_sobject
    def upsert(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        version = request.path_params["version"]
        try:
            fdef = backend.external_field(obj, request.path_params["key"])
            value = request.path_params["value"]
            creating = not backend.match_external(obj, fdef, value)
            payload = request.json()
            values = backend.prepare(
                obj,
                payload,
                creating=creating,
                skip=tuple(k for k in payload or {} if k.lower() == fdef.name.lower()),
            )
            record_id, created = backend.upsert(obj, fdef, value, values)
        except MultipleMatches as exc:
            return multiple(version, obj, exc.ids)
        except FieldValueError as exc:
            return failure(exc)
        if created:
            return SandboxResponse.json(
                {"id": record_id, "success": True, "errors": [], "created": True}, status=201
            )
        return SandboxResponse.empty(204)

    @router.route("DELETE", path + "/{key}/{value}")
    @with_sobject
    def delete_by_key(request: SandboxRequest, obj: SObjectDef) -> SandboxResponse:
        version = request.path_params["version"]
        try:
            fdef = backend.external_field(obj, request.path_params["key"])
            ids = backend.match_external(obj, fdef, request.path_params["value"])
            if len(ids) > 1:
                return multiple(version, obj, ids)
            if not ids:
                return not_found()
            backend.remove(obj, ids[0])
        except FieldValueError as exc:
            return failure(exc)
        return SandboxResponse.empty(204)


def _window(request: SandboxRequest) -> tuple[Any, Any]:
    start = parse_datetime(request.arg("start") or "")
    end = parse_datetime(request.arg("end") or "")
    return start, end
