"""The HubSpot connector the engine uses: the CRM seam (:mod:`connectors.crm`) over
:class:`~connectors.hubspot.client.HubSpotClient`."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from connectors.calls import CallMeter
from connectors.crm import (
    CASE,
    CUSTOMER,
    REPORT,
    SURVEY,
    Allowance,
    AttachedFile,
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
from connectors.exceptions import AuthError, ConfigError, RemoteError
from connectors.hubspot import kinds, push
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.discover import HubSpotDiscovery
from connectors.hubspot.pull import OBJECT_ID, ModifiedCursor, ModifiedPull, Record, archived
from connectors.hubspot.search import PAGE_SIZE, list_pages
from connectors.hubspot.settings import SIDE, HubSpotSettings
from connectors.retry import RetryPolicy

#: Objects every portal has (addressed by name); anything else is looked up in schemas.
STANDARD = frozenset({"companies", "contacts", "tickets", "deals", "notes", "feedback_submissions"})


class HubSpotConnector(HubSpotClient):
    """The CRM seam for HubSpot (:class:`connectors.crm.CrmConnector`): companies, tickets
    and feedback submissions pulled, reports upserted, HTML reports attached as notes."""

    side: str = SIDE

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        meter: CallMeter | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            settings, meter=meter, transport=transport, retry=retry, sleep=sleep, clock=clock
        )
        self.wall = wall
        self._describes: dict[str, dict[str, Any]] = {}
        self._schemas: list[dict[str, Any]] | None = None
        self._restored_types: dict[str, str] = {}
        self._owners: dict[str, str] | None = None
        self._closed_stages: frozenset[str] | None = None

    # -- metadata -------------------------------------------------------------------------

    def objects(self, needs: Needs) -> list[CrmObject]:
        """The objects and properties ``needs`` uses (no call)."""
        return kinds.objects(needs, self.settings)

    def streams(self, needs: Needs) -> dict[Kind, str]:
        """The object each kind is read from and written to (no call)."""
        return kinds.streams(needs)

    def schemas(self) -> list[dict[str, Any]]:
        """The portal's custom object schemas (one call, then held); empty when the portal
        has none or the app may not read them (no Enterprise hub)."""
        if self._schemas is None:
            try:
                answer = self.call("read custom object schemas", "GET", "/crm/v3/schemas")
            except AuthError:
                answer = None
            except RemoteError as exc:
                if exc.status not in (403, 404):
                    raise
                answer = None
            self._schemas = [s for s in (answer or {}).get("results") or [] if isinstance(s, dict)]
        return self._schemas

    def object_type(self, name: str) -> str | None:
        """The type id HubSpot addresses ``name`` by (a standard name, or a custom object's
        ``objectTypeId``); None when the portal has no such object."""
        if name.lower() in STANDARD:
            return name.lower()
        wanted = name.lower()
        if wanted in self._restored_types:  # from an earlier run's cached properties
            return self._restored_types[wanted]
        for schema in self.schemas():
            labels = schema.get("labels") or {}
            names = {
                str(schema.get(k) or "").lower()
                for k in ("name", "objectTypeId", "fullyQualifiedName")
            } | {str(v).lower() for v in labels.values()}
            if wanted in names:
                return str(schema.get("objectTypeId"))
        return None

    def report_type(self, name: str) -> str:
        """Where reports named ``name`` go: its custom object, else ``companies``."""
        return self.object_type(name) or kinds.COMPANIES

    def one_report_per_customer(self, name: str) -> bool:
        """Reports to ``name`` go into company properties (the portal has no such custom
        object): one report a company, its main project's (:mod:`connectors.crm`)."""
        return self.report_type(name) == kinds.COMPANIES

    def describe(self, name: str) -> dict[str, Any]:
        """The properties of one object (``GET /crm/v3/properties/{type}``: one call, then
        held); ConfigError when the portal has no such object. The report object is
        described where reports go (:meth:`report_type`: without its custom object, the
        companies)."""
        report = self.settings.report_object
        is_report = report is not None and name.lower() == report.lower()
        type_id = self.report_type(name) if is_report else self.object_type(name)
        if type_id is None:
            known = sorted(str(s.get("name")) for s in self.schemas())
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"HubSpot has no object {name!r}{hint}; custom objects need an Enterprise "
                "hub and the scope crm.schemas.custom.read",
                side=SIDE,
            )
        if type_id not in self._describes:
            answer = self.call(
                f"read the properties of {name}", "GET", f"/crm/v3/properties/{type_id}"
            )
            self._describes[type_id] = {
                "object": type_id,
                "properties": (answer or {}).get("results") or [],
            }
        return self._describes[type_id]

    def restore_describe(self, name: str, describe: dict[str, Any]) -> None:
        """Hold properties cached from an earlier run instead of reading them; a custom
        object's type id comes with them, so a run that writes reports does not read the
        schemas again to find it."""
        type_id = str(describe.get("object") or name)
        self._describes[type_id] = dict(describe)
        if name.lower() not in STANDARD and describe.get("object"):
            self._restored_types[name.lower()] = type_id

    def check_object(self, target: CrmObject) -> list[FieldProblem]:
        """What is wrong with the configured properties of one object (the report kind is
        checked where reports go: the custom object, else companies)."""
        name = self.report_type(target.name) if target.kind == REPORT else target.name
        if (
            target.kind == REPORT
            and name == kinds.COMPANIES
            and target.name.lower() != kinds.COMPANIES
            and self.schemas()
        ):
            # The portal has custom objects, not this one: a misspelt name would send the
            # reports into company properties unseen.
            known = sorted(str(s.get("name")) for s in self.schemas())
            raise ConfigError(
                f"HubSpot has no custom object {target.name!r} (the portal's: "
                f'{", ".join(known)}); fix {target.setting}, or set it to "companies" to '
                "write the reports into company properties",
                side=SIDE,
            )
        fields = target.fields
        if target.kind == REPORT and name == kinds.COMPANIES:
            # Companies are written by their id: the company field is not a property there,
            # and the report's key is an ordinary one (one project per company).
            fields = tuple(
                CrmField(f.name, f.setting, f.write)
                for f in fields
                if f.name != self.settings.report_company_field
            )
        props = {str(p.get("name")).lower(): p for p in self.describe(name)["properties"]}
        problems = []
        for wanted in fields:
            info = props.get(wanted.name.lower())
            problem = _property_problem(wanted, info, [str(p.get("name")) for p in props.values()])
            if problem:
                problems.append(FieldProblem(wanted.name, problem))
        return problems

    def allowance(self) -> Allowance:
        """The portal's daily allowance (``/account-info/v3/api-usage/daily/private-apps``:
        one call), shared with its other apps."""
        try:
            answer = self.call(
                "read the daily API usage", "GET", "/account-info/v3/api-usage/daily/private-apps"
            )
        except (AuthError, RemoteError):
            if self.settings.auth != "oauth":
                raise
            # OAuth apps may not read the private-app usage: one cheap read proves the
            # sign-in, and HubSpot sends them no daily headers (so: not reported).
            self.call("read one company", "GET", "/crm/v3/objects/companies", params={"limit": 1})
            answer = None
        for item in (answer or {}).get("results") or []:
            limit, used = item.get("usageLimit"), item.get("currentUsage")
            if isinstance(limit, int) and isinstance(used, int):
                return Allowance(max(0, limit - used), limit, "the portal", str(item.get("name")))
        limits = self.limits
        return Allowance(
            limits.daily_remaining if limits else None,
            limits.daily if limits else None,
            "the portal",
            "X-HubSpot-RateLimit-Daily",
        )

    # -- the cycle ------------------------------------------------------------------------

    def changes(self, needs: Needs, reads: Sequence[Read]) -> Iterator[ChangePage]:
        """Changes, merges and deletions of each read since its cursor; ``ids`` reads are
        batch reads (ids not returned are gone)."""
        for read in reads:
            stream = kinds.streams(needs)[read.kind]
            if read.kind == REPORT:
                type_id = self.report_type(stream)
            else:
                type_id = self.object_type(stream) or stream
            props = kinds.properties(needs, read.kind, self.settings)
            if type_id == kinds.COMPANIES and read.kind == REPORT:
                props = tuple(p for p in props if p != self.settings.report_company_field)
            if read.ids is not None:
                yield from self._reread(needs, read.kind, stream, type_id, props, read.ids)
                continue
            cursor = ModifiedCursor.from_json(read.cursor) if read.cursor else None
            overlap = self.settings.overlap_seconds * 1000
            extra = kinds.filters(read.kind, self.settings)
            pull = ModifiedPull(self, type_id, props, cursor, overlap, extra)
            started_ms = int(self.wall() * 1000)
            last = cursor
            for page in pull:
                last = page.cursor or last
                if page.live or page.gone or page.unreadable:
                    live, unreadable = self._readable(needs, read.kind, page.live)
                    yield ChangePage(
                        read.kind,
                        stream,
                        live,
                        page.gone,
                        last.to_json() if last else None,
                        [*page.unreadable, *unreadable],
                    )
            now_ms = int(self.wall() * 1000)
            due = (
                last is None
                or last.deletes_read_ms is None
                or (now_ms - last.deletes_read_ms >= self.settings.deletes_every_seconds * 1000)
            )
            if due and read.kind != REPORT:
                gone: list[str]
                mark: int | None
                if read.first and cursor is None:
                    # Nothing stored to delete: the listing starts from this pull (less
                    # the overlap, for the clocks), not from every record ever archived.
                    gone, mark = [], started_ms - overlap
                else:
                    gone, mark = archived(self, type_id, last, now_ms)
                after = ModifiedCursor(
                    last.at_ms if last else 0, last.seen if last else frozenset(), mark, now_ms
                )
                yield ChangePage(read.kind, stream, [], gone, after.to_json())

    def _reread(
        self,
        needs: Needs,
        kind: Kind,
        stream: str,
        type_id: str,
        props: Sequence[str],
        ids: Sequence[str],
    ) -> Iterator[ChangePage]:
        for start in range(0, len(ids), PAGE_SIZE):
            chunk = list(ids[start : start + PAGE_SIZE])
            answer = self.call(
                f"read {len(chunk)} {stream}",
                "POST",
                f"/crm/v3/objects/{type_id}/batch/read",
                json={"properties": list(props), "inputs": [{"id": i} for i in chunk]},
            )
            found = [r for r in (answer or {}).get("results") or [] if isinstance(r, dict)]
            present = {str(r.get("id")) for r in found}
            live, unreadable = self._readable(needs, kind, found)
            yield ChangePage(
                kind, stream, live, [i for i in chunk if i not in present], None, unreadable
            )

    def _readable(
        self, needs: Needs, kind: Kind, raw: list[Record]
    ) -> tuple[list[CrmRecord], list[tuple[str, str]]]:
        """The records of a page the model can read, and the others with their reason
        (set aside by the pull, retried later: kinds.problem)."""
        live: list[CrmRecord] = []
        unreadable: list[tuple[str, str]] = []
        for record in self._records(needs, kind, raw):
            why = kinds.problem(needs, kind, record)
            if why is None:
                live.append(record)
            else:
                unreadable.append((record.id, why))
        return live, unreadable

    def _records(self, needs: Needs, kind: Kind, raw: list[Record]) -> list[CrmRecord]:
        if not raw:
            return []
        if kind == CUSTOMER:
            owners = self.owners()
            return [kinds.company(r, owners, needs) for r in raw]
        if kind == CASE:
            companies = self.associated(kinds.TICKETS, kinds.COMPANIES, [str(r["id"]) for r in raw])
            closed = self.closed_stages()
            return [
                kinds.ticket(r, companies.get(str(r["id"])), closed, self.settings) for r in raw
            ]
        if kind == SURVEY:
            survey_type = kinds.streams(needs)[SURVEY]
            contacts = self.associated(
                self.object_type(survey_type) or survey_type,
                kinds.CONTACTS,
                [str(r["id"]) for r in raw],
            )
            companies = self.associated(
                kinds.CONTACTS, kinds.COMPANIES, sorted(set(contacts.values()))
            )
            return [
                kinds.feedback(r, companies.get(contacts.get(str(r["id"]), "")), needs) for r in raw
            ]
        on_companies = self.report_type(kinds.streams(needs)[REPORT]) == kinds.COMPANIES
        company_field = self.settings.report_company_field if on_companies else None
        return [kinds.plain(r, company_field) for r in raw]

    def associated(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, str]:
        """Each id's associated record of ``to_type`` (its primary one, else the lowest id),
        by associations v4 batch reads of 100."""
        found: dict[str, str] = {}
        for start in range(0, len(ids), PAGE_SIZE):
            chunk = list(ids[start : start + PAGE_SIZE])
            if not chunk:
                continue
            answer = self.call(
                f"read {from_type} to {to_type} associations",
                "POST",
                f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                json={"inputs": [{"id": i} for i in chunk]},
            )
            for result in (answer or {}).get("results") or []:
                source = str((result.get("from") or {}).get("id"))
                targets = [t for t in result.get("to") or [] if isinstance(t, dict)]
                if not targets:
                    continue
                primary = [
                    t
                    for t in targets
                    if any(
                        str(a.get("label") or "").lower() == "primary"
                        for a in t.get("associationTypes") or []
                    )
                ]
                best = min(primary or targets, key=lambda t: int(str(t.get("toObjectId") or 0)))
                found[source] = str(best.get("toObjectId"))
        return found

    def owners(self) -> dict[str, str]:
        """Owner id -> name (``GET /crm/v3/owners``, read once per connector)."""
        if self._owners is None:
            owners: dict[str, str] = {}
            get = lambda params: self.call("read owners", "GET", "/crm/v3/owners", params=params)  # noqa: E731
            for page in list_pages(get, {}):
                for owner in page:
                    name = " ".join(
                        str(owner.get(k)) for k in ("firstName", "lastName") if owner.get(k)
                    )
                    owners[str(owner.get("id"))] = name or str(owner.get("email") or "")
            self._owners = owners
        return self._owners

    def closed_stages(self) -> frozenset[str]:
        """Ticket pipeline stages whose ``ticketState`` is CLOSED (one call, then held)."""
        if self._closed_stages is None:
            answer = self.call("read ticket pipelines", "GET", "/crm/v3/pipelines/tickets")
            self._closed_stages = frozenset(
                str(stage.get("id"))
                for pipeline in (answer or {}).get("results") or []
                for stage in pipeline.get("stages") or []
                if str((stage.get("metadata") or {}).get("ticketState") or "").upper() == "CLOSED"
            )
        return self._closed_stages

    def upsert(
        self, name: str, external_id_field: str, records: Sequence[Mapping[str, Any]]
    ) -> list[UpsertResult]:
        """Upsert by the unique property into the custom object ``name``, or, when the
        portal has none, into the companies' properties; one result per record, in order."""
        if not records:
            return []
        s = self.settings
        target = self.report_type(name)
        if target == kinds.COMPANIES:
            return push.update_companies(
                self, external_id_field, s.report_company_field, s.report_project_field, records
            )
        return push.upsert_custom(self, target, external_id_field, s.report_company_field, records)

    # -- discovery (`init --discover`, `check --online` hints and scopes) ---------------------

    def discovery(self) -> HubSpotDiscovery:
        """HubSpot's side of discovery, on this connector (no call)."""
        return HubSpotDiscovery(self)

    def attach_file(self, customer_id: str, title: str, file_name: str, data: bytes) -> str:
        """Upload the file and post it on the company as a note (two calls); the note id."""
        return push.attach_file(self, customer_id, title, file_name, data)

    def files_on(self, customer_ids: Sequence[str], since: datetime) -> list[AttachedFile]:
        """Notes with a file on any of ``customer_ids`` created at or after ``since``."""
        return push.files_on(self, customer_ids, since)


def _property_problem(
    wanted: CrmField, info: Mapping[str, Any] | None, names: list[str]
) -> str | None:
    if info is None:
        lowered = {n.lower(): n for n in names}
        close = difflib.get_close_matches(wanted.name.lower(), list(lowered), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(lowered[c] for c in close)}?)" if close else ""
        return (
            f"no such property{hint}; fix {wanted.setting} in the config, or create it in HubSpot"
        )
    readonly = bool((info.get("modificationMetadata") or {}).get("readOnlyValue"))
    if wanted.write and readonly:
        return (
            f"is read-only in HubSpot; the sync writes it: map another property in {wanted.setting}"
        )
    if wanted.external_id and not info.get("hasUniqueValue"):
        return (
            "is not a unique property (hasUniqueValue false); upserts need one: create the "
            f"property with unique values, or name one that is in {wanted.setting}"
        )
    return None


__all__ = ["OBJECT_ID", "HubSpotConnector"]
