"""Batch routes of the HubSpot emulator: read, create, update, upsert, archive; 207
Multi-Status with per-record errors (each naming its input's ``objectWriteTraceId`` and
ids) when some inputs are refused; results in id order, not input order, as HubSpot does
not promise one."""

from __future__ import annotations

from typing import Any

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot.common import RouteBase, invalid, unknown_type
from connectors.sandbox.hubspot.errors import hs_error
from connectors.sandbox.hubspot.models import HsRecord
from connectors.sandbox.hubspot.schema import STANDARD_TYPES
from connectors.sandbox.hubspot.values import iso


class BatchRoutes(RouteBase):
    """``/crm/v3/objects/{type}/batch/...``."""

    @staticmethod
    def _batch_answer(
        results: list[HsRecord],
        errors: list[dict[str, Any]],
        names: list[str] | None,
        created: set[str] | None = None,
        status: int = 200,
    ) -> SandboxResponse:
        docs = []
        for record in sorted(results, key=lambda r: int(r.id)):
            doc = record.as_json(names)
            if created is not None:
                doc["new"] = record.id in created
            docs.append(doc)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": docs,
            "startedAt": iso(0),
            "completedAt": iso(0),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return SandboxResponse.json(body, status=207)
        return SandboxResponse.json(body, status=status)

    @staticmethod
    def _record_error(
        category: str,
        message: str,
        item: dict[str, Any],
        ids: list[str],
        fields: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        context: dict[str, Any] = {"ids": ids}
        if item.get("objectWriteTraceId") is not None:
            context["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
        if fields:
            context["propertyName"] = list(fields)
        return {"status": "error", "category": category, "message": message, "context": context}

    def batch_read(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return unknown_type(request.path_params["type"])
        inputs = self._inputs(request)
        if isinstance(inputs, SandboxResponse):
            return inputs
        body = request.json() or {}
        id_property = body.get("idProperty")
        found, missing = [], []
        for item in inputs:
            rid = str(item.get("id"))
            record = (
                self.b.by_unique(type_id, id_property, rid)
                if id_property
                else self.b.live(type_id, rid)
            )
            (found.append(record) if record is not None else missing.append(rid))
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        return self._batch_answer(found, errors, body.get("properties") or None)

    def batch_create(self, request: SandboxRequest) -> SandboxResponse:
        return self._batch_write(request, "create")

    def batch_update(self, request: SandboxRequest) -> SandboxResponse:
        return self._batch_write(request, "update")

    def batch_upsert(self, request: SandboxRequest) -> SandboxResponse:
        return self._batch_write(request, "upsert")

    def _batch_write(self, request: SandboxRequest, mode: str) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return unknown_type(request.path_params["type"])
        if type_id == STANDARD_TYPES["feedback_submissions"]:
            return hs_error(405, "Feedback submissions are read-only.", "METHOD_NOT_ALLOWED")
        inputs = self._inputs(request)
        if isinstance(inputs, SandboxResponse):
            return inputs
        props = self.b.props(type_id)
        results: list[HsRecord] = []
        created: set[str] = set()
        errors: list[dict[str, Any]] = []
        for item in inputs:
            raw = dict(item.get("properties") or {})
            record: HsRecord | None = None
            ident = str(item.get("id") or "")
            if mode == "upsert":
                id_property = str(item.get("idProperty") or "")
                prop = props.get(id_property)
                if prop is None or not prop.unique:
                    return hs_error(
                        400,
                        f"{id_property or 'idProperty'} is not a unique property of this object; "
                        "upserts need one.",
                        "VALIDATION_ERROR",
                    )
                if not ident:
                    errors.append(
                        self._record_error(
                            "VALIDATION_ERROR",
                            f"An upsert input has no {id_property} value.",
                            item,
                            [],
                        )
                    )
                    continue
                record = self.b.by_unique(type_id, id_property, ident)
                raw[id_property] = ident
            elif mode == "update":
                record = self.b.live(type_id, ident)
                if record is None:
                    errors.append(
                        self._record_error(
                            "OBJECT_NOT_FOUND", f"Object {ident} does not exist.", item, [ident]
                        )
                    )
                    continue
            values, problems = self.b.validate(type_id, raw, record is None)
            if mode == "upsert" and record is not None:
                values.pop(str(item.get("idProperty")), None)
            if problems:
                errors.append(
                    self._record_error(
                        "VALIDATION_ERROR",
                        invalid(problems),
                        item,
                        [ident] if ident else [],
                        tuple(p["name"] for p in problems),
                    )
                )
                continue
            refusal = self.b.rejected(type_id, {**(record.properties if record else {}), **values})
            if refusal:
                errors.append(
                    self._record_error("VALIDATION_ERROR", refusal, item, [ident] if ident else [])
                )
                continue
            is_new = record is None
            record = self.b.write(type_id, record, values)
            if is_new:
                created.add(record.id)
            results.append(record)
        names = sorted(
            {n for item in inputs for n in (item.get("properties") or {})}
            | ({str(inputs[0].get("idProperty"))} if mode == "upsert" and inputs else set())
        )
        status = 201 if mode == "create" else 200
        return self._batch_answer(
            results, errors, names, created if mode == "upsert" else None, status
        )

    def batch_archive(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return unknown_type(request.path_params["type"])
        inputs = self._inputs(request)
        if isinstance(inputs, SandboxResponse):
            return inputs
        for item in inputs:
            record = self.b.live(type_id, str(item.get("id")))
            if record is not None:
                self.b.archive(record)
        return SandboxResponse.empty(204)
