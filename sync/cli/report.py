"""``jira-crm-sync report``: the progress report people read, from the state store alone."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from sync.cli.common import guarded, load_config, open_store
from sync.cli.output import Output, fail, output
from sync.exitcodes import ExitCode


class ReportFormat(StrEnum):
    """How ``report`` renders."""

    text = "text"
    markdown = "markdown"
    html = "html"


class ReportView(StrEnum):
    """Other views of ``report`` (``--by``)."""

    segment = "segment"


def report(
    ctx: typer.Context,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Only this customer (its CRM id).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Only this Jira project (key).")
    ] = None,
    by: Annotated[
        ReportView | None, typer.Option("--by", help="segment: the customer-group view.")
    ] = None,
    fmt: Annotated[
        ReportFormat,
        typer.Option("--format", help="Plain text, Markdown, or one HTML file with charts."),
    ] = ReportFormat.text,
    output_path: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file (default stdout).", show_default=False
        ),
    ] = None,
    per_customer: Annotated[
        Path | None,
        typer.Option(
            "--per-customer",
            help="Write one file per customer into this directory (the one you can send).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The progress report people read, from the state store alone (no network)."""
    from sync.report import ReportError, report_parts, state_missing

    if per_customer is not None and (output_path is not None or by is not None):
        other = "-o" if output_path is not None else "--by"
        fail(
            ExitCode.USAGE,
            f"--per-customer writes its own files and cannot be combined with {other}; "
            "drop one of them",
        )
    config = load_config(ctx)
    missing = state_missing(config.state.url)
    if missing is not None:
        fail(ExitCode.USAGE, missing)
    out = output(ctx)
    store = open_store(config)
    if per_customer is not None:
        _per_customer(out, store, config, per_customer, fmt.value, customer, project)
        return
    try:
        parts = guarded(
            lambda: report_parts(
                store,
                config,
                fmt=fmt.value,
                customer=customer,
                project=project,
                by=by.value if by else None,
            ),
            expected=(ReportError,),
        )
    finally:
        store.close()
    if output_path is None:
        out.product("".join(parts))
        return
    guarded(lambda: _write(output_path, parts), expected=(ReportError,))
    out.note(f"report written to {output_path}")


def _write(path: Path, parts: Iterable[str]) -> None:
    """The report into ``-o``'s file, piece by piece; ReportError (a usage error) when it
    cannot be written."""
    from sync.report import ReportError

    try:
        with path.open("w", encoding="utf-8") as file:
            file.writelines(parts)
    except OSError as exc:
        raise ReportError(
            f"cannot write {path} ({exc.strerror}); choose a writable path for -o"
        ) from None


def _per_customer(
    out: Output,
    store: Any,
    config: Any,
    directory: Path,
    fmt: Any,
    customer: str | None,
    project: str | None,
) -> None:
    """``report --per-customer DIR``: the files on stdout, one path a line."""
    from sync.report import ReportError
    from sync.report.files import write_per_customer

    try:
        written = guarded(
            lambda: write_per_customer(
                store, config, directory, fmt=fmt, customer=customer, project=project
            ),
            expected=(ReportError,),
        )
    finally:
        store.close()
    for made in written:
        out.line(str(made.path))
    if written:
        out.note(f"{len(written)} customer report(s) written to {directory}")
    else:
        out.note(
            "no customer has a linked Jira project: no report written "
            "(`jira-crm-sync reconcile` suggests links)"
        )
