"""Bulk API 2.0 query jobs (``/services/data/vXX.X/jobs/query``), as airbyte's
source-salesforce and simple-salesforce's ``bulk2`` use them.

A job is created with ``{"operation": "query"|"queryAll", "query": SOQL}`` (the query is
checked at once, with the REST API's errors); its rows are taken when it is created. It
then moves ``UploadComplete`` -> ``InProgress`` -> ``JobComplete``, one state per status
read, so a client has to poll as it must against Salesforce. Results are CSV (every value
quoted, nulls empty, date-times in ``...000Z`` form) in sets of ``maxRecords`` rows, each
answer naming the next set in ``Sforce-Locator`` (``null`` after the last) and its size in
``Sforce-NumberOfRecords``; they are gzip-compressed when the client accepts it. A job can
be aborted (``PATCH {"state": "Aborted"}``), deleted, and listed (``GET /jobs/query``).
"""

from __future__ import annotations

import base64
import binascii
import csv
import gzip
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.salesforce.routes import DATA, versioned
from connectors.sandbox.salesforce.soql import SoqlError
from connectors.sandbox.salesforce.values import format_datetime

J = TypeVar("J")

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.models import SalesforceBackend

JOBS = DATA + "/jobs/query"
#: Rows of one result set when the client names no ``maxRecords``.
DEFAULT_MAX_RECORDS = 50_000
DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "SEMICOLON": ";",
    "PIPE": "|",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
#: Each status read moves an unfinished job one state on.
_NEXT_STATE = {"UploadComplete": "InProgress", "InProgress": "JobComplete"}
_FINISHED = ("JobComplete", "Aborted", "Failed")
_REST_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000")


@dataclass
class QueryJob:
    """One Bulk API 2.0 query job and the CSV lines of its result (header first)."""

    id: str
    operation: str
    sobject: str
    version: str
    created: datetime
    modstamp: datetime
    delimiter: str
    line_ending: str
    header: str
    lines: list[str]
    state: str = "UploadComplete"

    def info(self, backend: SalesforceBackend, *, full: bool = True) -> dict[str, Any]:
        """The job document: what creation answers, and with ``full`` what a status read
        answers (job type and counts)."""
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
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        }
        if full:
            out["jobType"] = "V2Query"
            done = self.state == "JobComplete"
            out["numberRecordsProcessed"] = len(self.lines) if done else 0
            out["retries"] = 0
            out["totalProcessingTime"] = 250 if done else 0
        return out


def job_error(status: int, message: str, code: str) -> SandboxResponse:
    """A Bulk API 2.0 error answer (Salesforce's error list)."""
    from connectors.sandbox.salesforce.models import sf_error

    return sf_error(status, message, code)


_error = job_error


def find_job(jobs: Mapping[str, J], request: SandboxRequest) -> J | SandboxResponse:
    """The job the request's path names, or Salesforce's 404 (query and ingest jobs)."""
    job = jobs.get(request.path_params["job"])
    if job is None:
        return job_error(404, "The requested resource does not exist", "NOT_FOUND")
    return job


