"""The ``jira-crm-sync`` command line: one module per command, each thin (parse, call one
function in ``sync/``, render through :mod:`sync.cli.output`).

Every command takes the global options before or after its name
(:mod:`sync.cli.options`); help is rendered as Markdown, so ``[schedule] every`` stays
as written and a paragraph reflows to the terminal; shell completion is typer's
(``--install-completion``, ``--show-completion``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import typer

from sync import collector
from sync.cli import check, db, demo, init, reconcile, report, run, sandbox, serve, status
from sync.cli.options import Command, Group, group_options, takes_global_options

__all__ = ["app", "main"]

#: Markdown: rich's own markup would eat ``[schedule]`` and ``[serve]`` (they read as
#: style tags), and it keeps a docstring's line breaks where Markdown reflows them.
MARKUP: Final[Literal["markdown"]] = "markdown"

app = typer.Typer(
    name="jira-crm-sync",
    cls=Group,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP,
)
db_app = typer.Typer(
    cls=Group,
    help="State-store maintenance.",
    no_args_is_help=True,
    rich_markup_mode=MARKUP,
)
app.callback()(group_options)


def _command(on: typer.Typer, name: str, func: Callable[..., Any]) -> None:
    on.command(name, cls=Command)(takes_global_options(func))


# In the order `--help` lists them: the daily ones first.
_command(app, "run", run.run)
_command(app, "serve", serve.serve)
_command(app, "status", status.status)
_command(app, "check", check.check)
_command(app, "reconcile", reconcile.reconcile)
_command(app, "report", report.report)
_command(app, "init", init.init)
_command(app, "demo", demo.demo)
_command(app, "sandbox", sandbox.sandbox)
app.add_typer(db_app, name="db")
_command(db_app, "upgrade", db.upgrade)


def main() -> None:
    """Console-script entry point (the garbage collector tuned for a cycle first)."""
    collector.tune()
    app()
