"""HubSpot over httpx: private app or OAuth sign-in, incremental searches, batch upserts.

The names below load their module when first used: the config reads
:mod:`connectors.hubspot.settings` for every CRM, and a Salesforce run never imports
httpx or the rest of this connector.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector
    from connectors.hubspot.settings import HubSpotSettings

__all__ = ["HubSpotConnector", "HubSpotSettings"]

_MODULES = {
    "HubSpotConnector": "connectors.hubspot.connector",
    "HubSpotSettings": "connectors.hubspot.settings",
}


def __getattr__(name: str) -> Any:
    """A public name, its module imported on first use."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