def csv_value(value: Any) -> str:
    """One rendered REST value as a Bulk CSV cell (before quoting)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and _REST_DATETIME.fullmatch(value):
        return value[:-5] + "Z"  # Bulk results write UTC date-times with Z
    return str(value)


def _cell(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    current: Any = row
    for key in keys:
        current = current.get(key) if isinstance(current, dict) else None
    return csv_value(current)


def _encode_locator(offset: int) -> str:
    # Salesforce's locators look like base64 of the offset ("MjAwMDA" for 20000).
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int | None:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def register(backend: SalesforceBackend) -> None:
    """Add the Bulk API 2.0 query routes to ``backend.router``. A query job changes no
    records: every route counts as a read."""
    router = backend.router
    jobs: dict[str, QueryJob] = backend.query_jobs

    def find(request: SandboxRequest) -> QueryJob | SandboxResponse:
        return find_job(jobs, request)

    @router.route("POST", JOBS, write=False)
    @versioned
    def create(request: SandboxRequest) -> SandboxResponse:
        payload = request.json()
        if not isinstance(payload, dict):
            return _error(400, "Expected a JSON object describing the job.", "JSON_PARSER_ERROR")
        operation = payload.get("operation")
        if operation not in ("query", "queryAll"):
            return _error(
                400,
                f"Invalid operation {operation!r}: a query job's operation is query or queryAll.",
                "INVALIDJOB",
            )
        content_type = payload.get("contentType", "CSV")
        delimiter = payload.get("columnDelimiter", "COMMA")
        line_ending = payload.get("lineEnding", "LF")
        if content_type != "CSV" or delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            return _error(
                400,
                "contentType must be CSV, columnDelimiter one of "
                f"{', '.join(DELIMITERS)} and lineEnding LF or CRLF.",
                "INVALIDJOB",
            )
        soql = payload.get("query")
        if not isinstance(soql, str) or not soql.strip():
            return _error(400, "A query job needs a 'query'.", "INVALIDJOB")
        try:
            compiled, rows = backend.run_query(soql, operation == "queryAll")
        except SoqlError as exc:
            return _error(400, exc.message, exc.code)
        if compiled.count is not None or compiled.query.offset:
            return _error(
                400,
                "Bulk API 2.0 does not support aggregate functions such as COUNT() or the "
                "OFFSET clause in a query job.",
                "API_ERROR",
            )
        version = request.path_params["version"]
        columns = compiled.columns()
        sep, end = DELIMITERS[delimiter], LINE_ENDINGS[line_ending]

        def line(cells: list[str]) -> str:
            out = io.StringIO()
            csv.writer(out, delimiter=sep, quoting=csv.QUOTE_ALL, lineterminator=end).writerow(
                cells
            )
            return out.getvalue()

        now = backend.now()
        job = QueryJob(
            id=backend.new_id("750"),
            operation=operation,
            sobject=compiled.sobject.name,
            version=version,
            created=now,
            modstamp=now,
            delimiter=delimiter,
            line_ending=line_ending,
            header=line([".".join(keys) for keys in columns]),
            lines=[
                line([_cell(compiled.render(r, version), keys) for keys in columns]) for r in rows
            ],
        )
        jobs[job.id] = job
        return SandboxResponse.json(job.info(backend, full=False))

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
        answer = SandboxResponse.json(job.info(backend))
        if job.state in _NEXT_STATE:  # the caller sees this state; the next read the next
            job.state = _NEXT_STATE[job.state]
            job.modstamp = backend.now()
        return answer

    @router.route("PATCH", JOBS + "/{job}", write=False)
    @versioned
    def abort(request: SandboxRequest) -> SandboxResponse:
        job = find(request)
        if isinstance(job, SandboxResponse):
            return job
        payload = request.json()
        if not isinstance(payload, dict) or payload.get("state") != "Aborted":
            return _error(400, "A query job can only be set to state Aborted.", "INVALIDJOB")
        if job.state in _FINISHED:
            return _error(400, f"Cannot abort a job in state {job.state}.", "INVALIDJOBSTATE")
        job.state, job.modstamp = "Aborted", backend.now()
        return SandboxResponse.json(job.info(backend))

    @router.route("DELETE", JOBS + "/{job}", write=False)
    @versioned
    def delete(request: SandboxRequest) -> SandboxResponse:
        job = find(request)
        if isinstance(job, SandboxResponse):
            return job
        if job.state == "InProgress":
            return _error(400, "Cannot delete a job in state InProgress.", "INVALIDJOBSTATE")
        del jobs[job.id]
        return SandboxResponse.empty(204)

    @router.route("GET", JOBS + "/{job}/results")
    @versioned
    def results(request: SandboxRequest) -> SandboxResponse:
        job = find(request)
        if isinstance(job, SandboxResponse):
            return job
        if request.path_params["version"] != job.version:
            return _error(
                409,
                f"Get the results with API version {job.version}, the one that created the job.",
                "CONFLICT",
            )
        if job.state != "JobComplete":
            return _error(
                400, f"The job is in state {job.state}, not JobComplete.", "INVALIDJOBSTATE"
            )
        raw_max = request.arg("maxRecords")
        if raw_max is not None and (not raw_max.isdigit() or int(raw_max) < 1):
            return _error(400, "maxRecords must be a positive integer.", "INVALID_FIELD")
        size = int(raw_max) if raw_max else DEFAULT_MAX_RECORDS
        locator = request.arg("locator")
        start = 0 if locator in (None, "", "null") else _decode_locator(locator)
        if start is None or start > len(job.lines):
            return _error(400, f"Invalid locator: {locator}", "INVALID_LOCATOR")
        chunk = job.lines[start : start + size]
        following = start + len(chunk)
        body = (job.header + "".join(chunk)).encode("utf-8")
        headers = {
            "Content-Type": "text/csv",
            "Sforce-NumberOfRecords": str(len(chunk)),
            "Sforce-Locator": _encode_locator(following) if following < len(job.lines) else "null",
        }
        if "gzip" in (request.headers.get("Accept-Encoding") or "").lower():
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return SandboxResponse(status=200, body=body, headers=headers)


__all__ = ["DEFAULT_MAX_RECORDS", "QueryJob", "csv_value", "register"]
