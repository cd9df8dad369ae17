"""CRM records: customers (the neutral records a connector hands over), cases and survey
answers (the columns merging needs). The tables keep their names (``crm_accounts``, the
``account_id`` columns): they are the schema's, renamed only by a migration."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.store._sql import aware, in_chunks, upsert, utcnow
from sync.store.schema import crm_accounts, crm_cases, survey_responses

__all__ = [
    "CaseCounts",
    "CaseRecord",
    "CaseRow",
    "CustomerRecord",
    "CustomerRow",
    "SurveyRecord",
    "SurveyRow",
    "case_counts",
    "count_customers",
    "get_customers",
    "iter_cases",
    "iter_customers",
    "iter_surveys",
    "live_case_ids",
    "live_customer_ids",
    "live_survey_ids",
    "mark_cases_deleted",
    "mark_customers_deleted",
    "mark_surveys_deleted",
    "surveys_by_customer",
    "upsert_cases",
    "upsert_customers",
    "upsert_surveys",
]

YIELD_PER = 1000


def _stamp(value: datetime | None, what: str) -> datetime | None:
    return None if value is None else aware(value, what)


def _newer(table: sa.Table) -> Any:
    def where(stmt: Any) -> Any:
        return sa.or_(
            table.c.modstamp.is_(None),
            stmt.excluded.modstamp.is_(None),
            table.c.modstamp <= stmt.excluded.modstamp,
        )

    return where


def _mark_deleted(conn: Connection, table: sa.Table, ids: Iterable[str], **values: Any) -> int:
    changed = 0
    for batch in in_chunks(ids):
        changed += conn.execute(
            sa.update(table)
            .where(table.c.id.in_(batch), table.c.deleted.is_(False))
            .values(deleted=True, **values)
        ).rowcount
    return changed


# --- customers --------------------------------------------------------------------------------


class CustomerRow(TypedDict):
    """A customer as the engine hands it over: its data in the neutral form."""

    id: str
    modstamp: datetime | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A stored customer (an older version's rows hold the CRM's own shape: read them
    through the CRM's ``RecordForm.stored_customer``)."""

    id: str
    modstamp: datetime | None
    data: dict[str, Any]
    deleted: bool


def upsert_customers(conn: Connection, rows: Iterable[CustomerRow]) -> int:
    """Insert or update customers in batches (an older copy never replaces a newer one)."""
    values = (
        {
            "id": r["id"],
            "modstamp": _stamp(r["modstamp"], "modstamp"),
            "data": r["data"],
            "deleted": False,
            "deleted_at": None,
        }
        for r in rows
    )
    return upsert(conn, crm_accounts, values, ("id",), where=_newer(crm_accounts))


def mark_customers_deleted(
    conn: Connection, ids: Iterable[str], *, at: datetime | None = None
) -> int:
    """Mark customers deleted; returns how many changed."""
    return _mark_deleted(conn, crm_accounts, ids, deleted_at=at or utcnow())


#: In a deleted customer's data: the customer it was merged into.
MERGED_INTO = "merged_into"


def mark_customers_merged(
    conn: Connection, merged: Mapping[str, str], *, at: datetime | None = None
) -> None:
    """Customers a merge took, each deleted and naming the customer it was merged into
    (:data:`MERGED_INTO` in its data); one never stored is kept as a deleted record of
    its id alone, since a Jira link value may still name it."""
    when = at or utcnow()
    stored = get_customers(conn, merged, include_deleted=True)
    for gone, into in sorted(merged.items()):
        record = stored.get(gone)
        if record is None:
            conn.execute(
                sa.insert(crm_accounts).values(
                    id=gone,
                    modstamp=None,
                    data={"id": gone, MERGED_INTO: into},
                    deleted=True,
                    deleted_at=when,
                )
            )
            continue
        values: dict[str, Any] = {"data": {**record.data, MERGED_INTO: into}}
        if not record.deleted:
            values.update(deleted=True, deleted_at=when)
        conn.execute(sa.update(crm_accounts).where(crm_accounts.c.id == gone).values(**values))


def _customer(row: Any) -> CustomerRecord:
    return CustomerRecord(row.id, row.modstamp, row.data, row.deleted)


