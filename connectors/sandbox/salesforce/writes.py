"""Record writes as Salesforce validates them: field access, types, required fields,
references, uniqueness, validation rules; then the system fields every write sets.

Mixed into :class:`~connectors.sandbox.salesforce.models.SalesforceBackend`. Every method
raises :class:`FieldValueError` (code, message, fields, HTTP status) for a rejected record.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from connectors.sandbox.salesforce.metadata import BY_NAME, FieldDef, SObjectDef, normalize_id
from connectors.sandbox.salesforce.values import FieldValueError, from_json

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.models import ValidationRule
    from connectors.sandbox.salesforce.store import RecordStore

Record = dict[str, Any]
_TIMESTAMPS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")


class MultipleMatches(Exception):
    """An upsert or lookup by external id matched several records (HTTP 300)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"{len(ids)} records match")
        self.ids = ids


class WriteMixin:
    """Validated inserts, updates, upserts and deletes over ``self.store``."""

    store: RecordStore
    rules: dict[str, list[ValidationRule]]
    user_id: str

    def now(self) -> datetime:  # pragma: no cover - provided by the backend
        raise NotImplementedError

    def new_id(self, obj: SObjectDef | str) -> str:  # pragma: no cover - provided by the backend
        raise NotImplementedError

    def next_number(self, key: str) -> int:  # pragma: no cover - provided by the backend
        raise NotImplementedError

    # -- reading what a write targets -------------------------------------------------------

    def live_record(self, obj: SObjectDef | None, record_id: Any) -> tuple[SObjectDef, Record]:
        """The live record behind ``record_id`` (of type ``obj`` when given)."""
        label = f"{obj.name} ID" if obj else "ID"
        normalized = normalize_id(record_id) if isinstance(record_id, str) else None
        if normalized is None:
            raise FieldValueError(
                "MALFORMED_ID", f"{label}: id value of incorrect type: {record_id}", ["Id"]
            )
        found = self.store.get(normalized)
        if found is None or (obj is not None and found[0] is not obj):
            raise FieldValueError("NOT_FOUND", "The requested resource does not exist", status=404)
        if found[1].get("IsDeleted"):
            raise FieldValueError("ENTITY_IS_DELETED", "entity is deleted", status=404)
        return found

    def external_field(self, obj: SObjectDef, name: str) -> FieldDef:
        """The external-id field (or ``Id``) an upsert matches on; 404 otherwise."""
        fdef = obj.field(name)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise FieldValueError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
                status=404,
            )
        return fdef

    def match_external(self, obj: SObjectDef, fdef: FieldDef, value: str) -> list[str]:
        """Ids of live records whose ``fdef`` equals ``value``."""
        if fdef.name == "Id":
            normalized = normalize_id(value)
            live = self.store.live(normalized) if normalized else None
            return [normalized] if live is not None and normalized else []
        return sorted(self.store.find_unique(obj, fdef.name, value))

    # -- payloads ---------------------------------------------------------------------------

    def prepare(
        self, obj: SObjectDef, payload: Any, creating: bool, skip: tuple[str, ...] = ()
    ) -> Record:
        """A JSON record body as typed values; ``skip`` names fields handled by the caller."""
        if not isinstance(payload, dict):
            raise FieldValueError("JSON_PARSER_ERROR", "The record must be a JSON object")
        values: Record = {}
        denied: list[str] = []
        for key, raw in payload.items():
            if key == "attributes" or key in skip:
                continue
            fdef = obj.field(key)
            if fdef is None:
                raise FieldValueError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
                )
            if fdef.name == "Id" and not creating:
                continue
            if not (fdef.createable if creating else fdef.updateable):
                denied.append(fdef.name)
                continue
            values[fdef.name] = from_json(fdef, raw)
        if denied:
            raise FieldValueError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(denied)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                denied,
            )
        for name, value in values.items():
            fdef = obj.by_lower[name.lower()]
            if fdef.type == "reference" and value is not None:
                self._check_reference(fdef, value)
        return values

    def _check_reference(self, fdef: FieldDef, value: str) -> None:
        targets = [BY_NAME[t.lower()] for t in fdef.reference_to if t.lower() in BY_NAME]
        if targets and value[:3] not in {t.key_prefix for t in targets}:
            raise FieldValueError(
                "MALFORMED_ID", f"{fdef.label}: id value of incorrect type: {value}", [fdef.name]
            )
        if self.store.live(value) is None:
            raise FieldValueError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name]
            )

    # -- writes -----------------------------------------------------------------------------

    def insert(self, obj: SObjectDef, values: Record, trusted: bool = False) -> str:
        """Create a record; ``trusted`` (test helpers) skips required, unique and rule checks."""
        now = self.now()
        record: Record = {f.name: None for f in obj.fields}
        record.update(values)
        if not trusted or not record.get("Id"):
            record["Id"] = self.new_id(obj)
        for name in _TIMESTAMPS:
            if record.get(name) is None:
                record[name] = now
        record["IsDeleted"] = bool(record.get("IsDeleted")) if trusted else False
        self._defaults(obj, record)
        if not trusted:
            self._check_required(obj, record, list(record))
            self._check_unique(obj, record)
            self._check_rules(obj, record)
        self.store.put(obj, record)
        return str(record["Id"])

    def modify(self, obj: SObjectDef, record_id: str, values: Record, trusted: bool = False) -> str:
        """Update a live record; sets ``LastModifiedDate``/``SystemModstamp`` to now."""
        _, existing = self.live_record(obj, record_id)
        record = dict(existing)
        record.update(values)
        if obj.name == "Case" and "Status" in values and "IsClosed" not in values:
            record["IsClosed"] = values["Status"] == "Closed"
        now = self.now()
        if not (trusted and "SystemModstamp" in values):
            record["SystemModstamp"] = now
        if not (trusted and "LastModifiedDate" in values):
            record["LastModifiedDate"] = now
        self._defaults(obj, record)
        if not trusted:
            self._check_required(obj, record, list(values))
            self._check_unique(obj, record)
            self._check_rules(obj, record)
        self.store.put(obj, record)
        return str(record["Id"])

    def upsert(
        self, obj: SObjectDef, fdef: FieldDef, value: str, values: Record
    ) -> tuple[str, bool]:
        """Update the record whose ``fdef`` is ``value``, or create it; (Id, created)."""
        ids = self.match_external(obj, fdef, value)
        if len(ids) > 1:
            raise MultipleMatches(ids)
        if ids:
            return self.modify(obj, ids[0], values), False
        if fdef.name == "Id":
            raise FieldValueError("NOT_FOUND", "The requested resource does not exist", status=404)
        return self.insert(obj, {**values, fdef.name: value}), True

    def remove(self, obj: SObjectDef | None, record_id: str) -> str:
        """Move a record to the recycle bin."""
        found_obj, existing = self.live_record(obj, record_id)
        record = dict(existing)
        record["IsDeleted"] = True
        record["SystemModstamp"] = record["LastModifiedDate"] = self.now()
        self.store.put(found_obj, record)
        return str(record["Id"])

    # -- checks -----------------------------------------------------------------------------

    def _defaults(self, obj: SObjectDef, record: Record) -> None:
        for fdef in obj.fields:
            if record.get(fdef.name) is not None:
                continue
            if fdef.auto_number and obj.auto_number_format:
                record[fdef.name] = obj.auto_number_format.format(self.next_number(obj.name))
            elif fdef.type == "boolean":
                record[fdef.name] = fdef.name == "IsActive"
        if obj.name == "Case":
            record["Status"] = record.get("Status") or "New"
            if record.get("IsClosed") is None:
                record["IsClosed"] = record["Status"] == "Closed"
        elif obj.name == "Account" and record.get("OwnerId") is None:
            record["OwnerId"] = self.user_id
        elif obj.name == "ContentVersion":
            if record.get("Title") is None and record.get("PathOnClient"):
                record["Title"] = PurePosixPath(str(record["PathOnClient"])).stem
            if record.get("ContentDocumentId") is None:
                record["ContentDocumentId"] = self.new_id("069")
        elif obj.custom and obj.field("Name") and record.get("Name") is None:
            # A custom object's text Name defaults to the record's Id.
            record["Name"] = record["Id"]

    def _check_required(self, obj: SObjectDef, record: Record, touched: list[str]) -> None:
        missing = [
            f.name
            for f in obj.fields
            if f.name in touched
            and not f.nillable
            and (f.createable or f.updateable)
            and record.get(f.name) is None
        ]
        if missing:
            raise FieldValueError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )

    def _check_unique(self, obj: SObjectDef, record: Record) -> None:
        for (name, field), _ in self.store.unique.items():
            value = record.get(field)
            if name != obj.name or value is None:
                continue
            others = self.store.find_unique(obj, field, str(value)) - {record["Id"]}
            if others:
                raise FieldValueError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {field} duplicates value on record with id: "
                    f"{sorted(others)[0]}",
                    [field],
                )

    def _check_rules(self, obj: SObjectDef, record: Record) -> None:
        for rule in self.rules.get(obj.name, []):
            if rule.predicate(dict(record)):
                raise FieldValueError("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [])
