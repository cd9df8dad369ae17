"""Salesforce through simple-salesforce: login, incremental pulls, collection upserts."""

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
