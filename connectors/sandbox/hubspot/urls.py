"""The HubSpot emulator's route table, and the scope each route needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from connectors.sandbox.hubspot.responses import Handlers
from connectors.sandbox.hubspot.schema import STANDARD_TYPES

if TYPE_CHECKING:
    from connectors.sandbox.hubspot.models import HubSpotBackend

OBJECTS = "/crm/v3/objects/{type}"
ASSOC = "/crm/v4/associations/{from}/{to}/batch"

#: Read and write scope of each object type id.
_SCOPES = {
    "0-2": ("crm.objects.companies.read", "crm.objects.companies.write"),
    "0-1": ("crm.objects.contacts.read", "crm.objects.contacts.write"),
    "0-4": ("crm.objects.contacts.read", "crm.objects.contacts.write"),
    "0-5": ("tickets", "tickets"),
    "0-19": ("crm.objects.feedback_submissions.read", "crm.objects.feedback_submissions.read"),
}
_CUSTOM = ("crm.objects.custom.read", "crm.objects.custom.write")


def register_routes(backend: HubSpotBackend) -> None:
    """Fill ``backend.router`` (specific paths before ``{type}/{id}``)."""
    h = Handlers(backend)
    add = backend.router.add
    add("POST", "/oauth/v1/token", h.token, write=False)
    add("GET", "/account-info/v3/api-usage/daily/private-apps", h.usage)
    add("GET", "/account-info/v3/details", h.details)
    add("POST", OBJECTS + "/search", h.search, write=False)
    add("POST", OBJECTS + "/batch/read", h.batch_read, write=False)
    add("POST", OBJECTS + "/batch/create", h.batch_create)
    add("POST", OBJECTS + "/batch/update", h.batch_update)
    add("POST", OBJECTS + "/batch/upsert", h.batch_upsert)
    add("POST", OBJECTS + "/batch/archive", h.batch_archive)
    add("POST", OBJECTS + "/merge", h.merge)
    add("GET", OBJECTS, h.list_objects)
    add("POST", OBJECTS, h.create_object)
    add("GET", OBJECTS + "/{id}", h.get_object)
    add("PATCH", OBJECTS + "/{id}", h.update_object)
    add("DELETE", OBJECTS + "/{id}", h.archive_object)
    add("POST", ASSOC + "/read", h.assoc_read, write=False)
    add("POST", ASSOC + "/associate/default", h.assoc_create)
    add("POST", ASSOC + "/create", h.assoc_create)
    add("GET", "/crm/v4/objects/{from}/{id}/associations/{to}", h.assoc_page)
    add("GET", "/crm/v3/properties/{type}", h.properties)
    add("GET", "/crm/v3/schemas", h.schemas)
    add("GET", "/crm/v3/schemas/{type}", h.schema)
    add("GET", "/crm/v3/pipelines/{type}", h.pipelines)
    add("GET", "/crm/v3/owners", h.owners)
    add("GET", "/crm/v3/owners/", h.owners)
    add("POST", "/files/v3/files", h.upload)
    add("GET", "/files/v3/files/{id}", h.file)


def required_scope(
    type_id: Callable[[str], str | None], method: str, path: str, write: bool
) -> str | None:
    """The scope a call needs (None: any signed-in app)."""
    parts = [p for p in path.split("/") if p]
    if path.startswith("/files/"):
        return "files"
    if path.startswith("/crm/v3/schemas"):
        return "crm.schemas.custom.read"
    if path.startswith("/crm/v3/owners"):
        return "crm.objects.owners.read"
    if path.startswith("/crm/v3/pipelines/"):
        return "tickets" if type_id(parts[3]) == STANDARD_TYPES["tickets"] else None
    if path.startswith(
        ("/crm/v3/objects/", "/crm/v3/properties/", "/crm/v4/associations/", "/crm/v4/objects/")
    ):
        object_type = type_id(parts[3]) if len(parts) > 3 else None
        if object_type is None:
            return None
        read, written = _SCOPES.get(object_type, _CUSTOM)
        return written if write else read
    return None


__all__ = ["register_routes", "required_scope"]
