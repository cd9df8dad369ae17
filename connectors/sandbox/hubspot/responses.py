"""HTTP handlers of the HubSpot emulator: request parameters -> backend -> HubSpot's JSON.

Objects, search, tokens and metadata here; batches in ``batches.py``, associations and
files in ``links.py``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot import query
from connectors.sandbox.hubspot.batches import BatchRoutes
from connectors.sandbox.hubspot.common import invalid, names, not_found, unknown_type
from connectors.sandbox.hubspot.errors import hs_error
from connectors.sandbox.hubspot.links import LinkRoutes
from connectors.sandbox.hubspot.models import PORTAL_ID
from connectors.sandbox.hubspot.schema import (
    CLOSED_STAGE,
    OPEN_STAGES,
    STANDARD_TYPES,
    custom_schema_json,
)
from connectors.sandbox.hubspot.values import iso

LIST_LIMIT: Final = 100
#: HubSpot-defined association type ids -> the object type they point to.
TYPE_TARGETS: Final = {190: "0-2", 202: "0-1", 228: "0-5", 280: "0-2", 339: "0-2"}
_STAGES: Final = {"1": "New", "2": "Waiting on contact", "3": "Waiting on us", "4": "Closed"}


class Handlers(BatchRoutes, LinkRoutes):
    """The routes' bodies, bound to one backend (batches and links in their modules)."""

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
            return unknown_type(request.path_params["type"])
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
        body: dict[str, Any] = {"results": [r.as_json(names(request)) for r in page]}
        if len(rows) > limit:
            body["paging"] = {"next": {"after": page[-1].id, "link": f"?after={page[-1].id}"}}
        return SandboxResponse.json(body)

    def get_object(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return unknown_type(request.path_params["type"])
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
            return not_found(rid)
        return SandboxResponse.json(record.as_json(names(request)))

    def create_object(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return unknown_type(request.path_params["type"])
        if type_id == STANDARD_TYPES["feedback_submissions"]:
            return hs_error(405, "Feedback submissions are read-only.", "METHOD_NOT_ALLOWED")
        body = request.json() or {}
        values, problems = self.b.validate(type_id, body.get("properties") or {}, True)
        if problems:
            return hs_error(400, invalid(problems), "VALIDATION_ERROR")
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
            return unknown_type(request.path_params["type"])
        record = self.b.live(type_id, request.path_params["id"])
        if record is None:
            return not_found(request.path_params["id"])
        values, problems = self.b.validate(
            type_id, (request.json() or {}).get("properties") or {}, False
        )
        if problems:
            return hs_error(400, invalid(problems), "VALIDATION_ERROR")
        return SandboxResponse.json(self.b.write(type_id, record, values).as_json(list(values)))

    def archive_object(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return unknown_type(request.path_params["type"])
        record = self.b.live(type_id, request.path_params["id"])
        if record is not None:
            self.b.archive(record)
        return SandboxResponse.empty(204)

    def merge(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return unknown_type(request.path_params["type"])
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
            return unknown_type(request.path_params["type"])
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

    # -- metadata -------------------------------------------------------------------------

    def properties(self, request: SandboxRequest) -> SandboxResponse:
        type_id = self._type(request)
        if type_id is None:
            return unknown_type(request.path_params["type"])
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
