"""The HubSpot emulator's backend: the portal's records, associations, search index,
tokens, scopes and limits. No HTTP here: ``responses.py`` turns requests into calls of
these methods and their answers into JSON."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from connectors.sandbox.http import Router
from connectors.sandbox.hubspot.gate import PortalGate
from connectors.sandbox.hubspot.schema import (
    CUSTOM_FQN,
    CUSTOM_NAME,
    CUSTOM_TYPE_ID,
    STANDARD_TYPES,
    Prop,
    Schema,
)
from connectors.sandbox.hubspot.values import iso, stored
from connectors.sandbox.world import World

DEFAULT_PRIVATE_APP_TOKEN: Final = "pat-na1-sandbox-static-token"
DEFAULT_CLIENT_ID: Final = "sandbox-client-id"
DEFAULT_CLIENT_SECRET: Final = "sandbox-client-secret"
DEFAULT_REFRESH_TOKEN: Final = "na1-sandbox-refresh-token"
PORTAL_ID: Final = 4400100
BATCH_LIMIT: Final = 100
#: Every scope the demo apps are granted (a test removes some through the control API).
ALL_SCOPES: Final = frozenset(
    {
        "crm.objects.companies.read",
        "crm.objects.companies.write",
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "tickets",
        "crm.objects.feedback_submissions.read",
        "crm.objects.custom.read",
        "crm.objects.custom.write",
        "crm.schemas.custom.read",
        "crm.objects.owners.read",
        "files",
    }
)


@dataclass
class HsRecord:
    """One record: its current properties and what the search index holds of it."""

    id: str
    type_id: str
    properties: dict[str, str | None]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None
    merged_into: str | None = None
    #: (visible from, snapshot or None when removed): search sees the last one visible.
    index: list[tuple[int, dict[str, str | None] | None]] = field(default_factory=list)

    def as_json(self, names: list[str] | None) -> dict[str, Any]:
        """The record as HubSpot answers it, with the properties asked for (defaults)."""
        wanted = (
            names if names is not None else ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]
        )
        base = ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]
        props = {n: self.properties.get(n) for n in dict.fromkeys([*wanted, *base])}
        doc: dict[str, Any] = {
            "id": self.id,
            "properties": props,
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.updated_ms),
            "archived": self.archived_ms is not None,
        }
        if self.archived_ms is not None:
            doc["archivedAt"] = iso(self.archived_ms)
        return doc


@dataclass
class Rejection:
    """A test hook standing in for a portal's validation: refuse a write when it holds."""

    type_id: str
    predicate: Callable[[dict[str, str | None]], bool]
    message: str


