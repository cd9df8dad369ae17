"""Writing: batch upserts of 100 with per-record results, and notes with a file.

With a custom object (Enterprise portals) the report records are upserted by its unique
property (``POST /crm/v3/objects/{type}/batch/upsert``) and each one written is associated
to its company (associations v4, one call per batch; HubSpot keeps one association per
pair, so associating again is harmless, and a run killed between the upsert and the
association leaves records that the rerun's upsert no longer answers as new). Without
one, the report of each company's main project goes into company properties
(``batch/update``): the engine's push sends only that one, chosen from all of the
company's links (:class:`connectors.crm.OneReportPerCustomer`); should a call still hold
several projects of one company, the lowest project key among them is written and the
others are acknowledged without a write. A 207 answer lists refused records in
``errors``; each is matched to its input by ``objectWriteTraceId`` and comes back failed,
for the caller to park.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from connectors.crm import AttachedFile, UpsertResult
from connectors.exceptions import RecordError, RejectedRecord, RemoteError
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.settings import SIDE
from connectors.times import parse_timestamp

BATCH_SIZE: Final = 100
COMPANIES: Final = "companies"
#: HubSpot-defined association type ids (v4).
NOTE_TO_COMPANY: Final = 190
FILES_FOLDER: Final = "/jira-crm-sync"


def property_value(value: Any) -> str:
    """A value as HubSpot's properties take it (strings; None clears the property)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"refusing naive datetime {value.isoformat()}: give it a zone")
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(float(value))
    return str(value)


def _properties(record: Mapping[str, Any], leave_out: Sequence[str]) -> dict[str, str]:
    return {
        k: property_value(v)
        for k, v in record.items()
        if k != "attributes" and k not in leave_out and not isinstance(v, Mapping)
    }


def _errors_by_trace(answer: Mapping[str, Any]) -> dict[str, list[RecordError]]:
    """Per-record errors of a batch answer by ``objectWriteTraceId`` (or by the ids the
    error's context names, for answers without trace ids)."""
    found: dict[str, list[RecordError]] = {}
    for error in answer.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        context = error.get("context") or {}
        keys = [str(error["objectWriteTraceId"])] if error.get("objectWriteTraceId") else []
        keys += [str(k) for k in context.get("objectWriteTraceId") or []]
        keys += [f"id:{k}" for k in context.get("ids") or []]
        fields = tuple(str(f) for f in context.get("propertyName") or [])
        item = RecordError(
            code=str(error.get("category") or error.get("status") or "ERROR"),
            message=str(error.get("message") or ""),
            fields=fields,
        )
        for key in keys:
            found.setdefault(key, []).append(item)
    return found


def _batch(client: HubSpotClient, what: str, path: str, inputs: list[dict[str, Any]]) -> Any:
    answer = client.call(what, "POST", path, json={"inputs": inputs})
    if not isinstance(answer, Mapping):
        raise RemoteError(f"{what}: unexpected answer {answer!r:.200}", side=SIDE)
    return answer


def upsert_custom(
    client: HubSpotClient,
    object_type: str,
    id_property: str,
    company_field: str,
    records: Sequence[Mapping[str, Any]],
) -> list[UpsertResult]:
    """Upsert into a custom object by its unique property, 100 a call; every record
    written is associated to the company its ``company_field`` names (not only the new
    ones: after a crash between the two calls the rerun sees the record as existing)."""
    keys = [_key(r, id_property) for r in records]
    results: list[UpsertResult] = []
    for start in range(0, len(records), BATCH_SIZE):
        batch = records[start : start + BATCH_SIZE]
        batch_keys = keys[start : start + BATCH_SIZE]
        inputs = [
            {
                "idProperty": id_property,
                "id": key,
                "objectWriteTraceId": str(i),
                "properties": _properties(record, (id_property,)),
            }
            for i, (record, key) in enumerate(zip(batch, batch_keys, strict=True))
        ]
        answer = _batch(
            client,
            f"upsert {len(batch)} {object_type}",
            f"/crm/v3/objects/{object_type}/batch/upsert",
            inputs,
        )
        by_key: dict[str, Mapping[str, Any]] = {}
        for item in answer.get("results") or []:
            if isinstance(item, Mapping):
                value = (item.get("properties") or {}).get(id_property)
                by_key[str(value if value is not None else item.get("id"))] = item
        errors = _errors_by_trace(answer)
        associate: list[dict[str, Any]] = []
        for i, (record, key) in enumerate(zip(batch, batch_keys, strict=True)):
            refused = errors.get(str(i)) or errors.get(f"id:{key}")
            item = by_key.get(key)
            if refused or item is None:
                why = refused or [RecordError("MISSING_RESULT", "HubSpot returned no result")]
                results.append(UpsertResult(key, False, errors=tuple(why)))
                continue
            created = bool(item.get("new"))
            results.append(UpsertResult(key, True, created=created, id=str(item.get("id"))))
            company = record.get(company_field)
            if company:
                associate.append({"from": {"id": str(item.get("id"))}, "to": {"id": str(company)}})
        if associate:
            client.call(
                f"associate {len(associate)} {object_type} to companies",
                "POST",
                f"/crm/v4/associations/{object_type}/{COMPANIES}/batch/associate/default",
                json={"inputs": associate},
            )
    return results


