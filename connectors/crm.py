"""The CRM seam: what the engine needs from any CRM, and the plain values that cross it.

The engine (``sync/``) talks to a CRM only through :class:`CrmConnector`. It says what a
cycle needs in the config's words (:class:`Needs`: the customer fields, the survey
answers, the report object) and in *kinds*, not in the CRM's object names:

- ``customer``: who the work is for (Salesforce: Account);
- ``case``: the customer's support cases (Salesforce: Case);
- ``survey``: survey answers holding satisfaction scores (an object the config names);
- ``report``: the object the progress reports are upserted to (the config names it).

The connector turns that into its own queries and answers with pages tagged by kind
(:class:`ChangePage`), each record with the few facts the engine stores
(:class:`CrmRecord`) and the record as the CRM sent it. Each kind is read as a *stream*
named as the CRM names it (Salesforce: the object's API name); cursors, set-aside records
and the pull's counts are kept in the state store under that name, and a cursor is the
connector's own JSON, stored and handed back as it is.

Salesforce implements this in :mod:`connectors.salesforce`; a second CRM implements the
same Protocol in its own package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol, runtime_checkable

from connectors.calls import CallMeter
from connectors.discovery import CrmDiscovery
from connectors.exceptions import RecordError

Kind = Literal["customer", "case", "survey", "report"]
CUSTOMER: Final = "customer"
CASE: Final = "case"
SURVEY: Final = "survey"
REPORT: Final = "report"


# -- what a cycle needs, in the config's words ----------------------------------------------


@dataclass(frozen=True)
class Configured:
    """A name the config gives a CRM field or object, and the setting that gives it (for
    messages: ``[crm.salesforce.account] segment_field``)."""

    name: str
    setting: str


@dataclass(frozen=True)
class CustomerNeed:
    """The customer fields a cycle reads besides those every customer has (id, name,
    owner): the segment, the satisfaction score when it is a customer field, and the
    field holding Jira project keys when links are found by it."""

    segment: Configured
    satisfaction: Configured | None = None
    project_keys: Configured | None = None


@dataclass(frozen=True)
class SurveyNeed:
    """The survey-answer object: whose answer it is, its score and when it was given."""

    object: Configured
    customer_field: Configured
    score_field: Configured
    date_field: Configured


@dataclass(frozen=True)
class ReportNeed:
    """The object reports are upserted to, its external id and the fields written."""

    object: Configured
    external_id: Configured
    fields: tuple[Configured, ...]


@dataclass(frozen=True)
class Needs:
    """Everything a cycle reads from and writes to the CRM."""

    customer: CustomerNeed
    report: ReportNeed
    survey: SurveyNeed | None = None  # None: satisfaction comes from a customer field

    @property
    def pulled(self) -> tuple[Kind, ...]:
        """The kinds a cycle pulls (the report object is only written, and read by
        reconcile)."""
        return (CUSTOMER, CASE, SURVEY) if self.survey is not None else (CUSTOMER, CASE)


# -- validation (`check --online`) ------------------------------------------------------------


@dataclass(frozen=True)
class CrmField:
    """One field a cycle uses, where the config sets it (or that it is standard), and
    whether the sync writes it or upserts by it."""

    name: str
    setting: str
    write: bool = False
    external_id: bool = False


@dataclass(frozen=True)
class CrmObject:
    """One object a cycle reads or writes, with the fields it uses there."""

    kind: Kind
    name: str
    setting: str
    fields: tuple[CrmField, ...]


def streams_of(needs: Needs, customer_object: str, case_object: str) -> dict[Kind, str]:
    """The object each kind is read from and written to: the CRM's own customer and case
    objects, and the configured survey and report objects."""
    found: dict[Kind, str] = {CUSTOMER: customer_object, CASE: case_object}
    if needs.survey is not None:
        found[SURVEY] = needs.survey.object.name
    found[REPORT] = needs.report.object.name
    return found


def report_object(needs: Needs) -> CrmObject:
    """The report object as `check` lists it: the external id (written, unique) and the
    configured report fields (written)."""
    report = needs.report
    written = (
        CrmField(report.external_id.name, report.external_id.setting, True, True),
        *(CrmField(f.name, f.setting, True) for f in report.fields),
    )
    return CrmObject(REPORT, report.object.name, report.object.setting, written)


@dataclass(frozen=True)
class FieldProblem:
    """Why one configured field cannot be used, and what to do (one line)."""

    field: str
    problem: str


@dataclass(frozen=True)
class Allowance:
    """The CRM's own daily API allowance, as it reports it (None: not reported)."""

    remaining: int | None
    total: int | None
    #: Whose allowance and under what name the CRM reports it, for messages.
    holder: str = "the org"
    source: str = "DailyApiRequests"


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """One kind to read: since a cursor a page gave (None: everything), or only the
    records with ``ids`` (set-aside records read again; the cursor is not moved).
    ``first``: nothing of the kind is stored yet, so a read of everything need not look
    for deletions (there is nothing they could remove)."""

    kind: Kind
    cursor: Mapping[str, Any] | None = None
    ids: tuple[str, ...] | None = None
    first: bool = False