class HubSpotBackend(PortalGate):
    """The emulated portal, loaded from a :class:`World`."""

    max_uri_bytes = 8_192

    def __init__(
        self,
        world: World,
        *,
        private_app_token: str = DEFAULT_PRIVATE_APP_TOKEN,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        refresh_token: str = DEFAULT_REFRESH_TOKEN,
        enterprise: bool = True,
        burst_limit: int = 190,
        daily_limit: int = 500_000,
        search_per_second: int = 5,
        index_lag_ms: int = 0,
        token_lifetime_s: int = 1800,
        clock: Callable[[], float] | None = None,
    ) -> None:
        from connectors.sandbox.hubspot.urls import register_routes

        self.world = world
        self.private_app_token = private_app_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.enterprise = enterprise
        self.burst_limit = burst_limit
        self.daily_limit = daily_limit
        self.search_per_second = search_per_second
        self.index_lag_ms = index_lag_ms
        self.token_lifetime_s = token_lifetime_s
        #: Seconds since the epoch (a test shares a fake one with the client it drives).
        self.clock: Callable[[], float] = clock or time.time
        self.router = Router()
        self.rejections: list[Rejection] = []
        register_routes(self)
        self.reset()

    # -- world ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Restore the seeded portal, tokens, scopes and counters."""
        from connectors.sandbox.hubspot.seed import load

        self.schema = Schema.default()
        self.records: dict[str, dict[str, HsRecord]] = {t: {} for t in self.schema.props}
        self.associations: dict[tuple[str, str], dict[str, dict[str, str]]] = defaultdict(dict)
        self.owners: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self._next_id = 1000
        self.scopes = set(ALL_SCOPES)
        self.oauth_tokens: dict[str, float] = {}  # token -> expires at (epoch seconds)
        self.token_grants = 0
        self.daily_used = 0
        self.burst_calls: deque[int] = deque()
        self.search_calls: deque[int] = deque()
        self.rejections.clear()
        #: Bumped by every change, resets included (search answers are cached per version).
        self.version = getattr(self, "version", 0) + 1
        self._visible_until = 0
        load(self, self.world)

    def visibility_key(self) -> int | None:
        """None once every change is searchable, else now (search depends on the time)."""
        now = self.now_ms()
        return None if now >= self._visible_until else now

    def _changed(self, visible_from: int) -> None:
        self.version += 1
        self._visible_until = max(self._visible_until, visible_from)

    def new_id(self) -> str:
        """The next record id (numeric, as HubSpot's are)."""
        self._next_id += 1
        return str(self._next_id)

    def type_id(self, name: str) -> str | None:
        """The object type id of a name HubSpot accepts (None: no such object)."""
        lowered = name.lower()
        if lowered in STANDARD_TYPES:
            return STANDARD_TYPES[lowered]
        if lowered in STANDARD_TYPES.values():
            return lowered
        if self.enterprise and lowered in (CUSTOM_TYPE_ID, CUSTOM_NAME, CUSTOM_FQN):
            return CUSTOM_TYPE_ID
        return None

    def props(self, type_id: str) -> dict[str, Prop]:
        """The property definitions of a type."""
        return self.schema.props[type_id]

    # -- writes ---------------------------------------------------------------------------

    def validate(
        self, type_id: str, values: dict[str, Any], creating: bool
    ) -> tuple[dict[str, str | None], list[dict[str, Any]]]:
        """The values as stored, and HubSpot's per-property errors."""
        props = self.props(type_id)
        out: dict[str, str | None] = {}
        problems: list[dict[str, Any]] = []
        for name, raw in values.items():
            prop = props.get(name)
            if prop is None:
                problems.append(
                    {
                        "isValid": False,
                        "message": f'Property "{name}" does not exist',
                        "error": "PROPERTY_DOESNT_EXIST",
                        "name": name,
                    }
                )
                continue
            if prop.read_only:
                problems.append(
                    {
                        "isValid": False,
                        "message": f'"{name}" is a read only property; its value cannot be set.',
                        "error": "READ_ONLY_VALUE",
                        "name": name,
                    }
                )
                continue
            value, problem = stored(prop, raw)
            if problem:
                problems.append(
                    {"isValid": False, "message": problem, "error": "INVALID_VALUE", "name": name}
                )
            else:
                out[name] = value
        return out, problems

    def write(
        self, type_id: str, record: HsRecord | None, values: dict[str, str | None]
    ) -> HsRecord:
        """Apply validated values: create when ``record`` is None; the search index sees the
        change ``index_lag_ms`` later."""
        now = self.now_ms()
        if record is None:
            rid = self.new_id()
            record = HsRecord(
                rid, type_id, {"hs_object_id": rid, "hs_createdate": iso(now)}, now, now
            )
            self.records[type_id][rid] = record
        record.properties.update(values)
        record.updated_ms = now
        record.properties["hs_lastmodifieddate"] = iso(now)
        record.index.append((now + self.index_lag_ms, dict(record.properties)))
        self._changed(now + self.index_lag_ms)
        return record

    def rejected(self, type_id: str, values: dict[str, str | None]) -> str | None:
        """The message of a test rejection that holds for these values."""
        for rule in self.rejections:
            if rule.type_id == type_id and rule.predicate(values):
                return rule.message
        return None

    def archive(self, record: HsRecord) -> None:
        """Archive (delete) a record: gone from lists and, after the lag, from search."""
        now = self.now_ms()
        record.archived_ms = now
        record.index.append((now + self.index_lag_ms, None))
        self._changed(now + self.index_lag_ms)

    def merge(self, type_id: str, primary: HsRecord, merged: HsRecord) -> HsRecord:
        """Merge ``merged`` into ``primary``: its associations move, its id is recorded in
        ``hs_merged_object_ids``; the merged record no longer exists on its own."""
        for (from_type, to_type), table in list(self.associations.items()):
            if from_type == type_id and merged.id in table:
                for to_id, label in table.pop(merged.id).items():
                    self.associate(type_id, primary.id, to_type, to_id, label)
        ids = [i for i in (primary.properties.get("hs_merged_object_ids") or "").split(";") if i]
        ids += [
            merged.id,
            *[i for i in (merged.properties.get("hs_merged_object_ids") or "").split(";") if i],
        ]
        merged.merged_into = primary.id
        now = self.now_ms()
        merged.index.append((now + self.index_lag_ms, None))
        self._changed(now + self.index_lag_ms)
        primary.properties["hs_merged_object_ids"] = ";".join(ids)
        return self.write(type_id, primary, {})

    def live(self, type_id: str, rid: str) -> HsRecord | None:
        """A record by id, following merges; None when missing or archived."""
        record = self.records.get(type_id, {}).get(rid)
        seen = 0
        while record is not None and record.merged_into is not None and seen < 10:
            record = self.records[type_id].get(record.merged_into)
            seen += 1
        if record is None or record.archived_ms is not None:
            return None
        return record

    def by_unique(self, type_id: str, prop: str, value: str) -> HsRecord | None:
        """The live record whose unique ``prop`` is ``value``."""
        for record in self.records[type_id].values():
            if (
                record.archived_ms is None
                and record.merged_into is None
                and record.properties.get(prop) == value
            ):
                return record
        return None

    # -- associations ---------------------------------------------------------------------

    def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, label: str | None = None
    ) -> None:
        """Associate both ways (labels: "Primary" or None)."""
        self.associations[(from_type, to_type)].setdefault(from_id, {})[to_id] = label or ""
        self.associations[(to_type, from_type)].setdefault(to_id, {})[from_id] = label or ""
        self.version += 1

    def associated(self, from_type: str, from_id: str, to_type: str) -> dict[str, str]:
        """The live records of ``to_type`` associated to one record, with labels."""
        table = self.associations.get((from_type, to_type), {})
        return {
            t: lab for t, lab in table.get(from_id, {}).items() if self.live(to_type, t) is not None
        }

    # -- search index ---------------------------------------------------------------------

    def searchable(
        self, type_id: str, with_associations: bool = False
    ) -> list[tuple[str, dict[str, Any], dict[str, set[str]]]]:
        """What search sees now: each record's last indexed snapshot (eventual
        consistency), with its associations by singular name when a filter needs them."""
        now = self.now_ms()
        rows = []
        for record in self.records[type_id].values():
            snapshot: dict[str, str | None] | None = None
            for visible, snap in reversed(record.index):
                if visible <= now:
                    snapshot = snap
                    break
            if snapshot is None:
                continue
            assoc: dict[str, set[str]] = {}
            if with_associations:
                for (from_type, to_type), table in self.associations.items():
                    if from_type == type_id and record.id in table:
                        name = next((n for n, t in STANDARD_TYPES.items() if t == to_type), to_type)
                        singular = "company" if name == "companies" else name.rstrip("s")
                        assoc[singular] = set(table[record.id])
            rows.append((record.id, snapshot, assoc))
        return rows