def update_companies(
    client: HubSpotClient,
    id_property: str,
    company_field: str,
    project_field: str,
    records: Sequence[Mapping[str, Any]],
) -> list[UpsertResult]:
    """Write each company's main-project report into its properties, 100 companies a call."""
    keys = [_key(r, id_property) for r in records]
    main: dict[str, int] = {}
    for i, record in enumerate(records):
        company = str(record.get(company_field) or "")
        if not company:
            continue
        current = main.get(company)
        if current is None or str(record.get(project_field) or "") < str(
            records[current].get(project_field) or ""
        ):
            main[company] = i
    outcome: dict[int, UpsertResult] = {}
    for i, record in enumerate(records):
        if not record.get(company_field):
            missing = RecordError("NO_COMPANY", f"the record has no {company_field} value")
            outcome[i] = UpsertResult(keys[i], False, errors=(missing,))
    chosen = list(main.items())
    for start in range(0, len(chosen), BATCH_SIZE):
        batch = chosen[start : start + BATCH_SIZE]
        inputs = [
            {
                "id": company,
                "objectWriteTraceId": str(i),
                "properties": _properties(records[i], (company_field,)),
            }
            for company, i in batch
        ]
        answer = _batch(
            client,
            f"update {len(batch)} companies",
            f"/crm/v3/objects/{COMPANIES}/batch/update",
            inputs,
        )
        done = {str(r.get("id")) for r in answer.get("results") or [] if isinstance(r, Mapping)}
        errors = _errors_by_trace(answer)
        for company, i in batch:
            refused = errors.get(str(i)) or errors.get(f"id:{company}")
            if refused or company not in done:
                why = refused or [RecordError("MISSING_RESULT", "HubSpot returned no result")]
                outcome[i] = UpsertResult(keys[i], False, errors=tuple(why))
            else:
                outcome[i] = UpsertResult(keys[i], True, id=company)
    for i, record in enumerate(records):
        if i not in outcome:  # another project of a company written above
            company = str(record.get(company_field))
            written = outcome.get(main[company])
            outcome[i] = UpsertResult(
                keys[i],
                bool(written and written.success),
                id=company,
                errors=written.errors if written and not written.success else (),
            )
    return [outcome[i] for i in range(len(records))]


def _key(record: Mapping[str, Any], id_property: str) -> str:
    value = record.get(id_property)
    if value is None or value == "":
        raise ValueError(f"a record to upsert has no {id_property} value: {dict(record)!r}")
    return str(value)


def attach_file(
    client: HubSpotClient, customer_id: str, title: str, file_name: str, data: bytes
) -> str:
    """Upload the file (private) and post a note carrying it on the company; the note's id.
    Neither call is repeated after a broken connection; RejectedRecord when refused."""
    uploaded = client.call(
        f"upload {file_name}",
        "POST",
        "/files/v3/files",
        files={"file": (file_name, data, "text/html")},
        data={
            "folderPath": FILES_FOLDER,
            "options": json.dumps({"access": "PRIVATE", "overwrite": False}),
        },
        idempotent=False,
    )
    file_id = uploaded.get("id") if isinstance(uploaded, Mapping) else None
    if not file_id:
        raise RejectedRecord(
            file_name, [RecordError("NO_FILE", "the upload returned no id")], side=SIDE
        )
    body = {
        "properties": {
            "hs_timestamp": property_value(datetime.now(UTC)),
            "hs_note_body": title,
            "hs_attachment_ids": str(file_id),
        },
        "associations": [
            {
                "to": {"id": customer_id},
                "types": [
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_COMPANY}
                ],
            }
        ],
    }
    try:
        note = client.call(
            f"note {title!r} on company {customer_id}",
            "POST",
            "/crm/v3/objects/notes",
            json=body,
            idempotent=False,
        )
    except RemoteError as exc:
        if exc.status in (400, 404):
            raise RejectedRecord(
                customer_id, [RecordError(f"HTTP_{exc.status}", exc.message)], side=SIDE
            ) from None
        raise
    if not isinstance(note, Mapping) or not note.get("id"):
        raise RejectedRecord(
            customer_id, [RecordError("NO_NOTE", "no note id returned")], side=SIDE
        )
    return str(note["id"])


def files_on(
    client: HubSpotClient, customer_ids: Sequence[str], since: datetime
) -> list[AttachedFile]:
    """Notes with a file on any of ``customer_ids`` created at or after ``since``: per 100
    companies one association read and one note read, then one call per file found."""
    found: list[AttachedFile] = []
    ids = list(dict.fromkeys(customer_ids))
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        answer = _batch(
            client,
            "read notes of companies",
            f"/crm/v4/associations/{COMPANIES}/notes/batch/read",
            [{"id": i} for i in chunk],
        )
        owner: dict[str, str] = {}
        for result in answer.get("results") or []:
            for target in result.get("to") or []:
                owner[str(target.get("toObjectId"))] = str((result.get("from") or {}).get("id"))
        notes = list(owner)
        for at in range(0, len(notes), BATCH_SIZE):
            read = client.call(
                "read notes",
                "POST",
                "/crm/v3/objects/notes/batch/read",
                json={
                    "properties": ["hs_note_body", "hs_attachment_ids", "hs_createdate"],
                    "inputs": [{"id": n} for n in notes[at : at + BATCH_SIZE]],
                },
            )
            for note in (read or {}).get("results") or []:
                props = note.get("properties") or {}
                attached = str(props.get("hs_attachment_ids") or "").split(";")[0]
                created = props.get("hs_createdate") or note.get("createdAt")
                if not attached or not created or parse_timestamp(str(created)) < since:
                    continue
                file = client.call("read file", "GET", f"/files/v3/files/{attached}") or {}
                name = str(file.get("name") or "")
                extension = str(file.get("extension") or "")
                found.append(
                    AttachedFile(
                        id=str(note.get("id")),
                        customer_id=owner.get(str(note.get("id"))),
                        title=str(props.get("hs_note_body") or ""),
                        file_name=f"{name}.{extension}" if extension else name,
                    )
                )
    return found
