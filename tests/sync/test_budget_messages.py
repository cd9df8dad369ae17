"""The message of a cycle a CRM's own daily limit stopped says when that CRM frees calls:
Salesforce's limit is a rolling 24 hours, HubSpot's resets at midnight in the portal's time
zone (an operator planning around it needs the right one)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sync.budget import CRM_SETTINGS, Allowance, stopped
from sync.config import CRM_NAMES


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("salesforce", "resumes when Salesforce frees calls (its limit is a rolling 24 hours)"),
        (
            "hubspot",
            "resumes when HubSpot frees calls (its daily limit resets at midnight, portal time)",
        ),
    ],
)
def test_a_remote_daily_stop_says_when_that_crm_frees_calls(kind: str, says: str) -> None:
    name, holder, resets = CRM_NAMES[kind]
    given = {"crm": Allowance("crm", 100, 1000, 0, name, holder, CRM_SETTINGS, resets)}
    message, budget = stopped(
        "crm", given, {}, spent=False, queued=2, stage="push", now=datetime.now(UTC)
    )
    assert message.endswith(says), message
    assert f"{name}'s own daily API limit for {holder}" in message
    assert budget["limit"] == "remote" and budget["queued_writes"] == 2
