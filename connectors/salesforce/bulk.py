"""Large upserts through Bulk API 2.0 ingest jobs: a handful of calls for any number of
records (create, upload the CSV, close, poll, read the results).

The steps are separate so that the caller can record the job's id before its data is
sent: a run killed mid-job finds the job again (:func:`job_info`), waits for it and maps
its results back, or, when the job is gone or never got its data, sends the records
again. Either is safe: an upsert by external id matches the record it created the first
time, so a record sent twice is updated, never duplicated.

Calls go through simple-salesforce's own ``call_salesforce`` (its session, headers and
error classes) at ``sf.bulk2_url``, inside the one retry policy of
:meth:`SalesforceClient.call`. Not through ``sf.bulk2.<Object>.upsert``: that runs create,
upload, close and wait in one call (no point to record the job in between), sleeps in
its own loop outside our retry policy and budget, and writes ``None`` as an empty cell,
which Bulk API reads as "leave the field as it is" (a value we clear must be ``#N/A``).

CSV: every cell quoted (values carry commas, quotes, newlines, any script), UTF-8, LF
line endings; ``#N/A`` for null; a parent by its external id as ``Account__r.Key__c``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from simple_salesforce.util import call_salesforce

from connectors.crm import BulkOutcome, JobInfo, UpsertResult
from connectors.exceptions import RecordError, RemoteError, RetriableError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SIDE
from connectors.salesforce.push import jsonable

NULL = "#N/A"
FINISHED = frozenset({"JobComplete", "Failed", "Aborted"})
#: Polling: the first wait, the factor, the longest wait, and how long a push waits for a
#: job in all (it is left running past that; the next cycle resumes polling it).
POLL_FIRST = 0.5
POLL_FACTOR = 2.0
POLL_CAP = 10.0
POLL_PATIENCE = 900.0


def cell(value: Any) -> str:
    """One field value as a Bulk CSV cell (``#N/A`` clears the field)."""
    value = jsonable(value)
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _columns(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """(field, parent field) columns in first-seen order; a parent given by its external id
    (``{"Account__r": {"Key__c": "k"}}``) is the column ``Account__r.Key__c``."""
    seen: dict[tuple[str, str | None], None] = {}
    for record in records:
        for name, value in record.items():
            if name == "attributes":
                continue
            if isinstance(value, Mapping):
                for inner in value:
                    if inner != "attributes":
                        seen.setdefault((name, inner), None)
            else:
                seen.setdefault((name, None), None)
    return list(seen)


def to_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """The records as one CSV upload (header first); a field a record lacks is left empty,
    which Bulk API reads as "not changed"."""
    columns = _columns(records)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([name if inner is None else f"{name}.{inner}" for name, inner in columns])
    for record in records:
        row = []
        for name, inner in columns:
            if name not in record:
                row.append("")
                continue
            value = record[name]
            if inner is not None:
                value = value.get(inner) if isinstance(value, Mapping) else None
            row.append(cell(value))
        writer.writerow(row)
    return out.getvalue()


def _url(sf: Any, job_id: str = "", tail: str = "") -> str:
    url = f"{sf.bulk2_url}ingest"
    if job_id:
        url += f"/{job_id}"
    return url + (f"/{tail}" if tail else "")


def _headers(
    sf: Any, content: str = "application/json", accept: str = "application/json"
) -> dict[str, str]:
    return {**sf.headers, "Content-Type": content, "Accept": accept}


def _info(payload: Any) -> JobInfo:
    if not isinstance(payload, Mapping) or not payload.get("id"):
        raise RemoteError(f"unexpected ingest job answer {payload!r:.200}", side=SIDE)
    return JobInfo(
        id=str(payload["id"]),
        state=str(payload.get("state") or ""),
        processed=int(payload.get("numberRecordsProcessed") or 0),
        failed=int(payload.get("numberRecordsFailed") or 0),
        error=str(payload["errorMessage"]) if payload.get("errorMessage") else None,
    )


def create_job(client: SalesforceClient, sobject: str, external_id_field: str) -> str:
    """Create an upsert job by ``external_id_field``; its id. An extra job a retried create
    may leave behind holds no data and does nothing."""
    body = json.dumps(
        {
            "object": sobject,
            "externalIdFieldName": external_id_field,
            "contentType": "CSV",
            "operation": "upsert",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
    )

    def attempt(sf: Any) -> Any:
        return call_salesforce(
            url=_url(sf), method="POST", session=sf.session, headers=_headers(sf), data=body
        ).json()

    return _info(client.call(f"create a Bulk API upsert job for {sobject}", attempt)).id


def upload(client: SalesforceClient, job_id: str, records: Sequence[Mapping[str, Any]]) -> None:
    """Send the job's one CSV upload. Not repeated after a broken connection (a job takes
    one upload): the caller reads the job's state and sends the records again if need be."""
    data = to_csv(records).encode("utf-8")

    def attempt(sf: Any) -> None:
        call_salesforce(
            url=_url(sf, job_id, "batches"),
            method="PUT",
            session=sf.session,
            headers=_headers(sf, "text/csv; charset=UTF-8"),
            data=data,
        )

    client.call(
        f"upload {len(records)} records to Bulk API job {job_id}", attempt, idempotent=False
    )


def set_state(client: SalesforceClient, job_id: str, state: str) -> JobInfo:
    """``UploadComplete`` (close: Salesforce starts processing) or ``Aborted``."""
    body = json.dumps({"state": state})

    def attempt(sf: Any) -> Any:
        return call_salesforce(
            url=_url(sf, job_id),
            method="PATCH",
            session=sf.session,
            headers=_headers(sf),
            data=body,
        ).json()

    return _info(client.call(f"set Bulk API job {job_id} to {state}", attempt))


def job_info(client: SalesforceClient, job_id: str) -> JobInfo | None:
    """The job's state and counts; None when Salesforce no longer has it (deleted, or
    older than its retention of a week)."""

    def attempt(sf: Any) -> Any:
        return call_salesforce(
            url=_url(sf, job_id), method="GET", session=sf.session, headers=_headers(sf)
        ).json()

    try:
        return _info(client.call(f"read Bulk API job {job_id}", attempt))
    except RemoteError as exc:
        if exc.status == 404:
            return None
        raise


def wait(
    client: SalesforceClient,
    job_id: str,
    *,
    patience: float = POLL_PATIENCE,
    clock: Callable[[], float] = time.monotonic,
) -> JobInfo | None:
    """Poll the job with backoff (0.5 s doubling to 10 s) until it finished; None when it is
    gone. RetriableError when it is still running after ``patience`` seconds: it goes on in
    Salesforce, and the next cycle resumes polling it."""
    pause, started = POLL_FIRST, clock()
    while True:
        info = job_info(client, job_id)
        if info is None or info.state in FINISHED:
            return info
        if info.state == "Open":
            return info  # never closed: nothing will happen to it
        if clock() - started + pause > patience:
            raise RetriableError(
                f"Bulk API job {job_id} is still {info.state} after {patience:g} s "
                f"({info.processed} records processed); the next cycle resumes polling it",
                side=SIDE,
            )
        client.sleep(pause)
        pause = min(pause * POLL_FACTOR, POLL_CAP)


def _results(client: SalesforceClient, job_id: str, which: str) -> list[dict[str, str]]:
    def attempt(sf: Any) -> str:
        answer = call_salesforce(
            url=_url(sf, job_id, which),
            method="GET",
            session=sf.session,
            headers=_headers(sf, accept="text/csv"),
        )
        answer.encoding = "utf-8"
        return answer.text

    text = client.call(f"read the {which} of Bulk API job {job_id}", attempt)
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _error_of(text: str) -> RecordError:
    """``CODE:message:fields --`` (Salesforce's ``sf__Error``) as a record error."""
    code, sep, rest = text.partition(":")
    if not sep or not code.isupper():
        return RecordError(code="", message=text.strip())
    message, _, fields = rest.rstrip(" -").rpartition(":")
    if not message:
        message, fields = fields, ""
    return RecordError(
        code=code,
        message=message.strip(),
        fields=tuple(f for f in fields.split(",") if f),
    )


def outcome(client: SalesforceClient, job_id: str, external_id_field: str) -> BulkOutcome:
    """What became of each record of a finished job, by external id: successful and failed
    results, and the keys never processed (to send again)."""
    key_of = _key_column(external_id_field)
    results: dict[str, UpsertResult] = {}
    for row in _results(client, job_id, "successfulResults"):
        key = key_of(row)
        results[key] = UpsertResult(
            key=key,
            success=True,
            created=row.get("sf__Created", "").lower() == "true",
            id=row.get("sf__Id") or None,
        )
    for row in _results(client, job_id, "failedResults"):
        key = key_of(row)
        results[key] = UpsertResult(
            key=key, success=False, errors=(_error_of(row.get("sf__Error") or "rejected"),)
        )
    unprocessed = [key_of(row) for row in _results(client, job_id, "unprocessedrecords")]
    return BulkOutcome(results, tuple(k for k in unprocessed if k not in results))


def _key_column(external_id_field: str) -> Callable[[Mapping[str, str]], str]:
    wanted = external_id_field.lower()

    def key_of(row: Mapping[str, str]) -> str:
        for name, value in row.items():
            if name.lower() == wanted:
                return value
        raise RemoteError(
            f"a Bulk API result row has no {external_id_field} column: {sorted(row)!r}",
            side=SIDE,
        )

    return key_of


__all__ = [
    "NULL",
    "cell",
    "create_job",
    "job_info",
    "outcome",
    "set_state",
    "to_csv",
    "upload",
    "wait",
]
