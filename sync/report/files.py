"""``report --per-customer DIR``: one report file per customer, the one you can send.

The all-customer report names every customer: it can be sent to nobody outside the company.
Each file here holds one customer's report alone, named so people can tell the files apart
(:func:`customer_file_name`: the customer's name as a slug, then its CRM id) and safe
on any file system whatever the CRM holds in the name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sync.report import Format, ReportError

if TYPE_CHECKING:
    from sync.config import Config
    from sync.store import Store

__all__ = ["EXTENSIONS", "WrittenReport", "customer_file_name", "write_per_customer"]

EXTENSIONS: dict[str, str] = {"html": "html", "markdown": "md", "text": "txt"}
#: The slug is cut to this many characters: with the id and extension a name stays far
#: below the 255 bytes every file system allows.
SLUG_LIMIT = 60

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class WrittenReport:
    """One file written: whose report it is, and where."""

    customer_id: str
    customer_name: str
    path: Path


def customer_file_name(name: str, account_id: str, fmt: Format) -> str:
    """``<slug>-<customer id>.<ext>``: the name's letters and digits in lower-case ASCII
    (accents dropped, anything else a ``-``), so no name can reach outside the directory
    (no ``/``, ``\\``, ``..``, control or reserved characters); ``customer`` when nothing
    is left (a name in Chinese, say). The id keeps the names apart (a CRM whose ids differ
    only in letter case gives them a case-safe form, so that holds on case-insensitive
    file systems too)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")[:SLUG_LIMIT].rstrip("-")
    safe_id = re.sub(r"[^A-Za-z0-9]", "", account_id)
    return f"{slug or 'customer'}-{safe_id}.{EXTENSIONS[fmt]}"


def _cannot_write(path: Path, exc: OSError) -> ReportError:
    reason = exc.strerror or type(exc).__name__
    return ReportError(
        f"cannot write {path} ({reason}); choose a writable directory for --per-customer"
    )


def write_per_customer(
    store: Store,
    config: Config,
    directory: Path,
    *,
    fmt: Format = "html",
    customer: str | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> list[WrittenReport]:
    """Write one report per customer into ``directory`` (created if missing), each only
    that customer's, in ``fmt``: every customer with a linked project (``project``: linked
    to that project), or just ``customer``. Raises :class:`ReportError` for an unknown
    customer or project, an empty store, or a directory that cannot be written."""
    from sync.report.build import document_of, load_model
    from sync.report.render import render

    model = load_model(store, config, now)
    everyone = document_of(model, customer=customer, project=project)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(directory, exc) from None
    if not directory.is_dir():
        raise ReportError(
            f"cannot write into {directory}: it is not a directory; "
            "choose a directory for --per-customer"
        )
    written: list[WrittenReport] = []
    for report in everyone.customers:
        account = report.customer
        document = document_of(model, customer=account.id, project=project)
        path = directory / customer_file_name(account.name, account.id, fmt)
        try:
            path.write_text(render(document, fmt), encoding="utf-8")
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        written.append(WrittenReport(account.id, account.name, path))
    return written
