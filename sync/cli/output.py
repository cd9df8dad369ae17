"""What commands print, in one place: ``--json`` documents, rich tables or aligned text,
notes, and the one line a failure ends with.

- stdout carries the command's result: with ``--json`` one JSON document and nothing else;
  else rich tables on a terminal and aligned plain text in a pipe.
- ``-q`` leaves stdout to ``--json`` documents and the reports asked for (``report``
  without ``-o``, ``sandbox``'s ready line) and stderr to errors.
- A non-zero exit prints exactly one line on stderr, ``jira-crm-sync: <what to do>``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import typer

from sync.cli.options import options_of
from sync.exitcodes import ExitCode

PREFIX = "jira-crm-sync: "


class View(Protocol):
    """A report's renderers (sync.status, sync.reconcile)."""

    def render_rich(self, report: Any, console: Any) -> None:
        """Rich tables on a terminal."""

    def render_text(self, report: Any) -> str:
        """Aligned plain text."""


class Report(Protocol):
    """A report that also has a JSON view."""

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""


@dataclass(frozen=True)
class Output:
    """Where a command's lines go, under ``-q`` or not."""

    quiet: bool = False

    def line(self, text: str = "") -> None:
        """A line of the command's text result on stdout (not under ``-q``)."""
        if not self.quiet:
            typer.echo(text)

    def note(self, text: str) -> None:
        """A line for the person watching, on stderr (not under ``-q``)."""
        if not self.quiet:
            typer.echo(text, err=True)

    def document(self, document: Any) -> None:
        """The one JSON document of ``--json`` on stdout (also under ``-q``)."""
        sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def product(self, text: str) -> None:
        """What the command was asked to produce on stdout, as it is (a report): written
        also under ``-q``, which silences talk about the work, not the work itself."""
        sys.stdout.write(text)
        sys.stdout.flush()

    def report(self, report: Report, view: View, as_json: bool) -> None:
        """A report as JSON (``--json``), rich tables on a terminal, else aligned text."""
        if as_json:
            self.document(report.as_dict())
        elif self.quiet:
            return
        elif sys.stdout.isatty():
            from rich.console import Console

            view.render_rich(report, Console())
        else:
            sys.stdout.write(view.render_text(report))


def output(ctx: typer.Context) -> Output:
    """The output of this invocation (``-q`` given before or after the command)."""
    return Output(quiet=options_of(ctx).quiet)


def fail(code: ExitCode, message: str) -> NoReturn:
    """Exit with ``code`` and one line on stderr saying what to do (also under ``-q``)."""
    typer.echo(f"{PREFIX}{message}", err=True)
    raise typer.Exit(int(code))
