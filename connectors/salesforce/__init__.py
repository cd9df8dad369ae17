"""Salesforce through simple-salesforce: login, incremental pulls, collection upserts.

The names below load their module when first used: the config reads
:mod:`connectors.salesforce.settings` for every CRM, and a HubSpot run never imports
simple-salesforce (nor its zeep and lxml) or the rest of this connector.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.salesforce.client import SalesforceClient
    from connectors.salesforce.connector import AccountFields, SalesforceConnector, SurveySource
    from connectors.salesforce.errors import ApiUsage
    from connectors.salesforce.pull import ModstampCursor
    from connectors.salesforce.settings import SalesforceSettings

__all__ = [
    "AccountFields",
    "ApiUsage",
    "ModstampCursor",
    "SalesforceClient",
    "SalesforceConnector",
    "SalesforceSettings",
    "SurveySource",
]

_MODULES = {
    "AccountFields": "connectors.salesforce.connector",
    "ApiUsage": "connectors.salesforce.errors",
    "ModstampCursor": "connectors.salesforce.pull",
    "SalesforceClient": "connectors.salesforce.client",
    "SalesforceConnector": "connectors.salesforce.connector",
    "SalesforceSettings": "connectors.salesforce.settings",
    "SurveySource": "connectors.salesforce.connector",
}


def __getattr__(name: str) -> Any:
    """A public name, its module imported on first use."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