def get_customers(
    conn: Connection, ids: Iterable[str], *, include_deleted: bool = False
) -> dict[str, CustomerRecord]:
    """Customers by id (missing ones are absent from the result)."""
    found: dict[str, CustomerRecord] = {}
    for batch in in_chunks(ids):
        stmt = sa.select(crm_accounts).where(crm_accounts.c.id.in_(batch))
        if not include_deleted:
            stmt = stmt.where(crm_accounts.c.deleted.is_(False))
        found.update((row.id, _customer(row)) for row in conn.execute(stmt))
    return found


def iter_customers(
    conn: Connection, *, include_deleted: bool = False, yield_per: int = YIELD_PER
) -> Iterator[CustomerRecord]:
    """Stream every customer, by id."""
    stmt = sa.select(crm_accounts).order_by(crm_accounts.c.id)
    if not include_deleted:
        stmt = stmt.where(crm_accounts.c.deleted.is_(False))
    result = conn.execute(stmt, execution_options={"yield_per": yield_per})
    try:
        for row in result:
            yield _customer(row)
    finally:
        result.close()


def live_customer_ids(conn: Connection) -> set[str]:
    """The ids of every live (not deleted) customer stored."""
    return _live_ids(conn, crm_accounts)


def _live_ids(conn: Connection, table: sa.Table) -> set[str]:
    return {str(i) for i in conn.scalars(sa.select(table.c.id).where(table.c.deleted.is_(False)))}


def holds_any(conn: Connection, kind: str) -> bool:
    """Whether any record of ``kind`` (``customer``, ``case``, ``survey``) is stored, live
    or deleted: before the first pull of a kind there is nothing a delete could remove."""
    table = {"customer": crm_accounts, "case": crm_cases, "survey": survey_responses}[kind]
    return conn.scalar(sa.select(table.c.id).limit(1)) is not None


def count_customers(conn: Connection) -> int:
    """How many live customers are stored."""
    stmt = sa.select(sa.func.count()).where(crm_accounts.c.deleted.is_(False))
    return int(conn.scalar(stmt.select_from(crm_accounts)) or 0)


# --- cases -----------------------------------------------------------------------------------


