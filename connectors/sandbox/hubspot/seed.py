"""The portal loaded from the sandbox world: the same customers as the Salesforce org
(names in English and Chinese, customer groups, CSAT scores, Jira project keys), with a
contact per company, tickets, NPS answers from the world's surveys and a few CSAT ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.sandbox.hubspot.schema import CLOSED_STAGE, OPEN_STAGES, STANDARD_TYPES
from connectors.sandbox.hubspot.values import iso
from connectors.sandbox.world import World

if TYPE_CHECKING:
    from connectors.sandbox.hubspot.models import HubSpotBackend

COMPANIES = STANDARD_TYPES["companies"]
CONTACTS = STANDARD_TYPES["contacts"]
TICKETS = STANDARD_TYPES["tickets"]
FEEDBACK = STANDARD_TYPES["feedback_submissions"]
PRIMARY = "Primary"


def _ms(moment: object) -> int:
    from datetime import datetime

    assert isinstance(moment, datetime)
    return int(moment.timestamp() * 1000)


def _add(
    backend: HubSpotBackend, type_id: str, props: dict[str, str | None], created: int, updated: int
) -> str:
    from connectors.sandbox.hubspot.models import HsRecord

    rid = backend.new_id()
    values = {k: v for k, v in props.items() if v is not None}
    values.update(hs_object_id=rid, hs_createdate=iso(created), hs_lastmodifieddate=iso(updated))
    record = HsRecord(rid, type_id, dict(values), created, updated)
    record.index.append((created, dict(values)))
    backend.records[type_id][rid] = record
    return rid


def load(backend: HubSpotBackend, world: World) -> None:
    """Fill ``backend`` from ``world`` (deterministic)."""
    owner_ids: dict[str, str] = {}
    for n, user in enumerate(world.sf_users):
        first, _, last = user.name.partition(" ")
        owner_id = str(71_000 + n)
        owner_ids[user.id] = owner_id
        backend.owners.append(
            {
                "id": owner_id,
                "email": user.email,
                "firstName": first,
                "lastName": last,
                "userId": 9_000 + n,
                "archived": False,
                "createdAt": "2026-01-05T09:00:00.000Z",
                "updatedAt": "2026-01-05T09:00:00.000Z",
            }
        )
    company_of: dict[str, str] = {}
    contact_of: dict[str, str] = {}
    for n, account in enumerate(world.accounts):
        created, updated = _ms(account.created), _ms(account.modstamp)
        company = _add(
            backend,
            COMPANIES,
            {
                "name": account.name,
                "domain": account.website.removeprefix("https://").removeprefix("http://"),
                "customer_group": account.segment,
                "csat_score": None if account.csat is None else f"{account.csat:g}",
                "hubspot_owner_id": owner_ids.get(account.owner_id),
                "jira_project_keys": account.jira_project_key,
            },
            created,
            updated,
        )
        company_of[account.id] = company
        contact = _add(
            backend,
            CONTACTS,
            {
                "firstname": ("Li", "Anna", "Wei", "Tom", "Mei")[n % 5],
                "lastname": ("Wang", "Schmidt", "Zhang", "Miller", "Chen")[n % 5],
                "email": f"contact{n}@{account.website.split('//')[-1]}",
            },
            created,
            created,
        )
        contact_of[account.id] = contact
        backend.associate(CONTACTS, contact, COMPANIES, company, PRIMARY)
    for n, case in enumerate(world.cases):
        of_case = company_of.get(case.account_id)
        if of_case is None:
            continue
        stage = CLOSED_STAGE if case.is_closed else OPEN_STAGES[n % len(OPEN_STAGES)]
        priority = ("HIGH", "URGENT")[n % 2] if case.is_escalated else ("LOW", "MEDIUM")[n % 2]
        ticket = _add(
            backend,
            TICKETS,
            {
                "subject": case.subject,
                "hs_pipeline": "0",
                "hs_pipeline_stage": stage,
                "hs_ticket_priority": priority,
                "escalated": "true" if case.is_escalated else "false",
            },
            _ms(case.created),
            _ms(case.modstamp),
        )
        backend.associate(TICKETS, ticket, COMPANIES, of_case, PRIMARY)
    for survey in world.surveys:
        answered_by = contact_of.get(survey.account_id)
        if answered_by is None:
            continue
        _feedback(
            backend,
            answered_by,
            "NPS",
            survey.score,
            _ms(survey.responded_at),
            _ms(survey.modstamp),
        )
    for n, account in enumerate(world.accounts[::5]):
        contact = contact_of[account.id]
        at = _ms(account.modstamp)
        _feedback(backend, contact, "CSAT", 1 + n % 5, at, at)


def _feedback(
    backend: HubSpotBackend, contact: str, kind: str, score: int, answered: int, updated: int
) -> None:
    rid = _add(
        backend,
        FEEDBACK,
        {
            "hs_survey_type": kind,
            "hs_response_value": str(score),
            "hs_submission_timestamp": iso(answered),
            "hs_survey_name": f"{kind} survey",
        },
        answered,
        updated,
    )
    backend.associate(FEEDBACK, rid, CONTACTS, contact, None)
