"""Pulling from the HubSpot sandbox over real HTTPS: companies, tickets and feedback
submissions, incremental by hs_lastmodifieddate, deletes, merges, eventual consistency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.crm import CASE, CUSTOMER, SURVEY, ChangePage, Kind, Read
from connectors.hubspot import HubSpotConnector
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.server import Tls
from tests.connectors.hubspot_portal import Portal, in_process_portal, needs, served_portal

COMPANIES, TICKETS, CONTACTS, FEEDBACK = "0-2", "0-5", "0-1", "0-19"
SEARCH = "POST /crm/v3/objects/{type}/search"
LIST = "GET /crm/v3/objects/{type}"


@pytest.fixture(params=["https", "in-process"])
def portal(request: pytest.FixtureRequest, serve: Callable[[SandboxApp], str], tls: Tls) -> Portal:
    if request.param == "in-process":
        return in_process_portal()
    return served_portal(serve, tls)


def pull(
    connector: HubSpotConnector,
    cursors: dict[Kind, Any],
    kinds: tuple[Kind, ...] = (CUSTOMER, CASE, SURVEY),
    *,
    first: bool = False,
) -> list[ChangePage]:
    """One pull of ``kinds`` from ``cursors``, which it moves as the engine would
    (``first``: nothing of them stored yet)."""
    reads = [Read(k, cursors.get(k), first=first) for k in kinds]
    pages = list(connector.changes(needs(), reads))
    for page in pages:
        if page.cursor is not None:
            cursors[page.kind] = page.cursor
    return pages


def live(pages: list[ChangePage], kind: Kind) -> dict[str, Any]:
    return {r.id: r for p in pages if p.kind == kind for r in p.live}


def deleted(pages: list[ChangePage], kind: Kind) -> list[str]:
    return [i for p in pages if p.kind == kind for i in p.deleted_ids]


def test_first_pull_reads_every_kind_with_its_facts(portal: Portal) -> None:
    backend = portal.backend
    pages = pull(portal.connector(), {})
    companies = live(pages, CUSTOMER)
    assert set(companies) == set(backend.records[COMPANIES])
    owners = {o["id"]: f"{o['firstName']} {o['lastName']}".strip() for o in backend.owners}
    for record in companies.values():
        props = backend.records[COMPANIES][record.id].properties
        assert record.customer_id == record.id
        assert record.data["id"] == record.id
        assert record.data["segment"] == (props["customer_group"] or None)
        assert record.data["owner_id"] == props["hubspot_owner_id"]
        assert record.data["owner_name"] == owners[props["hubspot_owner_id"]]
        assert record.data["changed_at"] == record.changed_at.isoformat()
        assert record.data["deleted"] is False
        assert not {"Id", "Name", "OwnerId", "Owner", "SystemModstamp"} & set(record.data)
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in r.data["name"]) for r in companies.values())

    tickets = live(pages, CASE)
    assert set(tickets) == set(backend.records[TICKETS])
    for record in tickets.values():
        props = backend.records[TICKETS][record.id].properties
        assert record.closed == (props["hs_pipeline_stage"] == "4")
        assert record.escalated == (props["hs_ticket_priority"] in ("HIGH", "URGENT"))
        assert record.customer_id == next(iter(backend.associated(TICKETS, record.id, COMPANIES)))
        assert record.data == {
            "id": record.id,
            "customer_id": record.customer_id,
            "closed": record.closed,
            "escalated": record.escalated,
            "deleted": False,
        }
    assert any(r.closed for r in tickets.values()) and any(not r.closed for r in tickets.values())
    assert any(r.escalated for r in tickets.values())

    answers = live(pages, SURVEY)
    nps = {
        i for i, r in backend.records[FEEDBACK].items() if r.properties["hs_survey_type"] == "NPS"
    }
    assert set(answers) == nps and len(nps) < len(backend.records[FEEDBACK])  # CSAT left out
    for record in answers.values():
        contact = next(iter(backend.associated(FEEDBACK, record.id, CONTACTS)))
        assert record.customer_id == next(iter(backend.associated(CONTACTS, contact, COMPANIES)))
        assert record.score == float(
            backend.records[FEEDBACK][record.id].properties["hs_response_value"]
        )
        assert record.answered_at is not None


def test_escalation_by_a_configured_property(portal: Portal) -> None:
    backend = portal.backend
    some = next(
        r for r in backend.records[TICKETS].values() if r.properties["hs_ticket_priority"] == "LOW"
    )
    backend.write(TICKETS, some, {"escalated": "true"})
    connector = portal.connector(escalation="property", escalation_property="escalated")
    tickets = live(pull(connector, {}, (CASE,)), CASE)
    assert tickets[some.id].escalated
    flagged = {
        i for i, r in backend.records[TICKETS].items() if r.properties.get("escalated") == "true"
    }
    assert {i for i, r in tickets.items() if r.escalated} == flagged


def test_a_quiet_cycle_costs_one_search_per_stream(portal: Portal) -> None:
    connector = portal.connector()
    cursors: dict[Kind, Any] = {}
    pull(connector, cursors)
    portal.app.stats.reset()
    portal.clock.advance(60)
    pages = pull(connector, cursors)
    assert not any(p.live or p.deleted_ids for p in pages)
    stats = portal.app.stats.snapshot()
    assert stats["by_endpoint"] == {SEARCH: 3} and stats["total"] == 3


def test_an_update_arrives_once_despite_the_overlap(portal: Portal) -> None:
    backend = portal.backend
    connector = portal.connector()
    cursors: dict[Kind, Any] = {}
    pull(connector, cursors)
    company = next(iter(backend.records[COMPANIES].values()))
    backend.write(COMPANIES, company, {"customer_group": "SMB"})
    portal.clock.advance(1)
    first = live(pull(connector, cursors, (CUSTOMER,)), CUSTOMER)
    assert list(first) == [company.id] and first[company.id].data["segment"] == "SMB"
    portal.clock.advance(1)
    assert live(pull(connector, cursors, (CUSTOMER,)), CUSTOMER) == {}


@pytest.mark.parametrize("overlap", [0, 300])
def test_the_overlap_catches_what_the_index_had_not_seen(portal: Portal, overlap: int) -> None:
    backend = portal.backend
    backend.index_lag_ms = 30_000
    connector = portal.connector(overlap_seconds=overlap)
    cursors: dict[Kind, Any] = {}
    pull(connector, cursors, (CUSTOMER,))
    late, early = list(backend.records[COMPANIES].values())[:2]
    backend.write(COMPANIES, late, {"customer_group": "SMB"})  # indexed 30 s from now
    portal.clock.advance(5)
    backend.write(COMPANIES, early, {"customer_group": "Enterprise"})
    backend.index_lag_ms = 0
    backend.write(COMPANIES, early, {"domain": "early.example"})  # searchable at once
    portal.clock.advance(1)
    assert list(live(pull(connector, cursors, (CUSTOMER,)), CUSTOMER)) == [early.id]
    portal.clock.advance(60)
    caught = live(pull(connector, cursors, (CUSTOMER,)), CUSTOMER)
    if overlap:
        assert list(caught) == [late.id]
    else:
        assert caught == {}  # what a pull without overlap misses for good


def test_deletes_come_from_archived_records_when_due(portal: Portal) -> None:
    backend = portal.backend
    connector = portal.connector(deletes_every_seconds=600)
    cursors: dict[Kind, Any] = {}
    first = pull(connector, cursors, (CUSTOMER,))
    assert portal.fired(LIST) == 1 and deleted(first, CUSTOMER) == []
    gone = next(iter(backend.records[COMPANIES].values()))
    backend.archive(gone)
    portal.clock.advance(60)
    assert deleted(pull(connector, cursors, (CUSTOMER,)), CUSTOMER) == []
    assert portal.fired(LIST) == 1  # not due yet: no list call
    portal.clock.advance(600)
    assert deleted(pull(connector, cursors, (CUSTOMER,)), CUSTOMER) == [gone.id]
    assert portal.fired(LIST) == 2
    portal.clock.advance(3600)
    assert deleted(pull(connector, cursors, (CUSTOMER,)), CUSTOMER) == []


def test_a_first_pull_into_an_empty_store_lists_no_archived_records(portal: Portal) -> None:
    """Nothing stored, nothing to delete: the first listing of archived records comes when
    due, and names only what was archived since the first pull (less the overlap)."""
    backend = portal.backend
    connector = portal.connector(deletes_every_seconds=600)
    before, after = list(backend.records[COMPANIES].values())[:2]
    backend.archive(before)
    portal.clock.advance(3600)  # archived long before the first pull
    cursors: dict[Kind, Any] = {}
    first = pull(connector, cursors, (CUSTOMER, CASE), first=True)
    assert portal.fired(LIST) == 0 and before.id not in live(first, CUSTOMER)
    assert after.id in live(first, CUSTOMER)
    backend.archive(after)
    portal.clock.advance(601)
    assert deleted(pull(connector, cursors, (CUSTOMER, CASE)), CUSTOMER) == [after.id]
    assert portal.fired(LIST) == 2  # companies and tickets, once due


def test_a_merge_reports_the_merged_away_company_gone_and_the_survivor_names_it(
    portal: Portal,
) -> None:
    backend = portal.backend
    connector = portal.connector()
    cursors: dict[Kind, Any] = {}
    pull(connector, cursors, (CUSTOMER,))
    primary, merged = list(backend.records[COMPANIES].values())[:2]
    backend.merge(COMPANIES, primary, merged)
    portal.clock.advance(1)
    pages = pull(connector, cursors, (CUSTOMER,))
    assert list(live(pages, CUSTOMER)) == [primary.id]
    assert deleted(pages, CUSTOMER) == [merged.id]
    # The survivor carries the merged-away id (neutral ``merged_ids``): links naming it
    # are remapped to the survivor by mappings.
    assert live(pages, CUSTOMER)[primary.id].data["merged_ids"] == [merged.id]
    third = list(backend.records[COMPANIES].values())[2]
    backend.merge(COMPANIES, primary, third)
    portal.clock.advance(1)
    pages = pull(connector, cursors, (CUSTOMER,))
    names = live(pages, CUSTOMER)[primary.id].data["merged_ids"]
    assert sorted(names) == sorted([merged.id, third.id])


def test_a_reread_by_ids_reports_the_missing_as_gone(portal: Portal) -> None:
    backend = portal.backend
    kept, gone = list(backend.records[COMPANIES])[:2]
    backend.archive(backend.records[COMPANIES][gone])
    pages = list(portal.connector().changes(needs(), [Read(CUSTOMER, ids=(kept, gone))]))
    assert list(live(pages, CUSTOMER)) == [kept]
    assert deleted(pages, CUSTOMER) == [gone]
    assert all(p.cursor is None for p in pages)


def test_a_score_that_is_not_a_number_is_set_aside_with_its_reason(portal: Portal) -> None:
    """HubSpot sends properties as text: a CSAT of "high" is not "no score" (that would
    hide an unhappy customer for good) but a record set aside, the rest read on."""
    backend = portal.backend
    odd, *rest = list(backend.records[COMPANIES].values())[:3]
    backend.write(COMPANIES, odd, {"csat_score": "high"})
    backend.write(COMPANIES, rest[0], {"csat_score": "nan"})
    pages = pull(portal.connector(), {}, (CUSTOMER,))
    companies = live(pages, CUSTOMER)
    aside = dict(i for p in pages if p.kind == CUSTOMER for i in p.unreadable)
    assert set(aside) == {odd.id, rest[0].id}
    assert aside[odd.id] == "company property csat_score is 'high', not a number"
    assert set(companies) == set(backend.records[COMPANIES]) - set(aside)
    # Read again by id (the pull's retry of what it set aside): still aside until fixed.
    backend.write(COMPANIES, odd, {"csat_score": "4.5"})
    again = list(portal.connector().changes(needs(), [Read(CUSTOMER, ids=(odd.id, rest[0].id))]))
    assert list(live(again, CUSTOMER)) == [odd.id]
    assert [i for p in again for i, _why in p.unreadable] == [rest[0].id]
