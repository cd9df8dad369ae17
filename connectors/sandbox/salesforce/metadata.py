"""sObject metadata of the emulated org: objects, fields, their types, and describe payloads.

One table per object, declared as data; describe results, SOQL type checks and write
validation all read it, so a field exists (with one type) in one place only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from connectors.sandbox.schema import (
    SEGMENTS,
    SF_ACCOUNT_CSAT_FIELD,
    SF_ACCOUNT_PROJECT_KEY_FIELD,
    SF_ACCOUNT_SEGMENT_FIELD,
    SF_REPORT_EXTERNAL_ID,
    SF_REPORT_OBJECT,
    SF_SURVEY_OBJECT,
)

#: Field types treated as text (compared case-insensitively, quoted in SOQL).
TEXT_TYPES: Final = frozenset({"string", "picklist", "textarea", "url", "email", "phone"})
#: Field types holding a record Id.
ID_TYPES: Final = frozenset({"id", "reference"})
NUMBER_TYPES: Final = frozenset({"double", "percent", "int", "currency"})

_SOAP_TYPES: Final = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "picklist": "xsd:string",
    "textarea": "xsd:string",
    "url": "xsd:string",
    "email": "xsd:string",
    "phone": "xsd:string",
    "double": "xsd:double",
    "percent": "xsd:double",
    "currency": "xsd:double",
    "int": "xsd:int",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "base64": "xsd:base64Binary",
}

_ID_RE: Final = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_CHECKSUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character Id; None when it is not an Id."""
    if not _ID_RE.match(value):
        return None
    base = value[:15]
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, char in enumerate(base[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _CHECKSUM[bits]
    return base + suffix


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of an sObject, as describe reports it."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    auto_number: bool = False
    defaulted_on_create: bool = False
    precision: int = 0
    scale: int = 0

    @property
    def filterable(self) -> bool:
        """Long text areas and blobs cannot appear in WHERE (nor in ORDER BY)."""
        return self.type not in ("textarea", "base64") or (
            self.type == "textarea" and self.length <= 255
        )

    @property
    def custom(self) -> bool:
        """Custom fields end in ``__c``."""
        return self.name.endswith("__c")

    def describe(self) -> dict[str, Any]:
        """The field entry of an sObject describe."""
        return {
            "name": self.name,
            "label": self.label or self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "soapType": _SOAP_TYPES[self.type],
            "length": self.length,
            "byteLength": self.length * 3,
            "digits": 18 if self.type == "int" else 0,
            "precision": self.precision,
            "scale": self.scale,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "filterable": self.filterable,
            "sortable": self.filterable,
            "groupable": self.filterable and self.type not in NUMBER_TYPES,
            "unique": self.unique,
            "externalId": self.external_id,
            "idLookup": self.id_lookup or self.type == "id",
            "caseSensitive": False,
            "custom": self.custom,
            "calculated": False,
            "autoNumber": self.auto_number,
            "defaultedOnCreate": self.defaulted_on_create,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist
            ],
            "restrictedPicklist": self.restricted,
            "nameField": self.name == "Name",
            "deprecatedAndHidden": False,
        }


@dataclass(frozen=True)
class SObjectDef:
    """One sObject type: its fields (looked up case-insensitively) and key prefix."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: tuple[FieldDef, ...]
    createable: bool = True
    auto_number_format: str | None = None
    by_lower: dict[str, FieldDef] = field(init=False, repr=False, compare=False)
    by_relationship: dict[str, FieldDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_lower", {f.name.lower(): f for f in self.fields})
        object.__setattr__(
            self,
            "by_relationship",
            {f.relationship_name.lower(): f for f in self.fields if f.relationship_name},
        )

    @property
    def custom(self) -> bool:
        """Custom objects end in ``__c``."""
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldDef | None:
        """A field by API name, any case."""
        return self.by_lower.get(name.lower())

    def urls(self, version: str) -> dict[str, str]:
        """The ``urls`` block of describe results."""
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}

    def global_entry(self, version: str) -> dict[str, Any]:
        """The entry for this object in the global describe."""
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "createable": self.createable,
            "updateable": self.createable,
            "deletable": self.createable,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "layoutable": True,
            "replicateable": True,
            "triggerable": True,
            "undeletable": self.createable,
            "mergeable": False,
            "customSetting": False,
            "deprecatedAndHidden": False,
            "urls": self.urls(version),
        }

    def describe(self, version: str) -> dict[str, Any]:
        """The full describe of this object."""
        out = self.global_entry(version)
        out["fields"] = [f.describe() for f in self.fields]
        out["childRelationships"] = []
        out["recordTypeInfos"] = []
        return out


def _system_fields() -> tuple[FieldDef, ...]:
    def read_only(name: str, kind: str, label: str) -> FieldDef:
        return FieldDef(name, kind, label, createable=False, updateable=False, nillable=False)

    return (
        read_only("CreatedDate", "datetime", "Created Date"),
        read_only("LastModifiedDate", "datetime", "Last Modified Date"),
        read_only("SystemModstamp", "datetime", "System Modstamp"),
        read_only("IsDeleted", "boolean", "Deleted"),
    )


def _id(label: str) -> FieldDef:
    return FieldDef(
        "Id",
        "id",
        f"{label} ID",
        18,
        createable=False,
        updateable=False,
        nillable=False,
        defaulted_on_create=True,
    )


def _lookup(name: str, target: str, relationship: str, label: str = "") -> FieldDef:
    return FieldDef(
        name,
        "reference",
        label or f"{target} ID",
        18,
        reference_to=(target,),
        relationship_name=relationship,
    )


def _number(name: str, precision: int = 18, scale: int = 0, kind: str = "double") -> FieldDef:
    return FieldDef(name, kind, precision=precision, scale=scale)


USER = SObjectDef(
    "User",
    "User",
    "Users",
    "005",
    (
        _id("User"),
        FieldDef("Name", "string", "Full Name", 121, createable=False, updateable=False),
        FieldDef("Email", "email", "Email", 128, nillable=False),
        FieldDef("IsActive", "boolean", "Active", nillable=False, defaulted_on_create=True),
        *_system_fields(),
    ),
    createable=False,
)

ACCOUNT = SObjectDef(
    "Account",
    "Account",
    "Accounts",
    "001",
    (
        _id("Account"),
        FieldDef("Name", "string", "Account Name", 255, nillable=False),
        FieldDef(SF_ACCOUNT_SEGMENT_FIELD, "picklist", "Segment", 255, picklist=SEGMENTS),
        _number(SF_ACCOUNT_CSAT_FIELD, 3, 1),
        FieldDef(SF_ACCOUNT_PROJECT_KEY_FIELD, "string", "Jira Project Key", 80),
        _lookup("OwnerId", "User", "Owner", "Owner ID"),
        FieldDef("Website", "url", "Website", 255),
        # Set by a merge on the records merged away (deleted): the surviving Account.
        FieldDef(
            "MasterRecordId",
            "reference",
            "Master Record ID",
            18,
            createable=False,
            updateable=False,
            reference_to=("Account",),
            relationship_name="MasterRecord",
        ),
        *_system_fields(),
    ),
)

CASE = SObjectDef(
    "Case",
    "Case",
    "Cases",
    "500",
    (
        _id("Case"),
        FieldDef(
            "CaseNumber",
            "string",
            "Case Number",
            30,
            createable=False,
            updateable=False,
            nillable=False,
            auto_number=True,
            defaulted_on_create=True,
        ),
        _lookup("AccountId", "Account", "Account", "Account ID"),
        FieldDef("Subject", "string", "Subject", 255),
        FieldDef(
            "Status",
            "picklist",
            "Status",
            255,
            picklist=("New", "Working", "Escalated", "Closed"),
            defaulted_on_create=True,
        ),
        FieldDef(
            "IsClosed",
            "boolean",
            "Closed",
            createable=False,
            updateable=False,
            nillable=False,
            defaulted_on_create=True,
        ),
        FieldDef("IsEscalated", "boolean", "Escalated", nillable=False, defaulted_on_create=True),
        FieldDef("Priority", "picklist", "Priority", 255, picklist=("High", "Medium", "Low")),
        *_system_fields(),
    ),
    auto_number_format="{0:08d}",
)

SURVEY = SObjectDef(
    SF_SURVEY_OBJECT,
    "Survey Response",
    "Survey Responses",
    "a01",
    (
        _id("Survey Response"),
        FieldDef(
            "Name",
            "string",
            "Survey Response Name",
            80,
            createable=False,
            updateable=False,
            nillable=False,
            auto_number=True,
            defaulted_on_create=True,
        ),
        _lookup("Account__c", "Account", "Account__r", "Account"),
        _number("Score__c", 2, 0),
        FieldDef("Responded_At__c", "datetime", "Responded At"),
        *_system_fields(),
    ),
    auto_number_format="SR-{0:06d}",
)

HEALTH_VALUES: Final = ("Green", "Amber", "Red")

REPORT = SObjectDef(
    SF_REPORT_OBJECT,
    "Jira Project Status",
    "Jira Project Statuses",
    "a02",
    (
        _id("Jira Project Status"),
        # A custom object's text Name defaults to the record Id when not given.
        FieldDef(
            "Name",
            "string",
            "Jira Project Status Name",
            80,
            nillable=False,
            defaulted_on_create=True,
        ),
        FieldDef(
            SF_REPORT_EXTERNAL_ID,
            "string",
            "Jira Sync Key",
            255,
            external_id=True,
            unique=True,
            id_lookup=True,
        ),
        _lookup("Account__c", "Account", "Account__r", "Account"),
        FieldDef(SF_ACCOUNT_PROJECT_KEY_FIELD, "string", "Jira Project Key", 80),
        _number("Issues_Total__c"),
        _number("Issues_Done__c"),
        _number("Issues_In_Progress__c"),
        _number("Issues_To_Do__c"),
        _number("Issues_Overdue__c"),
        _number("Percent_Complete__c", 5, 2, "percent"),
        FieldDef("Health__c", "picklist", "Health", 255, picklist=HEALTH_VALUES, restricted=True),
        FieldDef("Health_Reasons__c", "textarea", "Health Reasons", 1000),
        FieldDef("Next_Milestone__c", "string", "Next Milestone", 255),
        FieldDef("Next_Milestone_Date__c", "date", "Next Milestone Date"),
        FieldDef("Forecast_Date__c", "date", "Forecast Date"),
        FieldDef("Summary__c", "textarea", "Summary", 32000),
        FieldDef("Last_Synced__c", "datetime", "Last Synced"),
        *_system_fields(),
    ),
)

CONTENT_VERSION = SObjectDef(
    "ContentVersion",
    "Content Version",
    "Content Versions",
    "068",
    (
        _id("Content Version"),
        FieldDef("Title", "string", "Title", 255, nillable=False, defaulted_on_create=True),
        FieldDef("PathOnClient", "string", "Path On Client", 500, updateable=False, nillable=False),
        FieldDef(
            "VersionData", "base64", "Version Data", 52428800, updateable=False, nillable=False
        ),
        FieldDef(
            "FirstPublishLocationId",
            "reference",
            "First Publish Location ID",
            18,
            updateable=False,
            reference_to=("Account", SF_REPORT_OBJECT),
            relationship_name="FirstPublishLocation",
        ),
        FieldDef(
            "ContentDocumentId",
            "reference",
            "Content Document ID",
            18,
            createable=False,
            updateable=False,
            reference_to=("ContentDocument",),
            relationship_name="ContentDocument",
        ),
        *_system_fields(),
    ),
)

SOBJECTS: Final[tuple[SObjectDef, ...]] = (ACCOUNT, CASE, USER, SURVEY, REPORT, CONTENT_VERSION)
#: Objects by lower-case API name.
BY_NAME: Final = {o.name.lower(): o for o in SOBJECTS}
#: Objects by Id key prefix (ContentDocument Ids have no object of their own here).
BY_PREFIX: Final = {o.key_prefix: o for o in SOBJECTS}


def sobject(name: str) -> SObjectDef | None:
    """An sObject by API name, any case."""
    return BY_NAME.get(name.lower())
