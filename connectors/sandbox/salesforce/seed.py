"""Loading the seeded :class:`~connectors.sandbox.world.World` into the org's record store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox.salesforce.metadata import ACCOUNT, CASE, REPORT, SURVEY, USER
from connectors.sandbox.world import World

if TYPE_CHECKING:
    from connectors.sandbox.salesforce.models import SalesforceBackend

Record = dict[str, Any]


def load_world(backend: SalesforceBackend, world: World) -> None:
    """Fill an empty store from ``world`` (plain dict rows, one sorted index per object)."""
    store = backend.store
    anchor = backend.now() if not world.accounts else min(a.created for a in world.accounts)
    users: list[Record] = [
        _row(u.id, anchor, anchor, Name=u.name, Email=u.email, IsActive=True)
        for u in world.sf_users
    ]
    users.append(
        _row(
            backend.user_id,
            anchor,
            anchor,
            Name="Sandbox Integration",
            Email=backend.username,
            IsActive=True,
        )
    )
    store.load(USER, users)
    store.load(
        ACCOUNT,
        [
            _row(
                a.id,
                a.created,
                a.modstamp,
                Name=a.name,
                Segment__c=a.segment,
                CSAT__c=a.csat,
                Jira_Project_Key__c=a.jira_project_key,
                OwnerId=a.owner_id,
                Website=a.website,
            )
            for a in world.accounts
        ],
    )
    store.load(
        CASE,
        [
            _row(
                c.id,
                c.created,
                c.modstamp,
                CaseNumber=f"{n:08d}",
                AccountId=c.account_id,
                Subject=c.subject,
                Status=c.status,
                IsClosed=c.is_closed,
                IsEscalated=c.is_escalated,
                Priority=c.priority,
            )
            for n, c in enumerate(world.cases, start=1)
        ],
    )
    store.load(
        SURVEY,
        [
            _row(
                s.id,
                s.responded_at,
                s.modstamp,
                Name=f"SR-{n:06d}",
                Account__c=s.account_id,
                Score__c=float(s.score),
                Responded_At__c=s.responded_at,
            )
            for n, s in enumerate(world.surveys, start=1)
        ],
    )
    store.load(REPORT, [])
    # Ids and auto-numbers of new records continue after the seeded ones.
    for prefix, count in (
        ("005", 1000),
        ("001", len(world.accounts)),
        ("500", len(world.cases)),
        ("a01", len(world.surveys)),
    ):
        backend.counters[prefix] = count
    backend.counters[CASE.name] = len(world.cases)
    backend.counters[SURVEY.name] = len(world.surveys)


def _row(record_id: str, created: Any, modstamp: Any, **fields: Any) -> Record:
    return {
        "Id": record_id,
        **fields,
        "CreatedDate": created,
        "LastModifiedDate": modstamp,
        "SystemModstamp": modstamp,
        "IsDeleted": False,
    }
