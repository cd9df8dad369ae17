"""Attaching each customer's HTML progress report to its CRM record, once per period.

``[report] upload = true`` makes the engine call :func:`upload_reports` after the push.
For every customer with a linked project whose report for the current period
(``[report] period``: a day, an ISO week or a month, in UTC) is not recorded in the state
store, the report is rendered from the store and attached to the customer's record as a
file (:meth:`connectors.crm.CrmConnector.attach_file`).

Idempotent: before uploading, the files already attached to the customers this period
are listed (by file name or title; one query per 200 customers), so a crash between the
upload and its record never uploads twice; what it finds is recorded instead. The calls
count against the cycle's CRM budget like any other; a spent budget stops the cycle
cleanly and the rest follow next cycle. A rejected upload is reported and tried again
next cycle; it is not fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from connectors.crm import AttachedFile, CrmConnector
from connectors.exceptions import RejectedRecord
from sync.config import Config
from sync.report.build import document_of, load_model
from sync.report.render import render
from sync.store import Store, repo
from sync.store.repo.uploads import UploadRecord, put_upload, uploads_of_period

__all__ = ["UploadResult", "file_name", "period_of", "upload_reports"]

log = logging.getLogger(__name__)

Period = Literal["daily", "weekly", "monthly"]


@dataclass
class UploadResult:
    """What one round of uploads did."""

    period: str = ""
    uploaded: list[str] = field(default_factory=list)
    #: Customers whose file was found already attached (a crash before its record).
    found: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)


def period_of(now: datetime, period: Period) -> tuple[str, datetime]:
    """The report period holding ``now`` (UTC): its key (``2026-03-02``, ``2026-W10``,
    ``2026-03``) and its first moment."""
    moment = now.astimezone(UTC)
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if period == "daily":
        return day.date().isoformat(), day
    if period == "weekly":
        year, week, weekday = moment.isocalendar()
        return f"{year}-W{week:02d}", day - timedelta(days=weekday - 1)
    return f"{moment.year}-{moment.month:02d}", day.replace(day=1)


def file_name(period: str, customer_id: str) -> str:
    """The uploaded file's name: stable, whatever the title says."""
    return f"progress-report-{period}-{customer_id}.html"


def upload_reports(
    config: Config,
    store: Store,
    crm: CrmConnector,
    now: datetime,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> UploadResult:
    """Upload the reports of this period not uploaded yet; see the module docstring."""
    settings = config.report
    key, start = period_of(now, settings.period)
    result = UploadResult(period=key)
    with store.read() as conn:
        linked = sorted({link.customer_id for link in repo.get_links(conn)})
        recorded = uploads_of_period(conn, key, linked)
    due = [customer_id for customer_id in linked if customer_id not in recorded]
    if not due:
        return result
    model = load_model(store, config, now)
    customers = model.customer_by_id
    due = [customer_id for customer_id in due if customer_id in customers]
    attached: dict[str, list[AttachedFile]] = {}
    if due:
        for attachment in crm.files_on(due, start):
            customer_id = model.customer_ids(attachment.customer_id)
            if customer_id is not None:
                attached.setdefault(customer_id, []).append(attachment)
    for customer_id in due:
        if should_stop():
            break
        customer = customers[customer_id]
        title = settings.title.format(period=key, customer=customer.name, account_id=customer_id)
        name = file_name(key, customer_id)
        match = next(
            (f for f in attached.get(customer_id, ()) if f.file_name == name or f.title == title),
            None,
        )
        if match is not None:
            version_id = match.id
            result.found.append(customer_id)
        else:
            html = render(document_of(model, customer=customer_id), "html")
            try:
                version_id = crm.attach_file(customer_id, title, name, html.encode("utf-8"))
            except RejectedRecord as exc:
                error = "; ".join(str(e) for e in exc.errors) or str(exc)
                log.warning("report upload for %s (%s) rejected: %s", customer_id, key, error)
                result.failed.append(
                    {"side": crm.side, "record": f"report {key} {customer_id}", "error": error}
                )
                continue
            result.uploaded.append(customer_id)
        with store.transaction() as tx:
            put_upload(tx, UploadRecord(customer_id, key, title, version_id, now))
    return result
