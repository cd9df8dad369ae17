"""Bulk API 2.0 ingest jobs (``/services/data/vXX.X/jobs/ingest``), as Salesforce runs them.

A job is created ``Open`` with ``{"object", "operation", "externalIdFieldName"?,
"contentType": "CSV", "columnDelimiter"?, "lineEnding"?}``; its data is one CSV upload
(``PUT .../batches``, ``text/csv``, at most 150 MB); ``PATCH {"state": "UploadComplete"}``
closes it (or ``Aborted`` drops it). Each status read then moves it on, as Salesforce's
asynchronous processing does: ``UploadComplete`` -> ``InProgress``, then one internal batch
of :data:`BATCH_RECORDS` records per read until ``JobComplete``. A header naming a field the
object lacks fails the whole job (``Failed`` with an ``errorMessage``), as Salesforce does.

Cells follow Bulk CSV: an empty cell leaves the field as it is, ``#N/A`` sets it to null.
Each record is written like a Collections record (same validation, same errors). Results
are CSV: ``successfulResults`` (``sf__Id``, ``sf__Created``, then the uploaded columns),
``failedResults`` (``sf__Id``, ``sf__Error`` as ``CODE:message:fields --``, then the
columns) and ``unprocessedrecords`` (the uploaded columns of records never processed:
those of an aborted or failed job).

Limits: one upload of at most ``max_ingest_bytes`` (150 MB) a job, and
``daily_bulk_batches`` (15,000) internal batches a day for the org, reported in ``/limits``
as ``DailyBulkApiBatches``. Test hook: ``ingest_fail_after`` (the next job fails after that
many records, the rest unprocessed). Not emulated: parents by external id
(``Account__r.Key__c`` columns) fail the job as unknown fields, as in Collections here.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.salesforce.bulk import DELIMITERS, LINE_ENDINGS, find_job, job_error
from connectors.sandbox.salesforce.metadata import SObjectDef, sobject
from connectors.sandbox.salesforce.routes import DATA, versioned
from connectors.sandbox.salesforce.values import FieldValueError, format_datetime
from connectors.sandbox.salesforce.writes import MultipleMatches

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.models import SalesforceBackend

JOBS = DATA + "/jobs/ingest"
#: Records Salesforce processes per internal batch (one per status read here).
BATCH_RECORDS = 10_000
#: The largest CSV one upload may carry (Salesforce: 150 MB).
MAX_UPLOAD_BYTES = 150 * 1024 * 1024
OPERATIONS = ("insert", "update", "upsert", "delete")
NULL = "#N/A"
_FINISHED = ("JobComplete", "Failed", "Aborted")
_RESULTS = ("successfulResults", "failedResults", "unprocessedrecords")


@dataclass
class IngestJob:
    """One ingest job: its settings, the uploaded rows and what became of each."""

    id: str
    sobject: str
    operation: str
    external_id: str | None
    version: str
    created: datetime
    modstamp: datetime
    delimiter: str
    line_ending: str
    state: str = "Open"
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    #: Per processed row, in order: (row, Id or "", created, error or None).
    done: list[tuple[list[str], str, bool, str | None]] = field(default_factory=list)
    error: str | None = None
    fail_after: int | None = None
    batches: int = 0

    def info(self, backend: SalesforceBackend) -> dict[str, Any]:
        """The job document a create, a state change or a status read answers."""
        failed = sum(1 for *_, error in self.done if error is not None)
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.sobject,
            "createdById": backend.user_id,
            "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.modstamp),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "jobType": "V2Ingest",
            "contentUrl": f"services/data/v{self.version}/jobs/ingest/{self.id}/batches",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
            "numberRecordsProcessed": len(self.done),
            "numberRecordsFailed": failed,
            "retries": 0,
            "totalProcessingTime": 40 * len(self.done),
            "apiActiveProcessingTime": 30 * len(self.done),
            "apexProcessingTime": 0,
        }
        if self.external_id:
            out["externalIdFieldName"] = self.external_id
        if self.error:
            out["errorMessage"] = self.error
        return out


_error = job_error


def _csv(job: IngestJob, header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=DELIMITERS[job.delimiter],
        lineterminator=LINE_ENDINGS[job.line_ending],
        quoting=csv.QUOTE_ALL,
    )
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def sf_error_text(exc: FieldValueError) -> str:
    """``sf__Error`` as Salesforce writes it: ``CODE:message:field,field --``."""
    return f"{exc.code}:{exc.message}:{','.join(exc.fields or ())} --"


class _Processor:
    """Writes one job's records through the backend's validated writes."""

    def __init__(self, backend: SalesforceBackend, job: IngestJob, obj: SObjectDef) -> None:
        self.backend, self.job, self.obj = backend, job, obj
        self.columns = [obj.field(name) for name in job.header]
        ext = job.external_id or "Id"
        self.key_column = next(
            (i for i, name in enumerate(job.header) if name.lower() == ext.lower()), None
        )
        self.fdef = obj.field(ext)
        keys = [r[self.key_column].lower() for r in job.rows if self.key_column is not None]
        self.repeated = Counter(keys)

    def values(self, row: list[str], creating: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for fdef, cell in zip(self.columns, row, strict=False):
            assert fdef is not None  # the header was checked when the upload closed
            if cell == "" or (self.key_column is not None and fdef is self.fdef):
                continue  # an empty cell leaves the field as it is
            payload[fdef.name] = None if cell == NULL else cell
        return self.backend.prepare(self.obj, payload, creating=creating)

    def write(self, row: list[str]) -> tuple[str, bool]:
        op, backend, obj = self.job.operation, self.backend, self.obj
        key = row[self.key_column] if self.key_column is not None else ""
        if op == "insert":
            return backend.insert(obj, self.values(row, creating=True)), True
        if not key:
            name = self.fdef.name if self.fdef is not None else "Id"
            raise FieldValueError("MISSING_ARGUMENT", f"{name} not specified", [name])
        if op in ("update", "delete"):
            live_obj, _ = backend.live_record(obj, key)
            if op == "delete":
                return backend.remove(live_obj, key), False
            return backend.modify(obj, key, self.values(row, creating=False)), False
        assert self.fdef is not None
        if self.repeated[key.lower()] > 1:
            raise FieldValueError(
                "DUPLICATE_EXTERNAL_ID",
                f"Duplicate external id specified: {key}",
                [self.fdef.name],
            )
        creating = not backend.match_external(obj, self.fdef, key)
        try:
            return backend.upsert(obj, self.fdef, key, self.values(row, creating))
        except MultipleMatches as exc:
            raise FieldValueError(
                "DUPLICATE_EXTERNAL_ID",
                f"{self.fdef.name}: more than one record found for external id field: {exc.ids}",
                [self.fdef.name],
            ) from None

    def step(self) -> None:
        """Process the next internal batch; the job completes (or fails) after the last.
        Each batch counts against the org's ``DailyBulkApiBatches``; with none left the
        job fails, its records not processed yet left unprocessed."""
        job = self.job
        if self.backend.bulk_batches_used >= self.backend.daily_bulk_batches:
            job.state = "Failed"
            job.error = (
                "InvalidBatch : the org's daily limit of "
                f"{self.backend.daily_bulk_batches} Bulk API batches is spent"
            )
            return
        start = len(job.done)
        stop = min(len(job.rows), start + BATCH_RECORDS)
        if job.fail_after is not None:
            stop = min(stop, job.fail_after)
        for row in job.rows[start:stop]:
            # A rejected record is refused before anything is stored: no rollback needed.
            try:
                record_id, created = self.write(row)
                job.done.append((row, record_id, created, None))
            except FieldValueError as exc:
                job.done.append((row, "", False, sf_error_text(exc)))
        job.batches += 1
        self.backend.bulk_batches_used += 1
        if job.fail_after is not None and len(job.done) >= job.fail_after:
            job.state = "Failed"
            job.error = (
                "InternalServerError : the sandbox was told to fail this job after "
                f"{job.fail_after} record(s); the rest are unprocessed"
            )
        elif len(job.done) >= len(job.rows):
            job.state = "JobComplete"


def register(backend: SalesforceBackend) -> None:
    """Add the Bulk API 2.0 ingest routes to ``backend.router``."""
    router = backend.router
    jobs: dict[str, IngestJob] = backend.ingest_jobs

    def find(request: SandboxRequest) -> IngestJob | SandboxResponse:
        return find_job(jobs, request)

    @router.route("POST", JOBS, write=True)
    @versioned
    def create(request: SandboxRequest) -> SandboxResponse:
        payload = request.json()
        if not isinstance(payload, dict):
            return _error(400, "Expected a JSON object describing the job.", "JSON_PARSER_ERROR")
        operation = payload.get("operation")
        if operation not in OPERATIONS:
            return _error(
                400,
                f"Invalid operation {operation!r}: an ingest job's operation is one of "
                f"{', '.join(OPERATIONS)} (query jobs are created at /jobs/query).",
                "INVALIDJOB",
            )
        obj = sobject(str(payload.get("object") or ""))
        if obj is None:
            return _error(
                400, f"InvalidJob : Invalid object: {payload.get('object')!r}", "INVALIDJOB"
            )
        delimiter = payload.get("columnDelimiter", "COMMA")
        line_ending = payload.get("lineEnding", "LF")
        if (
            payload.get("contentType", "CSV") != "CSV"
            or delimiter not in DELIMITERS
            or line_ending not in LINE_ENDINGS
        ):
            return _error(
                400,
                "contentType must be CSV, columnDelimiter one of "
                f"{', '.join(DELIMITERS)} and lineEnding LF or CRLF.",
                "INVALIDJOB",
            )
        external = payload.get("externalIdFieldName")
        if operation == "upsert":
            if not isinstance(external, str) or not external:
                return _error(400, "InvalidJob : External ID was blank for upsert.", "INVALIDJOB")
            try:
                external = backend.external_field(obj, external).name
            except FieldValueError:
                return _error(
                    400,
                    f"InvalidJob : Field name provided, {external} does not match an External "
                    f"ID, Salesforce Id, or indexed field for {obj.name}",
                    "INVALIDJOB",
                )
        now = backend.now()
        job = IngestJob(
            id=backend.new_id("750"),
            sobject=obj.name,
            operation=operation,
            external_id=external if operation == "upsert" else None,
            version=request.path_params["version"],
            created=now,
            modstamp=now,
            delimiter=delimiter,
            line_ending=line_ending,
            fail_after=backend.ingest_fail_after,
        )
        backend.ingest_fail_after = None
        jobs[job.id] = job
        return SandboxResponse.json(job.info(backend))

    @router.route("PUT", JOBS + "/{job}/batches", write=True)
    @versioned
    def upload(request: SandboxRequest) -> SandboxResponse:
        job = find(request)
        if isinstance(job, SandboxResponse):
            return job
        if job.state != "Open":
            return _error(
                409,
                f"Job {job.id} is in state {job.state}: data goes to Open jobs only.",
                "INVALIDJOBSTATE",
            )
        if job.rows or job.header:
            return _error(
                409,
                "The job's data was already uploaded: a job takes one upload.",
                "INVALIDJOBSTATE",
            )
        kind = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "text/csv":
            return _error(400, "Upload the job's data as text/csv.", "INVALID_CONTENT_TYPE")
        if len(request.body) > backend.max_ingest_bytes:
            return _error(
                413,
                f"ClientInputError : the upload is {len(request.body)} bytes; a job takes at "
                f"most {backend.max_ingest_bytes}",
                "REQUEST_ENTITY_TOO_LARGE",
            )
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "ClientInputError : the data is not UTF-8", "INVALID_CSV")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter])
        try:
            lines = list(reader)
        except csv.Error as exc:
            return _error(400, f"ClientInputError : malformed CSV: {exc}", "INVALID_CSV")
        if not lines or not any(lines[0]):
            return _error(400, "ClientInputError : the CSV has no header row", "INVALID_CSV")
        header, rows = lines[0], [r for r in lines[1:] if r]
        width = len(header)
        if any(len(r) != width for r in rows):
            return _error(
                400,
                "ClientInputError : a row has more or fewer cells than the header "
                "(check the quoting of values holding the delimiter, quotes or newlines)",
                "INVALID_CSV",
            )
        job.header, job.rows = header, rows
        job.modstamp = backend.now()
        return SandboxResponse.empty(201)

    @router.route("PATCH", JOBS + "/{job}", write=True)
    @versioned
    def set_state(request: SandboxRequest) -> SandboxResponse:
        job = find(request)
        if isinstance(job, SandboxResponse):
            return job
        payload = request.json()
        wanted = payload.get("state") if isinstance(payload, dict) else None
        if wanted not in ("UploadComplete", "Aborted"):
            return _error(
                400, "Set an ingest job's state to UploadComplete or Aborted.", "INVALIDJOB"
            )
        if wanted == "Aborted":
            if job.state in _FINISHED:
                return _error(400, f"Cannot abort a job in state {job.state}.", "INVALIDJOBSTATE")
            job.state = "Aborted"
        else:
            if job.state != "Open":
                return _error(400, f"Cannot close a job in state {job.state}.", "INVALIDJOBSTATE")
            job.state = "UploadComplete"
            obj = sobject(job.sobject)
            assert obj is not None
            unknown = [name for name in job.header if obj.field(name) is None]
            if not job.rows:
                job.state, job.error = "Failed", "InvalidBatch : no data was uploaded"
            elif unknown:
                job.state = "Failed"
                job.error = f"InvalidBatch : Field name not found : {unknown[0]}"
        job.modstamp = backend.now()
        return SandboxResponse.json(job.info(backend))

    @router.route("GET", JOBS)
    @versioned
    def listing(request: SandboxRequest) -> SandboxResponse:
        records = [job.info(backend) for job in jobs.values()]
        return SandboxResponse.json({"done": True, "records": records, "nextRecordsUrl": None})

    @router.route("GET", JOBS + "/{job}")
    @versioned
    def status(request: SandboxRequest) -> SandboxResponse:
        job = find(request)
        if isinstance(job, SandboxResponse):
            return job
        # Each read moves the job on, as Salesforce's processing does between polls.
        if job.state == "UploadComplete":
            job.state = "InProgress"
        elif job.state == "InProgress":
            obj = sobject(job.sobject)
            assert obj is not None
            _Processor(backend, job, obj).step()
        job.modstamp = backend.now()
        return SandboxResponse.json(job.info(backend))

    @router.route("DELETE", JOBS + "/{job}", write=True)
    @versioned
    def delete(request: SandboxRequest) -> SandboxResponse:
        job = find(request)
        if isinstance(job, SandboxResponse):
            return job
        if job.state not in (*_FINISHED, "Open"):
            return _error(400, f"Cannot delete a job in state {job.state}.", "INVALIDJOBSTATE")
        del jobs[job.id]
        return SandboxResponse.empty(204)

    @router.route("GET", JOBS + "/{job}/{results}")
    @versioned
    def results(request: SandboxRequest) -> SandboxResponse:
        job = find(request)
        if isinstance(job, SandboxResponse):
            return job
        # Salesforce documents ``unprocessedrecords``; simple-salesforce asks for
        # ``unprocessedRecords``, and Salesforce answers both.
        which = {name.lower(): name for name in _RESULTS}.get(
            request.path_params["results"].lower()
        )
        if which is None:
            return _error(404, "The requested resource does not exist", "NOT_FOUND")
        if job.state not in _FINISHED:
            return _error(
                400,
                f"The job is in state {job.state}; results come once it finished.",
                "INVALIDJOBSTATE",
            )
        if which == "successfulResults":
            body = _csv(
                job,
                ["sf__Id", "sf__Created", *job.header],
                [
                    [record_id, "true" if created else "false", *row]
                    for row, record_id, created, error in job.done
                    if error is None
                ],
            )
        elif which == "failedResults":
            body = _csv(
                job,
                ["sf__Id", "sf__Error", *job.header],
                [[record_id, error, *row] for row, record_id, _, error in job.done if error],
            )
        else:
            body = _csv(job, job.header, job.rows[len(job.done) :])
        return SandboxResponse(status=200, body=body, headers={"Content-Type": "text/csv"})


__all__ = ["BATCH_RECORDS", "MAX_UPLOAD_BYTES", "NULL", "IngestJob", "register", "sf_error_text"]
