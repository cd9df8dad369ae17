"""What every HubSpot emulator route shares: the backend, type resolution, batch inputs
and HubSpot's common error answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot.errors import hs_error
from connectors.sandbox.hubspot.models import BATCH_LIMIT

if TYPE_CHECKING:
    from connectors.sandbox.hubspot.models import HubSpotBackend


def unknown_type(name: str) -> SandboxResponse:
    """HubSpot's 400 for an object type it does not know."""
    return hs_error(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")


def not_found(rid: str) -> SandboxResponse:
    """HubSpot's 404 for a record id."""
    return hs_error(
        404, f"Object not found.  objectId are usually numeric. ({rid})", "OBJECT_NOT_FOUND"
    )


def names(request: SandboxRequest) -> list[str] | None:
    """The ``properties`` a read asks for (None: the defaults)."""
    return request.args("properties") or None


def invalid(problems: list[dict[str, Any]]) -> str:
    """HubSpot's message for property values it refuses."""
    return "Property values were not valid: " + json.dumps(problems)


class RouteBase:
    """The backend the routes serve, and what they all use."""

    def __init__(self, backend: HubSpotBackend) -> None:
        self.b = backend
        #: The last search's matches, sorted, while nothing it depends on changed: the
        #: pages of one query are then cut from one evaluation.
        self._search_cache: tuple[Any, list[tuple[str, dict[str, Any]]]] | None = None

    def _type(self, request: SandboxRequest, key: str = "type") -> str | None:
        return self.b.type_id(request.path_params.get(key, ""))

    def _inputs(self, request: SandboxRequest) -> list[dict[str, Any]] | SandboxResponse:
        inputs = (request.json() or {}).get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return hs_error(400, "inputs must be a list of objects")
        if len(inputs) > BATCH_LIMIT:
            return hs_error(
                400,
                f"Batch input of {len(inputs)} exceeds the limit of {BATCH_LIMIT}.",
                "VALIDATION_ERROR",
            )
        return inputs
