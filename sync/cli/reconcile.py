"""``jira-crm-sync reconcile``: both sides re-read in full and compared with what they
should hold; ``--apply`` writes the fixes."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sync.cli.common import guarded, load_config, open_store, progress_bars, reading_store
from sync.cli.output import fail, output
from sync.exitcodes import ExitCode


def reconcile(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the fixes, through the same path as run.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Re-read both sides in full: drift, conflicts, duplicates, unlinked projects and
    customers with suggested links, deleted records; --apply writes the fixes."""
    from datetime import UTC, datetime

    from sync import reconcile as view
    from sync.remote import build_remotes
    from sync.store import LockHeld

    config = load_config(ctx)
    store = open_store(config) if apply else reading_store(config)

    def compare() -> Any:
        with progress_bars(ctx, config.crm.name) as progress:
            return view.reconcile(
                config,
                store,
                build_remotes(config),
                apply=apply,
                now=datetime.now(UTC),
                progress=progress,
            )

    try:  # the bars are gone before a failure's line is written
        report = guarded(compare, expected=(LockHeld,))
    finally:
        store.close()
    output(ctx).report(report, view, as_json)
    if report.exit_code != ExitCode.OK:
        fail(report.exit_code, report.message)
