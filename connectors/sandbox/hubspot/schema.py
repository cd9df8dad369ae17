"""The portal's objects and their properties (what ``/crm/v3/properties`` and
``/crm/v3/schemas`` answer), fixed like the other emulators' schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from connectors.sandbox.schema import SEGMENTS

#: Object type ids by the names HubSpot accepts for them.
STANDARD_TYPES: Final = {
    "contacts": "0-1",
    "companies": "0-2",
    "notes": "0-4",
    "tickets": "0-5",
    "feedback_submissions": "0-19",
}
CUSTOM_TYPE_ID: Final = "2-1001"
CUSTOM_NAME: Final = "jira_project_status"
CUSTOM_FQN: Final = "p1001_jira_project_status"
HEALTH: Final = ("Green", "Amber", "Red")
CUSTOMER_GROUPS: Final = SEGMENTS
OPEN_STAGES: Final = ("1", "2", "3")  # New, Waiting on contact, Waiting on us
CLOSED_STAGE: Final = "4"


@dataclass(frozen=True)
class Prop:
    """One property definition."""

    name: str
    type: str = "string"  # string, number, datetime, date, enumeration, bool
    field_type: str = "text"
    options: tuple[str, ...] = ()
    unique: bool = False
    read_only: bool = False
    label: str = ""
    #: Made by the portal's admin (HubSpot's own properties are ``hubspotDefined``).
    custom: bool = False

    def as_json(self, object_type: str) -> dict[str, Any]:
        """As ``GET /crm/v3/properties/{type}`` lists it."""
        return {
            "name": self.name,
            "label": self.label or self.name.replace("_", " ").title(),
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": f"{object_type}information",
            "options": [
                {"label": o, "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(self.options)
            ],
            "hasUniqueValue": self.unique,
            "hubspotDefined": not self.custom,
            "hidden": False,
            "formField": not self.read_only,
            "calculated": False,
            "externalOptions": False,
            "modificationMetadata": {
                "archivable": not self.read_only,
                "readOnlyDefinition": self.read_only,
                "readOnlyValue": self.read_only,
            },
        }


_COMMON: Final = (
    Prop("hs_object_id", "number", "number", read_only=True, label="Record ID"),
    Prop("hs_createdate", "datetime", "date", read_only=True, label="Create Date"),
    Prop("hs_lastmodifieddate", "datetime", "date", read_only=True, label="Last Modified Date"),
    Prop("hs_merged_object_ids", "enumeration", "checkbox", read_only=True),
)
_REPORT: Final = (
    Prop("jira_sync_key", unique=True, label="Jira Sync Key", custom=True),
    Prop("company_id", label="Company ID", custom=True),
    Prop("jira_project_key", custom=True),
    Prop("issues_total", "number", "number", custom=True),
    Prop("issues_done", "number", "number", custom=True),
    Prop("issues_in_progress", "number", "number", custom=True),
    Prop("issues_to_do", "number", "number", custom=True),
    Prop("issues_overdue", "number", "number", custom=True),
    Prop("percent_complete", "number", "number", custom=True),
    Prop("health", "enumeration", "select", HEALTH, custom=True),
    Prop("health_reasons", field_type="textarea", custom=True),
    Prop("next_milestone", custom=True),
    Prop("next_milestone_date", "date", "date", custom=True),
    Prop("forecast_date", "date", "date", custom=True),
    Prop("summary", field_type="textarea", custom=True),
    Prop("last_synced", "datetime", "date", custom=True),
)


def _company_report() -> tuple[Prop, ...]:
    # Without a custom object the reports go into company properties; on companies the
    # sync key is an ordinary property (one company carries one project's report).
    return tuple(
        Prop(p.name, p.type, p.field_type, p.options, False, p.read_only, p.label, True)
        for p in _REPORT
        if p.name != "company_id"
    )


@dataclass
class Schema:
    """The portal's properties by object type id."""

    props: dict[str, dict[str, Prop]] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Schema:
        """The demo portal's schema."""
        by_type: dict[str, tuple[Prop, ...]] = {
            "0-2": (
                Prop("name", label="Company name"),
                Prop("domain"),
                Prop("hubspot_owner_id", "enumeration", "select", label="Company owner"),
                Prop("customer_group", "enumeration", "select", CUSTOMER_GROUPS, custom=True),
                Prop("csat_score", "number", "number", label="CSAT score", custom=True),
                Prop("jira_project_keys", label="Jira project keys", custom=True),
                *_company_report(),
            ),
            "0-1": (Prop("firstname"), Prop("lastname"), Prop("email", unique=False)),
            "0-5": (
                Prop("subject"),
                Prop("content", field_type="textarea"),
                Prop("hs_pipeline", "enumeration", "select", ("0",)),
                Prop("hs_pipeline_stage", "enumeration", "select", (*OPEN_STAGES, CLOSED_STAGE)),
                Prop(
                    "hs_ticket_priority",
                    "enumeration",
                    "select",
                    ("LOW", "MEDIUM", "HIGH", "URGENT"),
                ),
                Prop("escalated", "bool", "booleancheckbox", custom=True),
            ),
            "0-19": (
                Prop(
                    "hs_survey_type",
                    "enumeration",
                    "select",
                    ("NPS", "CSAT", "CES"),
                    read_only=True,
                ),
                Prop(
                    "hs_response_value", "number", "number", read_only=True, label="Response value"
                ),
                Prop("hs_submission_timestamp", "datetime", "date", read_only=True),
                Prop("hs_survey_name", read_only=True),
            ),
            "0-4": (
                Prop("hs_note_body", field_type="html"),
                Prop("hs_timestamp", "datetime", "date"),
                Prop("hs_attachment_ids", "enumeration", "checkbox"),
            ),
            CUSTOM_TYPE_ID: _REPORT,
        }
        return cls({t: {p.name: p for p in (*_COMMON, *ps)} for t, ps in by_type.items()})


def custom_schema_json() -> dict[str, Any]:
    """The custom object "Jira Project Status" as ``GET /crm/v3/schemas`` lists it."""
    return {
        "id": "1001",
        "name": CUSTOM_NAME,
        "objectTypeId": CUSTOM_TYPE_ID,
        "fullyQualifiedName": CUSTOM_FQN,
        "labels": {"singular": "Jira Project Status", "plural": "Jira Project Statuses"},
        "primaryDisplayProperty": "jira_sync_key",
        "requiredProperties": ["jira_sync_key"],
        "searchableProperties": ["jira_sync_key", "jira_project_key"],
        "secondaryDisplayProperties": ["jira_project_key"],
        "associations": [
            {
                "fromObjectTypeId": CUSTOM_TYPE_ID,
                "toObjectTypeId": "0-2",
                "name": "jira_project_status_to_company",
                "id": "1001",
            }
        ],
        "archived": False,
        "createdAt": "2026-01-05T09:00:00.000Z",
        "updatedAt": "2026-01-05T09:00:00.000Z",
    }
