"""Progress bars for long pulls: rich, on stderr, and only when stderr is a terminal.

The pull path reports ``(what, records read so far)`` through a plain callback
(:data:`sync.pull.PullProgress`); this module turns those reports into one rich task per
kind of record. Nothing here ever writes to stdout: ``--json`` output stays one document,
and a cron job or journald (not a terminal) gets no bar at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from sync.pull import PullProgress

#: How each kind of record a pull reports is shown.
LABELS = {
    "jira_issues": "Jira issues",
    "jira_keys": "Jira keys (delete scan)",
}


def label(what: str) -> str:
    """The bar's description of a kind of record (CRM objects by their API name)."""
    return LABELS.get(what, f"Salesforce {what}")


def wanted(stream: TextIO, *, quiet: bool, json_logs: bool) -> bool:
    """Bars only for a person watching: a terminal, not ``--quiet``, not ``--log-format json``.

    Decided from ``isatty`` alone, not rich's own detection, which environment variables
    such as FORCE_COLOR can turn on for a pipe.
    """
    if quiet or json_logs:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class PullBars:
    """A :data:`~sync.pull.PullProgress` drawing one bar per kind of record: records read
    and pages so far (the totals are unknown: Jira's token pages do not say)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._pages: dict[str, int] = {}

    def __call__(self, what: str, count: int) -> None:
        """One page arrived: ``count`` records of ``what`` read so far."""
        pages = self._pages[what] = self._pages.get(what, 0) + 1
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self._progress.add_task(label(what), total=None, pages=0)
        self._progress.update(task, completed=count, pages=pages)


@contextmanager
def pull_bars(stream: TextIO | None) -> Iterator[PullProgress | None]:
    """Bars on ``stream`` for the ``with`` body; None (and no output) when ``stream`` is None.

    The bars vanish when the body ends, leaving the terminal to the command's own output.
    """
    if stream is None:
        yield None
        return
    console = Console(file=stream, force_terminal=True, highlight=False)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} records, {task.fields[pages]} pages"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,  # stdout is the command's output, never the bars'
        redirect_stderr=True,
    )
    with progress:
        yield PullBars(progress)
