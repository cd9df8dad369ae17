"""HubSpot is a second implementation of the CRM seam (connectors/crm.py)."""

from __future__ import annotations

import inspect

from connectors.crm import CrmConnector
from connectors.hubspot import HubSpotConnector, HubSpotSettings

SEAM = [
    name
    for name, member in vars(CrmConnector).items()
    if not name.startswith("_") and (callable(member) or isinstance(member, property))
]


def test_hubspot_implements_the_seam_without_a_call() -> None:
    crm = HubSpotConnector(HubSpotSettings(access_token="pat-t"))  # builds, no call
    assert isinstance(crm, CrmConnector)
    assert crm.side == "hubspot" and crm.meter.total == 0


def test_its_methods_take_what_the_seam_passes() -> None:
    assert len(SEAM) == 13  # a method added to the seam is added here, and checked
    for name in SEAM:
        wanted = getattr(CrmConnector, name)
        have = getattr(HubSpotConnector, name)
        if isinstance(wanted, property):
            assert isinstance(have, property), name
            continue
        assert list(inspect.signature(have).parameters) == list(
            inspect.signature(wanted).parameters
        ), name
