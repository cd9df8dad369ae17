"""HTTP handlers of the HubSpot emulator: request parameters -> backend -> HubSpot's JSON.

Batch writes answer 207 Multi-Status with per-record ``errors`` (each naming its input's
``objectWriteTraceId`` and ids) when some inputs are refused; results come back in id
order, not input order, as HubSpot does not promise one.
"""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import TYPE_CHECKING, Any, Final

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot import query
from connectors.sandbox.hubspot.models import BATCH_LIMIT, PORTAL_ID, HsRecord, hs_error
from connectors.sandbox.hubspot.schema import (
    CLOSED_STAGE,
    OPEN_STAGES,
    STANDARD_TYPES,
    custom_schema_json,
)
from connectors.sandbox.hubspot.values import iso

if TYPE_CHECKING:
    from connectors.sandbox.hubspot.models import HubSpotBackend

LIST_LIMIT: Final = 100
#: HubSpot-defined association type ids -> the object type they point to.
TYPE_TARGETS: Final = {190: "0-2", 202: "0-1", 228: "0-5", 280: "0-2", 339: "0-2"}
_STAGES: Final = {"1": "New", "2": "Waiting on contact", "3": "Waiting on us", "4": "Closed"}


def _unknown_type(name: str) -> SandboxResponse:
    return hs_error(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")


def _not_found(rid: str) -> SandboxResponse:
    return hs_error(
        404, f"Object not found.  objectId are usually numeric. ({rid})", "OBJECT_NOT_FOUND"
    )


def _names(request: SandboxRequest) -> list[str] | None:
    names = request.args("properties")
    return names or None


def _invalid(problems: list[dict[str, Any]]) -> str:
    return "Property values were not valid: " + json.dumps(problems)


class Handlers:
    """The routes' bodies, bound to one backend."""

    def __init__(self, backend: HubSpotBackend) -> None:
        self.b = backend
        #: The last search's matches, sorted, while nothing it depends on changed: the
        #: pages of one query are then cut from one evaluation.
        self._search_cache: tuple[Any, list[tuple[str, dict[str, Any]]]] | None = None

    def _type(self, request: SandboxRequest, key: str = "type") -> str | None:
        return self.b.type_id(request.path_params.get(key, ""))

    # -- tokens and account ---------------------------------------------------------------

    def token(self, request: SandboxRequest) -> SandboxResponse:
        return self.b.grant(request.form())

    def details(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse.json(
            {
                "portalId": PORTAL_ID,
                "accountType": "STANDARD",
                "timeZone": "Asia/Shanghai",
                "companyCurrency": "CNY",
                "additionalCurrencies": ["USD", "EUR"],
                "utcOffset": "+08:00",
                "utcOffsetMilliseconds": 28_800_000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    def usage(self, request: SandboxRequest) -> SandboxResponse:
        now = self.b.now_ms()
        return SandboxResponse.json(
            {
                "results": [
                    {
                        "name": "api-calls-daily",
                        "usageLimit": self.b.daily_limit,
                        "currentUsage": self.b.daily_used,
                        "collectedAt": iso(now),
                        "fetchStatus": "SUCCESS",
                        "resetsAt": iso(now - now % 86_400_000 + 86_400_000),
                    }
                ]
            }
        )

    # -- objects --------------------------------------------------------------------------

    def list_objects(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return _unknown_type(request.path_params["type"])
        limit = int(request.arg("limit") or 10)
        if not 0 < limit <= LIST_LIMIT:
            return hs_error(400, f"limit must be between 1 and {LIST_LIMIT}")
        archived = (request.arg("archived") or "false").lower() == "true"
        after = int(request.arg("after") or 0)
        rows = sorted(
            (
                r
                for r in self.b.records[type_id].values()
                if r.merged_into is None
                and (r.archived_ms is not None) == archived
                and int(r.id) > after
            ),
            key=lambda r: int(r.id),
        )
        page = rows[:limit]
        body: dict[str, Any] = {"results": [r.as_json(_names(request)) for r in page]}
        if len(rows) > limit:
            body["paging"] = {"next": {"after": page[-1].id, "link": f"?after={page[-1].id}"}}
        return SandboxResponse.json(body)

    def get_object(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return _unknown_type(request.path_params["type"])
        rid = request.path_params["id"]
        id_property = request.arg("idProperty")
        record = (
            self.b.by_unique(type_id, id_property, rid)
            if id_property
            else self.b.live(type_id, rid)
        )
        if record is None and (request.arg("archived") or "") == "true":
            found = self.b.records[type_id].get(rid)
            record = found if found is not None and found.archived_ms is not None else None
        if record is None:
            return _not_found(rid)
        return SandboxResponse.json(record.as_json(_names(request)))

    def create_object(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return _unknown_type(request.path_params["type"])
        if type_id == STANDARD_TYPES["feedback_submissions"]:
            return hs_error(405, "Feedback submissions are read-only.", "METHOD_NOT_ALLOWED")
        body = request.json() or {}
        values, problems = self.b.validate(type_id, body.get("properties") or {}, True)
        if problems:
            return hs_error(400, _invalid(problems), "VALIDATION_ERROR")
        targets = []
        for item in body.get("associations") or []:
            to_id = str((item.get("to") or {}).get("id"))
            for kind in item.get("types") or []:
                to_type = TYPE_TARGETS.get(int(kind.get("associationTypeId") or 0))
                if to_type is None or self.b.live(to_type, to_id) is None:
                    return hs_error(
                        400,
                        f"Association target {to_id} is not valid for type "
                        f"{kind.get('associationTypeId')}.",
                        "VALIDATION_ERROR",
                    )
                targets.append((to_type, to_id))
        record = self.b.write(type_id, None, values)
        for to_type, to_id in targets:
            self.b.associate(type_id, record.id, to_type, to_id)
        return SandboxResponse.json(record.as_json(list(values)), status=201)

    def update_object(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return _unknown_type(request.path_params["type"])
        record = self.b.live(type_id, request.path_params["id"])
        if record is None:
            return _not_found(request.path_params["id"])
        values, problems = self.b.validate(
            type_id, (request.json() or {}).get("properties") or {}, False
        )
        if problems:
            return hs_error(400, _invalid(problems), "VALIDATION_ERROR")
        return SandboxResponse.json(self.b.write(type_id, record, values).as_json(list(values)))

    def archive_object(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return _unknown_type(request.path_params["type"])
        record = self.b.live(type_id, request.path_params["id"])
        if record is not None:
            self.b.archive(record)
        return SandboxResponse.empty(204)

    def merge(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return _unknown_type(request.path_params["type"])
        body = request.json() or {}
        primary = self.b.live(type_id, str(body.get("primaryObjectId")))
        merged = self.b.live(type_id, str(body.get("objectIdToMerge")))
        if primary is None or merged is None or primary.id == merged.id:
            return hs_error(
                400, "Both primaryObjectId and objectIdToMerge must be distinct existing objects."
            )
        return SandboxResponse.json(self.b.merge(type_id, primary, merged).as_json(None))

    def search(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return _unknown_type(request.path_params["type"])
        body = request.json() or {}
        props = self.b.props(type_id)
        try:
            query.check(body, props)
            shape = json.dumps([body.get("filterGroups"), body.get("sorts")], sort_keys=True)
            key = (type_id, self.b.version, self.b.visibility_key(), shape)
            if self._search_cache is None or self._search_cache[0] != key:
                rows = self.b.searchable(type_id, with_associations="associations." in shape)
                self._search_cache = (key, query.matching(body, rows, props))
            page, total, nxt = query.page_of(body, self._search_cache[1])
        except query.SearchError as exc:
            return hs_error(400, str(exc), "VALIDATION_ERROR")
        wanted = list(
            dict.fromkeys(
                [
                    *(body.get("properties") or []),
                    "hs_createdate",
                    "hs_lastmodifieddate",
                    "hs_object_id",
                ]
            )
        )
        results = []
        for rid, values in page:
            record = self.b.records[type_id][rid]
            results.append(
                {
                    "id": rid,
                    "properties": {n: values.get(n) for n in wanted},
                    "createdAt": iso(record.created_ms),
                    "updatedAt": values.get("hs_lastmodifieddate"),
                    "archived": False,
                }
            )
        answer: dict[str, Any] = {"total": total, "results": results}
        if nxt is not None:
            answer["paging"] = {"next": {"after": str(nxt), "link": None}}
        return SandboxResponse.json(answer)

    # -- batches --------------------------------------------------------------------------

    def _inputs(self, request: SandboxRequest) -> list[dict[str, Any]] | SandboxResponse:
        inputs = (request.json() or {}).get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return hs_error(400, "inputs must be a list of objects")
        if len(inputs) > BATCH_LIMIT:
            return hs_error(
                400,
                f"Batch input of {len(inputs)} exceeds the limit of {BATCH_LIMIT}.",
                "VALIDATION_ERROR",
            )
        return inputs

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
            return _unknown_type(request.path_params["type"])
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
            return _unknown_type(request.path_params["type"])
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
                        _invalid(problems),
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
            return _unknown_type(request.path_params["type"])
        inputs = self._inputs(request)
        if isinstance(inputs, SandboxResponse):
            return inputs
        for item in inputs:
            record = self.b.live(type_id, str(item.get("id")))
            if record is not None:
                self.b.archive(record)
        return SandboxResponse.empty(204)

    # -- metadata -------------------------------------------------------------------------

    def properties(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return _unknown_type(request.path_params["type"])
        return SandboxResponse.json(
            {"results": [p.as_json(type_id) for p in self.b.props(type_id).values()]}
        )

    def schemas(self, request: SandboxRequest) -> SandboxResponse:
        return SandboxResponse.json(
            {"results": [custom_schema_json()] if self.b.enterprise else []}
        )

    def schema(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None or type_id in STANDARD_TYPES.values():
            return hs_error(
                404,
                f"Unable to find object schema {request.path_params['type']}",
                "OBJECT_NOT_FOUND",
            )
        doc = custom_schema_json()
        doc["properties"] = [p.as_json(type_id) for p in self.b.props(type_id).values()]
        return SandboxResponse.json(doc)

    def pipelines(self, request: SandboxRequest) -> SandboxResponse:
        if self._type(request) != STANDARD_TYPES["tickets"]:
            return SandboxResponse.json({"results": []})
        stages = [
            {
                "id": s,
                "label": _STAGES[s],
                "displayOrder": i,
                "archived": False,
                "metadata": {"ticketState": "CLOSED" if s == CLOSED_STAGE else "OPEN"},
            }
            for i, s in enumerate((*OPEN_STAGES, CLOSED_STAGE))
        ]
        return SandboxResponse.json(
            {
                "results": [
                    {
                        "id": "0",
                        "label": "Support Pipeline",
                        "displayOrder": 0,
                        "archived": False,
                        "stages": stages,
                    }
                ]
            }
        )

    def owners(self, request: SandboxRequest) -> SandboxResponse:
        limit = min(int(request.arg("limit") or 100), 500)
        after = int(request.arg("after") or 0)
        page = self.b.owners[after : after + limit]
        body: dict[str, Any] = {"results": page}
        if after + limit < len(self.b.owners):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return SandboxResponse.json(body)

    # -- associations v4 ------------------------------------------------------------------

    def _pair(self, request: SandboxRequest) -> tuple[str, str] | SandboxResponse:
        from_type, to_type = self._type(request, "from"), self._type(request, "to")
        if from_type is None or to_type is None:
            return _unknown_type(
                request.path_params.get("from", "")
                if from_type is None
                else request.path_params.get("to", "")
            )
        return from_type, to_type

    def assoc_read(self, request: SandboxRequest) -> SandboxResponse:
        pair = self._pair(request)
        if isinstance(pair, SandboxResponse):
            return pair
        inputs = self._inputs(request)
        if isinstance(inputs, SandboxResponse):
            return inputs
        results, missing = [], []
        for item in inputs:
            rid = str(item.get("id"))
            linked = self.b.associated(pair[0], rid, pair[1])
            if not linked:
                missing.append(rid)
                continue
            results.append(
                {
                    "from": {"id": rid},
                    "to": [
                        {
                            "toObjectId": int(t),
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": label or None}
                            ],
                        }
                        for t, label in sorted(linked.items(), key=lambda x: int(x[0]))
                    ],
                }
            )
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(0),
            "completedAt": iso(0),
        }
        if missing:
            body["numErrors"] = 1
            body["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "No associations found",
                    "context": {"fromObjectId": missing},
                }
            ]
            return SandboxResponse.json(body, status=207)
        return SandboxResponse.json(body)

    def assoc_create(self, request: SandboxRequest) -> SandboxResponse:
        pair = self._pair(request)
        if isinstance(pair, SandboxResponse):
            return pair
        inputs = self._inputs(request)
        if isinstance(inputs, SandboxResponse):
            return inputs
        results, errors = [], []
        for item in inputs:
            from_id = str((item.get("from") or {}).get("id"))
            to_id = str((item.get("to") or {}).get("id"))
            if self.b.live(pair[0], from_id) is None or self.b.live(pair[1], to_id) is None:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"{from_id} or {to_id} is not a valid object id",
                        "context": {"ids": [from_id, to_id]},
                    }
                )
                continue
            self.b.associate(pair[0], from_id, pair[1], to_id)
            results.append(
                {
                    "fromObjectTypeId": pair[0],
                    "fromObjectId": int(from_id),
                    "toObjectTypeId": pair[1],
                    "toObjectId": int(to_id),
                    "labels": [],
                }
            )
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(0),
            "completedAt": iso(0),
        }
        if errors:
            body["errors"] = errors
            body["numErrors"] = len(errors)
            return SandboxResponse.json(body, status=207)
        return SandboxResponse.json(body, status=201)

    def assoc_page(self, request: SandboxRequest) -> SandboxResponse:
        from_type, to_type = self._type(request, "from"), self._type(request, "to")
        if from_type is None or to_type is None:
            return _unknown_type(request.path_params.get("from", ""))
        linked = self.b.associated(from_type, request.path_params["id"], to_type)
        return SandboxResponse.json(
            {
                "results": [
                    {
                        "toObjectId": int(t),
                        "associationTypes": [
                            {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": lab or None}
                        ],
                    }
                    for t, lab in sorted(linked.items())
                ]
            }
        )

    # -- files ----------------------------------------------------------------------------

    def upload(self, request: SandboxRequest) -> SandboxResponse:
        content_type = request.headers.get("Content-Type") or ""
        if "multipart/form-data" not in content_type:
            return hs_error(
                415, "Files are uploaded as multipart/form-data.", "UNSUPPORTED_MEDIA_TYPE"
            )
        message = BytesParser(policy=default_policy).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
        )
        file_part, fields = None, {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                file_part = part
            elif isinstance(name, str):
                fields[name] = part.get_content()
        if file_part is None:
            return hs_error(400, "No file part in the upload.")
        filename = str(file_part.get_filename() or "file")
        payload = file_part.get_payload(decode=True) or b""
        stem, _, extension = filename.rpartition(".") if "." in filename else (filename, "", "")
        file_id = self.b.new_id()
        doc = {
            "id": file_id,
            "name": stem,
            "extension": extension,
            "size": len(payload),
            "access": json.loads(fields.get("options") or "{}").get("access", "PRIVATE"),
            "path": f"{fields.get('folderPath', '')}/{filename}",
            "url": f"https://api-na1.hubspot.net/files/{PORTAL_ID}/{file_id}/{filename}",
            "createdAt": iso(self.b.now_ms()),
            "archived": False,
        }
        self.b.files[file_id] = {**doc, "content": payload}
        return SandboxResponse.json(doc, status=201)

    def file(self, request: SandboxRequest) -> SandboxResponse:
        doc = self.b.files.get(request.path_params["id"])
        if doc is None:
            return hs_error(404, "File not found", "OBJECT_NOT_FOUND")
        return SandboxResponse.json({k: v for k, v in doc.items() if k != "content"})
