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
from mappings.sfid import canonical_id
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
    #: Accounts whose file was found already attached (a crash before its record).
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


def file_name(period: str, account_id: str) -> str:
    """The uploaded file's name: stable, whatever the title says."""
    return f"progress-report-{period}-{account_id}.html"


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
    due = [account for account in linked if account not in recorded]
    if not due:
        return result
    model = load_model(store, config, now)
    customers = {c.id: c for c in model.result.customers}
    due = [account for account in due if account in customers]
    attached: dict[str, list[AttachedFile]] = {}
    if due:
        for attachment in crm.files_on(due, start):
            account = canonical_id(attachment.customer_id)
            if account is not None:
                attached.setdefault(account, []).append(attachment)
    for account in due:
        if should_stop():
            break
        customer = customers[account]
        title = settings.title.format(period=key, customer=customer.name, account_id=account)
        name = file_name(key, account)
        match = next(
            (f for f in attached.get(account, ()) if f.file_name == name or f.title == title),
            None,
        )
        if match is not None:
            version_id = match.id
            result.found.append(account)
        else:
            html = render(document_of(model, customer=account), "html")
            try:
                version_id = crm.attach_file(account, title, name, html.encode("utf-8"))
            except RejectedRecord as exc:
                error = "; ".join(str(e) for e in exc.errors) or str(exc)
                log.warning("report upload for %s (%s) rejected: %s", account, key, error)
                result.failed.append(
                    {"side": crm.side, "record": f"report {key} {account}", "error": error}
                )
                continue
            result.uploaded.append(account)
        with store.transaction() as tx:
            put_upload(tx, UploadRecord(account, key, title, version_id, now))
    return result
