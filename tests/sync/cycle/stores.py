"""A hand-built state store for the stage tests: no sandbox, filled through the cycle's
own row conversions (sync.cycle.rows), as a pull would fill it."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from connectors.crm import CASE, CUSTOMER, Configured, CrmRecord, CustomerNeed, Needs, ReportNeed
from connectors.salesforce.records import form as salesforce_form
from sync.cycle.derive import BatchedDerive, Derived, plan_of
from sync.cycle.pull import Overlay, store_crm_page
from sync.cycle.rows import issue_row
from sync.store import Store, repo
from tests.mappings.factories import (
    ACME,
    AS_OF,
    GLOBEX,
    GONE,
    INITECH,
    RULES,
    account,
    case,
    sf_id,
)
from tests.mappings.factories import issue as raw_issue

JIRA_URL = "https://jira.example.test"
INSTANCE_URL = "https://crm.example.test"
#: The example config's customer fields, for the Accounts an older version stored.
NEEDS = Needs(
    CustomerNeed(
        Configured("Segment__c", "segment_field"),
        Configured("CSAT__c", "satisfaction_field"),
        Configured("Jira_Project_Key__c", "crm_field"),
    ),
    ReportNeed(Configured("Jira_Project_Status__c", ""), Configured("Jira_Sync_Key__c", ""), ()),
)
#: How the CRM's records read back from the store (the Salesforce connector's form).
FORM = salesforce_form(NEEDS)
#: The projects of :func:`items`, in order.
PROJECTS = ("ALPHA", "BETA", "DELTA", "GAMMA")


def items() -> list[dict[str, Any]]:
    """Four projects: ALPHA's epic names ACME and BETA's stories are its children (they
    inherit across projects), GAMMA links by its own field (and names a deleted account),
    DELTA is named by INITECH's project-key field."""
    return [
        raw_issue("ALPHA-1", account=ACME, type_name="Epic"),
        raw_issue("ALPHA-2", parent="ALPHA-1", status="Done"),
        raw_issue("ALPHA-3", parent="ALPHA-1", due="2026-11-01"),
        raw_issue("BETA-1", parent="ALPHA-1", status="In Progress"),
        raw_issue("BETA-2", parent="ALPHA-1", labels=["customer-at-risk"]),
        raw_issue("BETA-3", account=GLOBEX),
        raw_issue("GAMMA-1", account=GLOBEX, status="Blocked"),
        raw_issue("GAMMA-2", account=GLOBEX, status="Done"),
        raw_issue("GAMMA-3", account=GONE),
        raw_issue("DELTA-1"),
        raw_issue("DELTA-2", status="Done"),
    ]


def customers() -> list[CrmRecord]:
    """ACME (escalated twice), GLOBEX at risk, INITECH naming DELTA, and GONE (which
    :func:`fill` then deletes)."""
    accounts = [
        account(ACME, "Acme Corp"),
        account(GLOBEX, "Globex", csat=2.0, segment="SMB"),
        account(INITECH, "Initech", csat=None, project_key="DELTA"),
        account(GONE, "Gone Ltd"),
    ]
    return [CrmRecord(a["id"], AS_OF, a, customer_id=a["id"]) for a in accounts]


def cases() -> list[CrmRecord]:
    """Two escalated cases of ACME, one of GLOBEX."""
    raw = [case(ACME, escalated=True), case(ACME, escalated=True), case(GLOBEX)]
    for number, record in enumerate(raw, start=900):  # the same ids at every call
        record["id"] = sf_id("500", number)
    return [
        CrmRecord(
            c["id"],
            AS_OF,
            c,
            customer_id=c["customer_id"],
            closed=bool(c["closed"]),
            escalated=bool(c["escalated"]),
        )
        for c in raw
    ]


def fill(store: Store, at: datetime = AS_OF) -> None:
    """Store :func:`items`, the customers (GONE deleted) and the cases; mark ALPHA, DELTA
    and a project without issues (NOPE) to be derived."""
    with store.transaction() as tx:
        repo.upsert_items(tx, [issue_row(raw) for raw in items()])
        store_crm_page(tx, CUSTOMER, customers(), [], at)
        store_crm_page(tx, CUSTOMER, [], [GONE], at)
        store_crm_page(tx, CASE, cases(), [], at)
        repo.mark_dirty(tx, ["ALPHA", "DELTA", "NOPE"], at=at)


def batched(
    store: Store,
    size: int,
    *,
    projects: list[str] | None = None,
    overlay: Overlay | None = None,
) -> BatchedDerive:
    """The batches of ``projects`` (None: every one) at ``size`` issues, as of AS_OF."""
    return BatchedDerive(
        store,
        RULES,
        projects,
        AS_OF,
        jira_url=JIRA_URL,
        instance_url=INSTANCE_URL,
        survey_window_days=90,
        form=FORM,
        batch_issues=size,
        overlay=overlay,
    )


def whole(
    store: Store, *, projects: list[str] | None = None, overlay: Overlay | None = None
) -> Derived:
    """One merge of everything at once, as of AS_OF: the cycle's derive path
    (:class:`BatchedDerive`) in a single batch, what the batched results are compared
    with. It covers the marks of the batch and of the end, and every customer's flags."""
    batches = BatchedDerive(
        store,
        RULES,
        projects,
        AS_OF,
        jira_url=JIRA_URL,
        instance_url=INSTANCE_URL,
        survey_window_days=90,
        form=FORM,
        batch_issues=sys.maxsize,
        overlay=overlay,
    )
    parts = list(batches)  # one batch, or none when no project holds an issue
    end = batches.end
    everything = projects is None
    if not parts:
        assert end.alone is not None
        the_plan = plan_of(store, end.alone, RULES)
        return Derived(end.alone, the_plan, (), everything, end.marks)
    (one,) = parts
    covered = tuple(p.key for p in one.result.projects) if everything else one.projects
    return Derived(one.result, one.plan, covered, everything, one.marks + end.marks)
