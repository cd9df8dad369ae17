"""Progress bars for long pulls and pushes: rich, on stderr, only when it is a terminal.

The pull path reports ``(what, records read so far)`` through a plain callback
(:data:`sync.cycle.pull.PullProgress`), and totals where the API gives one (the Jira search:
:class:`sync.cycle.pull.TakesTotals`); the push reports ``(side, writes handled, writes due)``
(:data:`sync.cycle.push.PushProgress`). This module turns those reports into one rich task per
kind of record, and one per side for the push, with its total and time left. When the
push starts, the pull's bars are marked done instead of spinning on. Nothing here ever
writes to stdout: ``--json`` output stays one document, and a cron job or journald (not a
terminal) gets no bar at all, nor the extra call a total may cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from sync.cli.common import wanted as wanted  # where bars are wanted: decided without rich

#: How each kind of record a pull reports is shown.
LABELS = {
    "jira_issues": "Jira issues",
    "jira_keys": "Jira keys (delete scan)",
}
#: The push's bar of the Jira side (the CRM's is named after the CRM).
PUSH_LABELS = {"jira": "Jira writes"}


def label(what: str, crm: str = "CRM") -> str:
    """The bar's description of a kind of record (a CRM's streams by their name, after
    the CRM's: ``crm``)."""
    return LABELS.get(what, f"{crm} {what}")


class _TimeLeft(ProgressColumn):
    """The estimated time left of a bar with a total; nothing for one without."""

    def render(self, task: Task) -> Text:
        """``ETA 0:01:20`` while the bar runs and rich can estimate it."""
        left = task.time_remaining
        if task.total is None or task.finished or left is None:
            return Text("")
        return Text(f"ETA {timedelta(seconds=int(left))}", style="progress.remaining")


class PullBars:
    """The CLI's bars: a :data:`~sync.cycle.pull.PullProgress` with one bar per kind of record
    (records read and pages so far, out of a total where the API gave one), and through
    :meth:`pushed` a :data:`~sync.cycle.push.PushProgress` with one bar per side."""

    def __init__(self, progress: Progress, crm: str = "CRM") -> None:
        self._progress = progress
        self._crm = crm
        self._tasks: dict[str, TaskID] = {}
        self._pages: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self._pushes: dict[str, TaskID] = {}

    def _task(self, what: str) -> TaskID:
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self._progress.add_task(
                label(what, self._crm), total=self._totals.get(what), detail=""
            )
        return task

    def _show(self, what: str, count: int) -> None:
        self._counts[what] = count
        total = self._totals.get(what)
        read = f"{count} records" if total is None else f"{count} of {total} records"
        pages = self._pages.get(what, 0)
        self._progress.update(self._task(what), completed=count, detail=f"{read}, {pages} pages")

    def __call__(self, what: str, count: int) -> None:
        """One page arrived: ``count`` records of ``what`` read so far."""
        self._pages[what] = self._pages.get(what, 0) + 1
        self._show(what, count)

    def total(self, what: str, n: int) -> None:
        """``n`` records of ``what`` are expected (:class:`~sync.cycle.pull.TakesTotals`)."""
        self._totals[what] = n
        self._progress.update(self._task(what), total=n)
        self._show(what, self._counts.get(what, 0))

    def pushed(self, side: str, handled: int, total: int) -> None:
        """``handled`` of the ``total`` writes due to ``side`` are done (or parked)."""
        if not self._pushes:
            # The pull is over: its bars stop spinning, full at what was read.
            for what, task in self._tasks.items():
                done = self._counts.get(what, 0)
                self._progress.update(task, total=done, completed=done)
        bar = self._pushes.get(side)
        if bar is None:
            name = PUSH_LABELS.get(side, f"{self._crm} writes")
            bar = self._pushes[side] = self._progress.add_task(name, total=total, detail="")
        self._progress.update(
            bar, completed=handled, total=total, detail=f"{handled} of {total} writes"
        )


@contextmanager
def pull_bars(stream: TextIO | None, crm: str = "CRM") -> Iterator[PullBars | None]:
    """Bars on ``stream`` for the ``with`` body; None (and no output) when ``stream`` is None.
    ``crm``: the CRM's name as people read it, for the bars of its side.

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
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        _TimeLeft(),
        console=console,
        transient=True,
        redirect_stdout=False,  # stdout is the command's output, never the bars'
        redirect_stderr=True,
    )
    with progress:
        yield PullBars(progress, crm)
