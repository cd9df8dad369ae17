"""The Salesforce connector the engine uses: the CRM seam (:mod:`connectors.crm`) over
simple-salesforce, plus the Salesforce-only reads of discovery and the connector tests."""

from __future__ import annotations

import base64
import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from connectors import soql
from connectors.crm import (
    Allowance,
    AttachedFile,
    BulkOutcome,
    ChangePage,
    CrmField,
    CrmObject,
    CrmRecord,
    FieldProblem,
    Kind,
    Needs,
    Read,
    UpsertResult,
)
from connectors.exceptions import RemoteError
from connectors.salesforce import bulk, changes, kinds, paging, pull, push, records
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SIDE
from connectors.salesforce.pull import CASE_FIELDS, ModstampCursor, Record

if TYPE_CHECKING:  # imported by discovery(): `init --discover` and `check --online` only
    from connectors.salesforce.discover import SalesforceDiscovery


@dataclass(frozen=True)
class AccountFields:
    """Which Account fields to pull besides Id, Name and SystemModstamp."""

    segment: str = "Segment__c"
    satisfaction: str | None = "CSAT__c"
    extra: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """The fields to select."""
        names = ["Name", self.segment]
        if self.satisfaction:
            names.append(self.satisfaction)
        return [*names, *self.extra]


@dataclass(frozen=True)
class SurveySource:
    """A survey-response object holding satisfaction scores."""

    sobject: str
    account_field: str
    score_field: str
    date_field: str

    def names(self) -> list[str]:
        """The fields to select."""
        return [self.account_field, self.score_field, self.date_field]


