"""HubSpot over httpx: private app or OAuth sign-in, incremental searches, batch upserts."""

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings

__all__ = ["HubSpotConnector", "HubSpotSettings"]
