"""Writing: upserts by external id through sObject Collections, 200 records a call.

``PATCH /composite/sobjects/{Object}/{ExternalIdField}`` with ``allOrNone: false``: each
record succeeds or fails on its own and its result comes back in input order. Records
refused only with UNABLE_TO_LOCK_ROW are sent again (just those, in one call) within the
retry policy's attempts; an upsert by external id is safe to repeat. Records still locked
after the last attempt come back failed with that error, for the caller to park.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors import soql
from connectors.crm import UpsertResult
from connectors.exceptions import ConfigError, RecordError, RejectedRecord, RemoteError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import RETRY_CODES, SIDE, Unfinished, first_error

BATCH_SIZE = 200
LOCKED = "UNABLE_TO_LOCK_ROW"


def is_locked(result: UpsertResult) -> bool:
    """Refused only because another transaction held the row (worth another try)."""
    errors = result.errors
    return not result.success and bool(errors) and all(e.code == LOCKED for e in errors)


class _StillLocked(Unfinished):
    pass


def jsonable(value: Any) -> Any:
    """A field value as Salesforce's JSON wants it (date-times in UTC with milliseconds)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"refusing naive datetime {value.isoformat()}: give it a zone")
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _payload(sobject: str, record: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"attributes": {"type": sobject}}
    body.update((k, jsonable(v)) for k, v in record.items() if k != "attributes")
    return body


def _result(key: str, item: Any) -> UpsertResult:
    if not isinstance(item, Mapping):
        raise RemoteError(f"unexpected collection result item {item!r}", side=SIDE)
    errors = tuple(RecordError.from_salesforce(e) for e in item.get("errors") or ())
    return UpsertResult(
        key=key,
        success=bool(item.get("success")),
        created=bool(item.get("created")),
        id=item.get("id"),
        errors=errors,
    )


def check_target(
    client: SalesforceClient,
    sobject: str,
    external_id_field: str,
    fields: Sequence[str],
    relationships: Sequence[str] = (),
) -> str:
    """Validate the target object, fields and parent relationships (``Account__r``: a parent
    by its own external id) against describe; the external id field's API name."""
    info = client.field_info(sobject, external_id_field)
    if not (info.get("externalId") or info.get("idLookup")):
        raise ConfigError(
            f"{sobject}.{info['name']} is not an External ID field; upserts need one "
            "(mark it External ID and Unique in Salesforce, or name another field)",
            side=SIDE,
        )
    client.resolve_fields(sobject, fields)
    known = {
        str(f["relationshipName"]).lower()
        for f in client.describe(sobject).get("fields", [])
        if f.get("relationshipName")
    }
    for name in relationships:
        if name.lower() not in known:
            raise ConfigError(
                f"{sobject} has no parent relationship {name!r}; use the lookup field's "
                "relationship name (e.g. Account__r)",
                side=SIDE,
            )
    return str(info["name"])


def upsert(
    client: SalesforceClient,
    sobject: str,
    external_id_field: str,
    records: Sequence[Mapping[str, Any]],
    *,
    lanes: int = 1,
) -> list[UpsertResult]:
    """Upsert ``records`` by ``external_id_field``; one result per record, in input order.
    A record's ``attributes`` (its type, as a query answer or the model writes it) is
    left out: the object is ``sobject``. With ``lanes`` > 1 that many collections are in
    flight at once (where latency, not Salesforce, sets the pace); the results still come
    in input order, each batch's at its own place."""
    if not records:
        return []
    records = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
    fields: dict[str, str] = {}
    parents: dict[str, str] = {}
    for record in records:
        for name, value in record.items():
            (parents if isinstance(value, Mapping) else fields).setdefault(name.lower(), name)
    ext = check_target(
        client,
        soql.identifier(sobject),
        external_id_field,
        list(fields.values()),
        list(parents.values()),
    )
    keys = []
    for record in records:
        value = record.get(ext, record.get(external_id_field))
        if value is None or value == "":
            raise ValueError(f"a record to upsert has no {ext} value: {dict(record)!r}")
        keys.append(str(value))
    starts = range(0, len(records), BATCH_SIZE)

    def one(start: int) -> list[UpsertResult]:
        batch = records[start : start + BATCH_SIZE]
        return _upsert_batch(client, sobject, ext, batch, keys[start : start + BATCH_SIZE])

    if lanes <= 1 or len(starts) <= 1:
        return [result for start in starts for result in one(start)]
    # Every batch runs to its end (a failed one raises after the others finished, so no
    # write is left unrecorded behind an error); the futures keep the input order.
    with ThreadPoolExecutor(max_workers=min(lanes, len(starts))) as pool:
        futures = [pool.submit(one, start) for start in starts]
        wait(futures)
    return [result for future in futures for result in future.result()]


def _upsert_batch(
    client: SalesforceClient,
    sobject: str,
    ext: str,
    batch: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
) -> list[UpsertResult]:
    results: list[UpsertResult | None] = [None] * len(batch)
    pending = list(range(len(batch)))
    path = f"composite/sobjects/{sobject}/{ext}"

    def attempt(sf: Any) -> None:
        nonlocal pending
        body = {"allOrNone": False, "records": [_payload(sobject, batch[i]) for i in pending]}
        answer = sf.restful(path, method="PATCH", json=body)
        if not isinstance(answer, list) or len(answer) != len(pending):
            raise RemoteError(
                f"upsert {sobject}: expected {len(pending)} results, got {answer!r:.200}",
                side=SIDE,
            )
        locked = []
        for index, item in zip(pending, answer, strict=True):
            result = results[index] = _result(keys[index], item)
            if is_locked(result):
                locked.append(index)
        pending = locked
        if locked:
            raise _StillLocked(f"{len(locked)} record(s) locked by another transaction")

    # When records stay locked, their last answer (the lock error) is already in results.
    with contextlib.suppress(_StillLocked):
        client.call(f"upsert {len(pending)} {sobject}", attempt)
    return [r for r in results if r is not None]


def create(client: SalesforceClient, sobject: str, record: Mapping[str, Any]) -> str:
    """Create one record (e.g. a ContentVersion); its Id, or RejectedRecord with the errors.

    Not repeated after a broken connection: a create is not idempotent.
    """
    soql.identifier(sobject)
    body = {k: jsonable(v) for k, v in record.items()}

    def attempt(sf: Any) -> Any:
        try:
            return sf.restful(f"sobjects/{sobject}", method="POST", json=body)
        except SalesforceMalformedRequest as exc:
            if first_error(exc.content)[0] in RETRY_CODES:
                raise  # the client retries row locks
            errors: Any = exc.content if isinstance(exc.content, list) else []
            return {"success": False, "errors": errors}

    answer = client.call(f"create {sobject}", attempt, idempotent=False)
    if not isinstance(answer, Mapping) or not answer.get("success", False) or not answer.get("id"):
        errors = [
            RecordError.from_salesforce(dict(e))
            for e in (answer.get("errors") if isinstance(answer, Mapping) else None) or []
            if isinstance(e, Mapping)
        ]
        raise RejectedRecord(
            str(record.get("Name") or record.get("Title") or sobject), errors, side=SIDE
        )
    return str(answer["id"])