class CaseRow(TypedDict):
    """A support case: only what satisfaction rules count."""

    id: str
    customer_id: str | None
    is_closed: bool
    is_escalated: NotRequired[bool]
    modstamp: datetime | None


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A stored live case: what satisfaction rules count."""

    id: str
    customer_id: str | None
    is_closed: bool
    is_escalated: bool


@dataclass(frozen=True, slots=True)
class CaseCounts:
    """Open cases of a customer, and how many of those are escalated."""

    open: int
    escalated_open: int


def upsert_cases(conn: Connection, rows: Iterable[CaseRow]) -> int:
    """Insert or update cases in batches (an older copy never replaces a newer one)."""
    values = (
        {
            "id": r["id"],
            "account_id": r["customer_id"],
            "is_closed": bool(r["is_closed"]),
            "is_escalated": bool(r.get("is_escalated", False)),
            "modstamp": _stamp(r["modstamp"], "modstamp"),
            "deleted": False,
        }
        for r in rows
    )
    return upsert(conn, crm_cases, values, ("id",), where=_newer(crm_cases))


def mark_cases_deleted(conn: Connection, ids: Iterable[str]) -> int:
    """Mark cases deleted (they leave the counts)."""
    return _mark_deleted(conn, crm_cases, ids)


def iter_cases(conn: Connection, *, yield_per: int = YIELD_PER) -> Iterator[CaseRecord]:
    """Stream every live case, by id."""
    c = crm_cases
    stmt = (
        sa.select(c.c.id, c.c.account_id, c.c.is_closed, c.c.is_escalated)
        .where(c.c.deleted.is_(False))
        .order_by(c.c.id)
    )
    result = conn.execute(stmt, execution_options={"yield_per": yield_per})
    try:
        for row in result:
            yield CaseRecord(row.id, row.account_id, bool(row.is_closed), bool(row.is_escalated))
    finally:
        result.close()


def live_case_ids(conn: Connection) -> set[str]:
    """The ids of every live (not deleted) case stored."""
    return _live_ids(conn, crm_cases)


def case_counts(
    conn: Connection, customer_ids: Iterable[str] | None = None
) -> dict[str, CaseCounts]:
    """Open and escalated-open case counts per customer, counted by the database.

    Customers without open cases are absent from the result.
    """
    c = crm_cases
    stmt = (
        sa.select(
            c.c.account_id,
            sa.func.count(),
            sa.func.sum(sa.case((c.c.is_escalated.is_(True), 1), else_=0)),
        )
        .where(c.c.deleted.is_(False), c.c.is_closed.is_(False), c.c.account_id.is_not(None))
        .group_by(c.c.account_id)
    )
    if customer_ids is None:
        batches: Iterable[list[str] | None] = [None]
    else:
        batches = in_chunks(customer_ids)
    counts: dict[str, CaseCounts] = {}
    for batch in batches:
        query = stmt if batch is None else stmt.where(c.c.account_id.in_(batch))
        for customer_id, total, escalated in conn.execute(query):
            counts[customer_id] = CaseCounts(int(total), int(escalated or 0))
    return counts


# --- survey responses ------------------------------------------------------------------------


class SurveyRow(TypedDict):
    """A survey answer: the customer, the score and when it was given."""

    id: str
    customer_id: str | None
    score: float | None
    responded_at: datetime | None
    modstamp: datetime | None


@dataclass(frozen=True, slots=True)
class SurveyRecord:
    """A stored survey answer."""

    id: str
    customer_id: str
    score: float | None
    responded_at: datetime | None


def upsert_surveys(conn: Connection, rows: Iterable[SurveyRow]) -> int:
    """Insert or update survey responses in batches (an older copy never replaces a newer)."""
    values = (
        {
            "id": r["id"],
            "account_id": r["customer_id"],
            "score": r["score"],
            "responded_at": _stamp(r["responded_at"], "responded_at"),
            "modstamp": _stamp(r["modstamp"], "modstamp"),
            "deleted": False,
        }
        for r in rows
    )
    return upsert(conn, survey_responses, values, ("id",), where=_newer(survey_responses))


def mark_surveys_deleted(conn: Connection, ids: Iterable[str]) -> int:
    """Mark survey responses deleted."""
    return _mark_deleted(conn, survey_responses, ids)


def _survey_query(since: datetime | None, until: datetime | None) -> sa.Select[Any]:
    s = survey_responses
    stmt = (
        sa.select(s.c.id, s.c.account_id, s.c.score, s.c.responded_at)
        .where(s.c.deleted.is_(False), s.c.account_id.is_not(None))
        .order_by(s.c.account_id, s.c.responded_at, s.c.id)
    )
    if since is not None:
        stmt = stmt.where(s.c.responded_at >= aware(since, "since"))
    if until is not None:
        stmt = stmt.where(s.c.responded_at < aware(until, "until"))
    return stmt


def iter_surveys(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    yield_per: int = YIELD_PER,
) -> Iterator[SurveyRecord]:
    """Stream live answers given in ``[since, until)``, by customer then time."""
    result = conn.execute(_survey_query(since, until), execution_options={"yield_per": yield_per})
    try:
        for row in result:
            yield SurveyRecord(row.id, row.account_id, row.score, row.responded_at)
    finally:
        result.close()


def live_survey_ids(conn: Connection) -> set[str]:
    """The ids of every live (not deleted) survey response stored."""
    return _live_ids(conn, survey_responses)


def surveys_by_customer(
    conn: Connection,
    customer_ids: Iterable[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, list[SurveyRecord]]:
    """Live answers of some customers given in ``[since, until)``, oldest first."""
    found: dict[str, list[SurveyRecord]] = defaultdict(list)
    for batch in in_chunks(customer_ids):
        stmt = _survey_query(since, until).where(survey_responses.c.account_id.in_(batch))
        for row in conn.execute(stmt):
            found[row.account_id].append(
                SurveyRecord(row.id, row.account_id, row.score, row.responded_at)
            )
    return dict(found)
