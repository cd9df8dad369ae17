"""The Salesforce connector the engine uses: plain records out, plain write requests in."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors import soql
from connectors.salesforce import changes, paging, pull, push
from connectors.salesforce.changes import ChangePage, ChangeQuery
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.pull import CASE_FIELDS, ModstampCursor, Record
from connectors.salesforce.push import UpsertResult


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
    """Pulls accounts, survey responses and cases; upserts report records."""

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

    def changes(self, queries: Sequence[ChangeQuery]) -> Iterator[ChangePage]:
        """Changes and deletions of several objects since their cursors; the first page of
        every object comes in one Composite call."""
        return changes.changes(self, queries)

    def deleted_ids(self, sobject: str, since: datetime) -> Iterator[list[str]]:
        """Ids of records of ``sobject`` deleted since ``since``, in pages."""
        return pull.deleted_ids(self, sobject, since)

    def upsert(
        self, sobject: str, external_id_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[UpsertResult]:
        """Upsert by external id in collections of 200; one result per record, in order."""
        return push.upsert(self, sobject, external_id_field, records)

    def create(self, sobject: str, record: Mapping[str, Any]) -> str:
        """Create one record; its Id (RejectedRecord when refused)."""
        return push.create(self, sobject, record)

    def attach_file(self, record_id: str, title: str, path_on_client: str, data: bytes) -> str:
        """Upload a Salesforce File (a ContentVersion) published to ``record_id`` (e.g. an
        Account): one call; the ContentVersion Id (RejectedRecord when refused). Not retried
        after a broken connection: look for it with :meth:`files_on` first."""
        return push.create(
            self,
            "ContentVersion",
            {
                "Title": title,
                "PathOnClient": path_on_client,
                "VersionData": base64.b64encode(data).decode("ascii"),
                "FirstPublishLocationId": record_id,
            },
        )

    def files_on(self, record_ids: Sequence[str], since: datetime) -> list[Record]:
        """ContentVersions first published to any of ``record_ids`` and created at or after
        ``since`` (Id, Title, PathOnClient, FirstPublishLocationId); one query per 200 ids."""
        found: list[Record] = []
        ids = list(dict.fromkeys(record_ids))
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
                found.extend(page)
        return found
