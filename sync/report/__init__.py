"""The progress report people read (SPEC section 4, ``report``): from the state store alone.

:func:`render_report` is the one entry point (the ``report`` and ``demo`` commands call it):
it loads the stored model (:mod:`sync.report.load`), assembles what the report says with the
pure rules of :mod:`mappings.report`, and renders it with the Jinja2 templates of
``sync/report/templates`` as text, Markdown or one self-contained HTML file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sync.config import Config
    from sync.store import Store

__all__ = ["Format", "ReportError", "render_report", "report_parts", "state_missing"]

Format = Literal["html", "markdown", "text"]


class ReportError(Exception):
    """The report cannot be made as asked (an unknown customer or project, an empty store);
    the message says what to do."""


def render_report(
    store: Store,
    config: Config,
    *,
    fmt: Format = "html",
    customer: str | None = None,
    project: str | None = None,
    by: Literal["segment"] | None = None,
    now: datetime | None = None,
) -> str:
    """The report as one document in ``fmt``; no network call is made.

    ``customer`` (a CRM customer id) and ``project`` (a Jira key) narrow it; ``by="segment"``
    gives the customer-group view instead. Raises :class:`ReportError` for an unknown
    customer or project, or a store with nothing synced yet.
    """
    return "".join(
        report_parts(store, config, fmt=fmt, customer=customer, project=project, by=by, now=now)
    )


def report_parts(
    store: Store,
    config: Config,
    *,
    fmt: Format = "html",
    customer: str | None = None,
    project: str | None = None,
    by: Literal["segment"] | None = None,
    now: datetime | None = None,
) -> Iterator[str]:
    """:func:`render_report`'s document in the pieces the template makes, to write out
    without holding it whole (a report of thousands of customers is tens of megabytes).
    The model is loaded and checked here, before the first piece: its errors are raised
    by this call."""
    from sync.report.build import build_report
    from sync.report.render import render_parts

    document = build_report(store, config, customer=customer, project=project, by=by, now=now)
    return render_parts(document, fmt)


def state_missing(url: str | None) -> str | None:
    """Why there is nothing to report when the SQLite state file does not exist (the report
    must not create an empty store); None when it exists or the store is a server."""
    from sync.store import default_url
    from sync.store.db import sqlite_path

    path = sqlite_path(url or default_url())
    if path is None or path.exists():
        return None
    return (
        f"no state store at {path} yet: run `jira-crm-sync run` first "
        "(the report reads what the sync stored)"
    )
