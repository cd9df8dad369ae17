"""``jira-crm-sync check``: the config validated offline, and with ``--online`` both sides."""

from __future__ import annotations

from typing import Annotated

import typer

from sync.cli.common import guarded
from sync.cli.options import options_of
from sync.cli.output import fail, output
from sync.exitcodes import ExitCode


def check(
    ctx: typer.Context,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Also sign in to both sides; check permissions, fields, objects, budgets.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Validate the config (every problem names its key and the fix); one line per check."""
    from sync.check import run_checks

    report = guarded(lambda: run_checks(options_of(ctx).config, online=online))
    out = output(ctx)
    if as_json:
        out.document(report.as_dict())
    elif out.quiet:  # -q: the failed checks are the errors; they go to stderr
        for item in report.checks:
            if item.status == "fail":
                typer.echo(item.line(), err=True)
    else:
        for item in report.checks:
            out.line(item.line())
    if report.exit_code != ExitCode.OK:
        fail(report.exit_code, report.summary())