@dataclass(frozen=True)
class CrmRecord:
    """One record read, with the facts the engine stores (the rest is ``data``)."""

    id: str
    #: When the CRM last changed it (the pull's order and the store's "newer" test).
    changed_at: datetime
    #: What the model reads from it, in the CRM-neutral form of :mod:`mappings.normalise_crm`
    #: (keys named by role: ``name``, ``segment``, ``owner_name``, ``customer_id`` ...); a
    #: report record's fields as the config names them.
    data: dict[str, Any]
    #: The customer it belongs to: a customer itself, a case's or a survey answer's one.
    customer_id: str | None = None
    #: A case: closed, escalated.
    closed: bool = False
    escalated: bool = False
    #: A survey answer: its score and when it was given (None when unreadable: the model's
    #: check sets such a record aside before anything stores it).
    score: float | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True)
class ChangePage:
    """Records of one stream, in the order the cursor moves; deleted ones by id."""

    kind: Kind
    #: The CRM's name of what was read (Salesforce: the object).
    stream: str
    live: list[CrmRecord]
    deleted_ids: list[str]
    #: Where the next pull of this stream resumes (JSON, to store as it is); None when no
    #: record of this page moved it.
    cursor: dict[str, Any] | None
    #: Records that could not be read at all, as (id, reason): for the caller to set aside.
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: Customers a merge took (among ``deleted_ids``) -> the customer they were merged
    #: into, where the CRM says so on the deleted record (Salesforce's ``MasterRecordId``;
    #: HubSpot names them on the survivor, as its ``merged_ids``).
    merged_into: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordForm:
    """How one CRM writes what the model reads, for code that reads the state store
    without a connector (derive, reports): built from the config, no call."""

    #: The canonical form of a customer id written in any form the CRM accepts (a link
    #: value typed into Jira, ``report --customer``); None when it is not an id.
    customer_id: Callable[[object], str | None]
    #: A customer as the store holds it, in the neutral form (rows an older version
    #: stored in the CRM's own shape are translated when read).
    stored_customer: Callable[[Mapping[str, Any]], dict[str, Any]]


# -- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpsertResult:
    """What became of one record of an upsert."""

    key: str
    success: bool
    created: bool = False
    id: str | None = None
    errors: tuple[RecordError, ...] = ()


@dataclass(frozen=True)
class JobInfo:
    """An asynchronous bulk write job as the CRM reports it."""

    id: str
    #: The CRM's own word (Salesforce: Open, UploadComplete, InProgress, JobComplete,
    #: Failed, Aborted).
    state: str
    processed: int = 0
    failed: int = 0
    #: Why the whole job failed, when it did.
    error: str | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """What became of the records of a finished bulk job: a result per record it processed,
    by external id, and the keys it never processed (to send again)."""

    results: Mapping[str, UpsertResult]
    unprocessed: tuple[str, ...] = ()
    #: Why the job stopped before the end (its records not processed were refused with it).
    error: str | None = None