class SalesforceConnector(SalesforceClient):
    """The CRM seam for Salesforce (:class:`connectors.crm.CrmConnector`): Accounts, Cases
    and survey answers pulled, report records upserted, files attached to Accounts."""

    side: str = SIDE

    # -- the CRM seam ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def objects(self, needs: Needs) -> list[CrmObject]:
        """The objects and fields ``needs`` uses (no call)."""
        return kinds.objects(needs)

    def streams(self, needs: Needs) -> dict[Kind, str]:
        """The object each kind is read from and written to (no call)."""
        return kinds.streams(needs)

    def check_object(self, target: CrmObject) -> list[FieldProblem]:
        """What is wrong with the configured fields of one object, by its describe (one
        call unless held); ConfigError when the object is not visible to the user."""
        described = self.describe(target.name)
        fields = kinds.describe_fields(described)
        names = [str(f.get("name")) for f in fields.values()]
        return [
            FieldProblem(wanted.name, problem)
            for wanted in target.fields
            if (problem := _field_problem(wanted, fields.get(wanted.name.lower()), names))
        ]

    def allowance(self) -> Allowance:
        """The org's daily API requests left, from ``GET /limits`` (one call)."""
        daily = self.limits().get("DailyApiRequests") or {}
        remaining, most = daily.get("Remaining"), daily.get("Max")
        return Allowance(
            remaining if isinstance(remaining, int) else None,
            most if isinstance(most, int) else None,
            holder="the org",
            source="DailyApiRequests",
        )

    def changes(self, needs: Needs, reads: Sequence[Read]) -> Iterator[ChangePage]:
        """Changes and deletions of each read since its cursor (``queryAll``); the first
        page of up to five objects comes in one Composite call."""
        queries = [kinds.query(needs, read) for read in reads]
        for page in changes.changes(self, queries):
            kind = page.query.kind
            assert kind is not None  # kinds.query tags every query
            live: list[CrmRecord] = []
            unreadable = list(page.unreadable)
            for raw in page.live:
                why = records.problem(needs, kind, raw)
                if why is None:
                    live.append(kinds.record(needs, kind, raw))
                else:
                    unreadable.append((str(raw["Id"]), why))
            yield ChangePage(
                kind,
                page.query.sobject,
                live,
                page.deleted_ids,
                kinds.cursor_json(page.cursor),
                unreadable,
                page.merged_into,
            )

    def upsert(
        self, name: str, external_id_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[UpsertResult]:
        """Upsert by external id in collections of 200, up to :attr:`parallel_writes` of
        them in flight at once; one result per record, in order."""
        return push.upsert(self, name, external_id_field, records, lanes=self.parallel_writes)

    # -- Bulk API 2.0 (connectors.crm.BulkUpserts) ----------------------------------------

    @property
    def bulk_threshold(self) -> int:
        """A push of more records than this goes through Bulk API 2.0 ingest jobs."""
        return self.settings.bulk_threshold

    @property
    def parallel_writes(self) -> int:
        """Collections in flight at once; one when the org's daily usage nears our reserve."""
        return 1 if self.paced else self.settings.parallel_writes

    def start_job(self, name: str, external_id_field: str) -> str:
        """Create an upsert job by the external id field (one call; describe when not held)."""
        ext = push.check_target(self, soql.identifier(name), external_id_field, [])
        return bulk.create_job(self, name, ext)

    def send_job(self, job_id: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Upload the records as CSV and close the job (two calls); the fields are checked
        against describe first (a field the object lacks would fail the whole job)."""
        fields = sorted(
            {
                k
                for r in records
                for k, v in r.items()
                if k != "attributes" and not isinstance(v, Mapping)
            }
        )
        sobject = next(
            (r["attributes"]["type"] for r in records if isinstance(r.get("attributes"), Mapping)),
            None,
        )
        if sobject:
            self.resolve_fields(sobject, fields)
        bulk.upload(self, job_id, records)
        try:
            bulk.set_state(self, job_id, "UploadComplete")
        except RemoteError:
            # A close retried after a lost answer finds the job closed already.
            info = bulk.job_info(self, job_id)
            if info is None or info.state == "Open":
                raise

    def finish_job(self, job_id: str, external_id_field: str) -> BulkOutcome | None:
        """Poll the job with backoff until it finished, then read its three result sets;
        None when Salesforce has no such job, or it never got its data (then aborted)."""
        info = bulk.wait(self, job_id)
        if info is None:
            return None
        if info.state == "Open":
            try:
                bulk.set_state(self, job_id, "Aborted")
            except RemoteError:
                # An abort retried after a lost answer finds the job aborted already.
                again = bulk.job_info(self, job_id)
                if again is not None and again.state == "Open":
                    raise
            return None
        found = bulk.outcome(self, job_id, external_id_field)
        error = info.error or f"Bulk API job {job_id} ended {info.state}"
        return BulkOutcome(
            found.results, found.unprocessed, None if info.state == "JobComplete" else error
        )

    def attach_file(self, customer_id: str, title: str, file_name: str, data: bytes) -> str:
        """Upload a Salesforce File (a ContentVersion) published to ``customer_id`` (an
        Account): one call; the ContentVersion Id (RejectedRecord when refused). Not retried
        after a broken connection: look for it with :meth:`files_on` first."""
        return push.create(
            self,
            "ContentVersion",
            {
                "Title": title,
                "PathOnClient": file_name,
                "VersionData": base64.b64encode(data).decode("ascii"),
                "FirstPublishLocationId": customer_id,
            },
        )

    def files_on(self, customer_ids: Sequence[str], since: datetime) -> list[AttachedFile]:
        """ContentVersions first published to any of ``customer_ids`` and created at or
        after ``since``; one query per 200 ids."""
        found: list[AttachedFile] = []
        ids = list(dict.fromkeys(customer_ids))
        for start in range(0, len(ids), 200):
            query = soql.select(
                "ContentVersion",
                ["Id", "Title", "PathOnClient", "FirstPublishLocationId"],
                where=soql.and_(
                    soql.in_("FirstPublishLocationId", ids[start : start + 200]),
                    soql.compare("CreatedDate", ">=", since),
                ),
            )
            for page in paging.query_pages(self, query):
                found.extend(
                    AttachedFile(
                        id=str(r["Id"]),
                        customer_id=_text(r.get("FirstPublishLocationId")),
                        title=_text(r.get("Title")) or "",
                        file_name=_text(r.get("PathOnClient")) or "",
                    )
                    for r in page
                )
        return found

    # -- discovery (`init --discover`, `check --online` hints) --------------------------------

    def discovery(self) -> SalesforceDiscovery:
        """Salesforce's side of discovery, on this connector (no call)."""
        from connectors.salesforce.discover import SalesforceDiscovery

        return SalesforceDiscovery(self)

    def describe_kind(self, kind: Kind) -> dict[str, Any]:
        """The describe of the object holding customers or cases."""
        return self.describe(_FIXED[kind])

    def sample(self, kind: Kind, fields: Sequence[str], limit: int) -> list[Record]:
        """Up to ``limit`` of the most recently changed customers or cases, with ``Id`` and
        ``fields`` (one query)."""
        query = soql.select(
            _FIXED[kind], ["Id", *fields], order_by=["LastModifiedDate DESC"], limit=limit
        )
        return next(iter(paging.query_pages(self, query)), [])

    def ids_present(self, kind: Kind, ids: Sequence[str]) -> list[str]:
        """Which of ``ids`` (at most 200) are customers or cases the user can see, as
        Salesforce writes them (one query)."""
        query = soql.select(_FIXED[kind], ["Id"], where=soql.in_("Id", list(ids)))
        return [str(r.get("Id")) for r in next(iter(paging.query_pages(self, query)), [])]

    def listed_objects(self) -> list[Mapping[str, Any]]:
        """The global describe's entries: every object the user can see (one call)."""
        listed = self.call("describe", lambda sf: sf.describe()) or {}
        return [e for e in listed.get("sobjects") or [] if isinstance(e, Mapping)]

    # -- Salesforce-level reads and writes (the connector tests drive them too) --------------

    def validate(self, objects: Mapping[str, Sequence[str]]) -> None:
        """Check objects and their fields against describe (one describe per object)."""
        for sobject, fields in objects.items():
            self.resolve_fields(sobject, fields)

    def limits(self) -> dict[str, Any]:
        """The org's limits (``GET /limits``), e.g. ``DailyApiRequests: {Max, Remaining}``."""
        return dict(self.call("read the org's limits", lambda sf: sf.limits()) or {})

    def query_pages(self, query: str, *, include_deleted: bool = False) -> Iterator[list[Record]]:
        """Pages of any SOQL query built with :mod:`connectors.soql`."""
        return paging.query_pages(self, query, include_deleted=include_deleted)

    def pull_accounts(
        self, cursor: ModstampCursor | None = None, fields: AccountFields | None = None
    ) -> Iterator[list[Record]]:
        """Accounts changed since ``cursor`` (all with None), in pages."""
        return pull.pull(self, "Account", (fields or AccountFields()).names(), cursor)

    def pull_cases(self, cursor: ModstampCursor | None = None) -> Iterator[list[Record]]:
        """Every case changed since ``cursor``, closed ones included (so a close is seen)."""
        return pull.pull(self, "Case", CASE_FIELDS, cursor)

    def pull_survey_responses(
        self,
        source: SurveySource,
        cursor: ModstampCursor | None = None,
        responded_since: datetime | None = None,
    ) -> Iterator[list[Record]]:
        """Survey responses changed since ``cursor``, optionally only those answered since
        ``responded_since`` (the satisfaction window)."""
        window = soql.compare(source.date_field, ">=", responded_since) if responded_since else None
        return pull.pull(self, source.sobject, source.names(), cursor, where=window)

    def deleted_ids(self, sobject: str, since: datetime) -> Iterator[list[str]]:
        """Ids of records of ``sobject`` deleted since ``since``, in pages."""
        return pull.deleted_ids(self, sobject, since)

    def create(self, sobject: str, record: Mapping[str, Any]) -> str:
        """Create one record; its Id (RejectedRecord when refused)."""
        return push.create(self, sobject, record)


#: The objects of the kinds whose object is not configured.
_FIXED: Final[dict[str, str]] = {"customer": kinds.CUSTOMER_OBJECT, "case": kinds.CASE_OBJECT}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _field_problem(wanted: CrmField, info: dict[str, Any] | None, names: list[str]) -> str | None:
    """What is wrong with one configured field (None when it is fine)."""
    if info is None:
        lowered = {n.lower(): n for n in names}
        close = difflib.get_close_matches(wanted.name.lower(), list(lowered), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(lowered[c] for c in close)}?)" if close else ""
        return (
            f"not found, or not visible to the integration user{hint}; fix {wanted.setting} "
            "in the config, or grant the user field-level access"
        )
    if wanted.write and not (info.get("createable") and info.get("updateable")):
        return (
            f"the integration user cannot write it (createable/updateable false); the sync "
            f"upserts it: grant edit access, or map another field in {wanted.setting}"
        )
    if wanted.external_id and not info.get("externalId"):
        return (
            "is not an External ID field; mark it External ID (and Unique) in Setup, or name "
            f"one that is in {wanted.setting}"
        )
    return None
