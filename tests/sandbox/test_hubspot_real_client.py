"""The unmodified official ``hubspot-api-client`` against the HubSpot sandbox over HTTPS:
search past one page, batch upsert with a per-record failure, associations v4, archived
reads, and HubSpot's errors as the client raises them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import ApiException, Filter, FilterGroup, PublicObjectSearchRequest
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.hubspot.models import DEFAULT_PRIVATE_APP_TOKEN
from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID
from connectors.sandbox.server import Tls
from tests.connectors.hubspot_portal import Portal, served_portal

COMPANIES = "0-2"


@pytest.fixture
def portal(serve: Callable[[SandboxApp], str], tls: Tls) -> Portal:
    return served_portal(serve, tls, accounts=45)


@pytest.fixture
def api(portal: Portal) -> HubSpot:
    return HubSpot(
        access_token=DEFAULT_PRIVATE_APP_TOKEN, host=portal.url, ssl_ca_cert=portal.ca_bundle
    )


def test_search_past_one_page(portal: Portal, api: HubSpot) -> None:
    group = FilterGroup(
        filters=[Filter(property_name="hs_lastmodifieddate", operator="GTE", value="0")]
    )
    request = PublicObjectSearchRequest(
        filter_groups=[group],
        sorts=["hs_lastmodifieddate"],
        properties=["name", "customer_group"],
        limit=20,
        after=None,
    )
    ids: list[str] = []
    while True:
        page = api.crm.companies.search_api.do_search(public_object_search_request=request)
        ids += [r.id for r in page.results]
        if page.paging is None or page.paging.next is None:
            break
        request.after = page.paging.next.after
    assert sorted(ids) == sorted(portal.backend.records[COMPANIES]) and page.total == 45
    assert portal.fired("POST /crm/v3/objects/{type}/search") == 3


def test_batch_upsert_with_a_per_record_failure(portal: Portal, api: HubSpot) -> None:
    batch = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id_property="jira_sync_key",
                id="k1",
                properties={"health": "Green", "issues_total": "3"},
            ),
            SimplePublicObjectBatchInputUpsert(
                id_property="jira_sync_key", id="k2", properties={"health": "Mauve"}
            ),
        ]
    )
    answer = api.crm.objects.batch_api.upsert(
        object_type=CUSTOM_TYPE_ID, batch_input_simple_public_object_batch_input_upsert=batch
    )
    assert [r.properties["jira_sync_key"] for r in answer.results] == ["k1"]
    assert answer.results[0].new is True
    assert answer.num_errors == 1 and "Mauve" in answer.errors[0].message
    stored = [r.properties for r in portal.backend.records[CUSTOM_TYPE_ID].values()]
    assert [(p["jira_sync_key"], p["issues_total"]) for p in stored] == [("k1", "3")]


def test_associations_v4_batch_read(portal: Portal, api: HubSpot) -> None:
    tickets = sorted(portal.backend.records["0-5"], key=int)[:5]
    answer = api.crm.associations.v4.batch_api.get_page(
        from_object_type="tickets",
        to_object_type="companies",
        batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=t) for t in tickets]
        ),
    )
    by_ticket = {r._from.id: [str(t.to_object_id) for t in r.to] for r in answer.results}
    assert set(by_ticket) == set(tickets)
    for ticket, companies in by_ticket.items():
        assert companies == list(portal.backend.associated("0-5", ticket, COMPANIES))


def test_archived_reads(portal: Portal, api: HubSpot) -> None:
    gone = sorted(portal.backend.records[COMPANIES], key=int)[:3]
    for company in gone:
        api.crm.companies.basic_api.archive(company_id=company)
    page = api.crm.companies.basic_api.get_page(archived=True, limit=100)
    assert sorted(r.id for r in page.results) == gone and all(r.archived for r in page.results)
    live = api.crm.companies.get_all()
    assert len(live) == 42 and not set(gone) & {r.id for r in live}


def test_errors_reach_the_client_as_hubspot_sends_them(portal: Portal, api: HubSpot) -> None:
    portal.backend.scopes.discard("crm.objects.companies.read")
    with pytest.raises(ApiException) as caught:
        api.crm.companies.basic_api.get_page(limit=10)
    assert caught.value.status == 403 and "crm.objects.companies.read" in caught.value.body
    broken = HubSpot(access_token="pat-wrong", host=portal.url, ssl_ca_cert=portal.ca_bundle)
    with pytest.raises(ApiException) as refused:
        broken.crm.companies.basic_api.get_page(limit=10)
    assert refused.value.status == 401
