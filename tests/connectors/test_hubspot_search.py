"""Incremental searches past HubSpot's 10,000-result cap, ties on hs_lastmodifieddate,
and filter values refused before they reach the portal."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from connectors.exceptions import ConfigError, QueryError
from connectors.hubspot import HubSpotSettings, search
from connectors.hubspot.pull import ModifiedPull
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.hubspot import query as sandbox_query
from connectors.sandbox.server import Tls
from tests.connectors.hubspot_portal import Portal, served_portal

COMPANIES = "0-2"
SEARCH = "POST /crm/v3/objects/{type}/search"


def bulk(portal: Portal, count: int, per_moment: int) -> set[str]:
    """``count`` new companies, ``per_moment`` of them sharing each hs_lastmodifieddate."""
    ids = set()
    for i in range(count):
        if i % per_moment == 0:
            portal.clock.advance(1)
        ids.add(portal.backend.write(COMPANIES, None, {"name": f"Bulk {i}"}).id)
    portal.clock.advance(1)
    return ids


def pulled(portal: Portal) -> tuple[list[str], ModifiedPull]:
    pull = ModifiedPull(portal.connector(), COMPANIES, ["name"], None, 300_000)
    ids = [str(r["id"]) for page in pull for r in page.live]
    return ids, pull


def test_a_pull_pages_past_the_10000_cap(serve: Callable[[SandboxApp], str], tls: Tls) -> None:
    portal = served_portal(serve, tls, accounts=5)
    every = set(portal.backend.records[COMPANIES]) | bulk(portal, 10_150, per_moment=70)
    ids, pull = pulled(portal)
    assert len(ids) == len(set(ids)) == len(every) and set(ids) == every
    assert pull.reanchors == 1
    # 100 pages to the cap, the ties at the last moment again, then the rest: no 400.
    assert 102 <= portal.fired(SEARCH) <= 106
    assert portal.backend.search_calls  # searches were paced, never refused
    assert all(s <= 1.0 for s in portal.clock.slept)


def test_ties_beyond_the_cap_reanchor_on_the_id(
    serve: Callable[[SandboxApp], str], tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "SEARCH_CAP", 300)
    monkeypatch.setattr(sandbox_query, "SEARCH_CAP", 300)
    portal = served_portal(serve, tls, accounts=3)
    every = set(portal.backend.records[COMPANIES]) | bulk(portal, 750, per_moment=750)
    pull = ModifiedPull(portal.connector(), COMPANIES, ["name"], None, 300_000)
    pull_ids = [str(r["id"]) for page in pull for r in page.live]
    assert sorted(pull_ids) == sorted(every)
    assert pull.reanchors >= 3  # the cap, then the ties' cap twice on the id
    assert pull.duplicates > 0  # the ties were read again, and delivered once


def test_the_sandbox_refuses_a_page_past_the_cap_like_hubspot(
    serve: Callable[[SandboxApp], str], tls: Tls
) -> None:
    portal = served_portal(serve, tls, accounts=3)
    connector = portal.connector()
    with pytest.raises(QueryError, match="at most 10000 results"):
        connector.search("companies", {"filterGroups": [], "limit": 100, "after": "9950"})


@pytest.mark.parametrize(
    ("operator", "value", "message"),
    [
        ("EQ", "a\nb", "control characters"),
        ("EQ", "  ", "empty value"),
        ("EQ", "x" * 3001, "at most 3000"),
        ("GT", math.nan, "not a finite number"),
        ("IN", [str(i) for i in range(101)], "at most 100"),
        ("IN", [], "at least one value"),
        ("IN", "abc", "needs a list"),
        ("EQ", ["a"], "needs one value"),
        ("LIKE", "a", "unknown search operator"),
    ],
)
def test_values_that_would_break_a_filter_are_refused(
    operator: str, value: object, message: str
) -> None:
    with pytest.raises(search.FilterValueError, match=message) as caught:
        search.filter_("customer_group", operator, value)  # type: ignore[arg-type]
    assert "customer_group" in str(caught.value) or operator == "LIKE"
    assert isinstance(caught.value, ConfigError)


def test_good_values_become_hubspot_strings() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert search.filter_("hs_lastmodifieddate", "GTE", moment)["value"] == "1795255200000"
    assert search.filter_("escalated", "EQ", True)["value"] == "true"
    assert search.filter_("name", "IN", ["大客户", "SMB"])["values"] == ["大客户", "SMB"]
    with pytest.raises(search.FilterValueError, match="naive"):
        search.filter_("hs_lastmodifieddate", "GTE", datetime(2026, 1, 1))


def test_a_survey_type_that_would_break_the_filter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[crm.hubspot\] survey_types: .*control"):
        HubSpotSettings(access_token="t", survey_types=("NPS\t",)).check()
