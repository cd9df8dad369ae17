"""``jira-crm-sync demo``: the whole product against the built-in sandbox, no account."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sync.cli.common import guarded
from sync.cli.output import output


class DemoCrm(StrEnum):
    """The sandbox CRM the demo syncs with."""

    salesforce = "salesforce"
    hubspot = "hubspot"


def demo(
    ctx: typer.Context,
    output_path: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the HTML report.")
    ] = Path("jira-crm-sync-demo-report.html"),
    keep_state: Annotated[
        Path | None,
        typer.Option(
            help="Keep the demo's config and state store in this directory.", show_default=False
        ),
    ] = None,
    crm: Annotated[
        DemoCrm,
        typer.Option(
            "--crm", help="The CRM: the Salesforce org, or a HubSpot portal of the same world."
        ),
    ] = DemoCrm.salesforce,
) -> None:
    """The sandbox, a full sync, some changes, an incremental sync and an HTML report;
    needs no account anywhere and leaves nothing running."""
    from sync.demo import Demo, DemoError

    say = output(ctx).line
    guarded(lambda: Demo(say, output_path, keep_state, crm=crm.value).run(), expected=(DemoError,))
