"""``jira-crm-sync status``: last runs, cursors, queued and parked writes, budget used."""

from __future__ import annotations

from typing import Annotated

import typer

from sync.cli.common import guarded, load_config, open_store
from sync.cli.output import output


def status(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option(min=1, max=1000, help="How many recent runs to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Last runs, cursors, pending and parked writes, API budget used: from the state store
    only, no network."""
    from sync import status as view

    config = load_config(ctx)
    if view.missing_state_file(config.state.url) is not None:
        report = view.empty(config)  # a status check does not create the state file
    else:
        store = open_store(config)
        try:
            report = guarded(lambda: view.collect(store, config, runs=runs))
        finally:
            store.close()
    output(ctx).report(report, view, as_json)