@runtime_checkable
class BulkUpserts(Protocol):
    """A CRM that upserts many records in one asynchronous job (Salesforce: Bulk API 2.0)
    and sends a few collection requests at once. The steps are separate so the engine can
    record the job before its data is sent and find it again after a crash."""

    @property
    def bulk_threshold(self) -> int:
        """A push with more records than this goes in jobs; at or below, in collections."""
        ...

    @property
    def parallel_writes(self) -> int:
        """Collection requests to keep in flight at once (1: one after the other)."""
        ...

    def start_job(self, name: str, external_id_field: str) -> str:
        """Create an upsert job on ``name`` by ``external_id_field``; its id (no data yet)."""
        ...

    def send_job(self, job_id: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Upload the job's records and close it: the CRM starts processing."""
        ...

    def finish_job(self, job_id: str, external_id_field: str) -> BulkOutcome | None:
        """Wait for the job and read its results; None when the CRM has no such job or it
        never got its data (an unfinished one is aborted): send the records again."""
        ...


@dataclass(frozen=True)
class AttachedFile:
    """A file attached to a customer record."""

    id: str
    customer_id: str | None
    title: str
    file_name: str


# -- the seam -------------------------------------------------------------------------------


@runtime_checkable
class CrmConnector(Protocol):
    """What the engine needs from any CRM. Building one makes no call; every call is
    metered, retried under :mod:`connectors.retry`, and fails with the classes of
    :mod:`connectors.exceptions`."""

    #: The side's name in the state store, the call meter and messages (``salesforce``).
    side: str
    meter: CallMeter

    def connect(self) -> None:
        """Sign in."""
        ...

    def close(self) -> None:
        """Close the HTTP session."""
        ...

    @property
    def instance_url(self) -> str:
        """The base of links to records (after :meth:`connect`)."""
        ...

    # metadata: read once, cached by the engine between runs

    def objects(self, needs: Needs) -> list[CrmObject]:
        """The objects and fields ``needs`` uses (no call)."""
        ...

    def streams(self, needs: Needs) -> dict[Kind, str]:
        """The stream (CRM name) each kind is read under (no call)."""
        ...

    def describe(self, name: str) -> dict[str, Any]:
        """The metadata of one object (one call, then held)."""
        ...

    def restore_describe(self, name: str, describe: dict[str, Any]) -> None:
        """Hold metadata cached from an earlier run instead of reading it."""
        ...

    def check_object(self, target: CrmObject) -> list[FieldProblem]:
        """What is wrong with the fields of one object; ConnectorError when the object
        itself cannot be used."""
        ...

    def allowance(self) -> Allowance:
        """The CRM's daily API allowance (one call; also proves the sign-in works)."""
        ...

    # the cycle

    def changes(self, needs: Needs, reads: Sequence[Read]) -> Iterator[ChangePage]:
        """Pages of changed and deleted records of each read, in few calls."""
        ...

    def upsert(
        self, name: str, external_id_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[UpsertResult]:
        """Upsert records by external id; one result per record, in order."""
        ...

    def files_on(self, customer_ids: Sequence[str], since: datetime) -> list[AttachedFile]:
        """Files attached to any of ``customer_ids`` at or after ``since``."""
        ...

    def attach_file(self, customer_id: str, title: str, file_name: str, data: bytes) -> str:
        """Attach a file to a customer record (one call, not repeated); its id.
        RejectedRecord when refused."""
        ...


@runtime_checkable
class OneReportPerCustomer(Protocol):
    """A CRM connector whose report object may be the customer record itself (HubSpot
    without a custom object: company properties). There a customer holds one report, its
    main project's (the lowest project key it is linked to); the push sends only that one,
    whatever the other projects' reports are and however the outbox is batched."""

    def one_report_per_customer(self, name: str) -> bool:
        """Whether reports upserted to ``name`` go onto the customer records (after
        :meth:`CrmConnector.connect`; at most one call, then held)."""
        ...


@runtime_checkable
class Discoverable(Protocol):
    """A CRM connector that can judge its own metadata for `init --discover` and the
    suggestions of `check --online` (:mod:`connectors.discovery`)."""

    def discovery(self) -> CrmDiscovery:
        """Its side of discovery, on this (signed-in) connector; no call."""
        ...
