"""Association (v4) and file routes of the HubSpot emulator."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot.common import RouteBase, unknown_type
from connectors.sandbox.hubspot.errors import hs_error
from connectors.sandbox.hubspot.models import PORTAL_ID
from connectors.sandbox.hubspot.values import iso


class LinkRoutes(RouteBase):
    """``/crm/v4/associations/...`` and ``/files/v3/files``."""

    def _pair(self, request: SandboxRequest) -> tuple[str, str] | SandboxResponse:
        from_type, to_type = self._type(request, "from"), self._type(request, "to")
        if from_type is None or to_type is None:
            return unknown_type(
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
            return unknown_type(request.path_params.get("from", ""))
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
