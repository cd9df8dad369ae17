"""``jira-crm-sync run``: one cycle, then exit (cron, systemd timers)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from sync.cli.common import guarded, load_config, open_store, progress_bars, reading_store
from sync.cli.output import Output, fail, output
from sync.exitcodes import ExitCode

#: Set-aside records a cycle's text output lists (status lists more).
SET_ASIDE_SHOWN = 10
#: Link problems ``run`` prints (``--json`` and ``status`` list more).
LINK_PROBLEMS_SHOWN = 10


class Only(StrEnum):
    """Which half of a cycle ``run --only`` does."""

    pull = "pull"
    push = "push"


def run(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan of writes; write nothing anywhere.")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="Ignore cursors: read everything.")] = False,
    only: Annotated[
        Only | None,
        typer.Option("--only", help="Only pull (and store), or only push what is queued."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """One sync cycle (pull, merge, push), then exit: for cron and systemd timers."""
    from sync.cycle.engine import CycleOptions
    from sync.cycle.ownership import one_cycle
    from sync.store import LockHeld

    config = load_config(ctx)
    store = reading_store(config) if dry_run else open_store(config)

    def cycle() -> Any:
        with progress_bars(ctx, config.crm.name) as progress:
            options = CycleOptions(
                dry_run=dry_run,
                full=full,
                only=only.value if only else None,
                progress=progress,
                push_progress=progress.pushed if progress is not None else None,
            )
            return one_cycle(config, store, options)

    try:  # the bars are gone before a failure's line is written
        result = guarded(cycle, expected=(LockHeld,), store=store)
    finally:
        store.close()
    out = output(ctx)
    if as_json:
        out.document(result.as_dict())
    else:
        print_cycle(out, result, dry_run)
    if result.exit_code != ExitCode.OK:
        fail(result.exit_code, result.message)


def print_cycle(out: Output, result: Any, dry_run: bool) -> None:
    """A cycle's result as text: what it pulled, planned and wrote, and what went wrong."""

    def join(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"

    out.line(f"pulled: {join(result.pulled)}")
    out.line(f"planned: {join(result.planned)}")
    if dry_run:
        _budget_stop(out, result)
        _link_problems(out, result, "`jira-crm-sync run --dry-run --json` lists them")
        out.line("dry run: nothing was written, here or remotely; the plan:")
        for line in result.plan_text.splitlines():
            out.line(f"  - {line}")
        _set_aside(out, result)
        return
    out.line(f"written: {join(result.written)}")
    for note in getattr(result, "notes", ()):
        out.line(f"note: {note}")
    _budget_stop(out, result)
    for failure in result.failed:
        out.line(f"parked: {failure['side']} {failure['record']}: {failure['error']}")
    for conflict in result.conflicts:
        out.line(f"conflict: {conflict}")
    _set_aside(out, result)
    _link_problems(out, result, "`jira-crm-sync status` lists them")


def _set_aside(out: Output, result: Any) -> None:
    """The records a cycle could not read and set aside, a line each (the first few)."""
    for record in result.quarantined[:SET_ASIDE_SHOWN]:
        out.line(
            f"set aside: {record['side']} {record['kind']} {record['record']}: {record['reason']}"
        )
    more = result.quarantined_count - min(len(result.quarantined), SET_ASIDE_SHOWN)
    if more > 0:
        out.line(f"set aside: {more} more; `jira-crm-sync status` lists them")


def _budget_stop(out: Output, result: Any) -> None:
    """Which API budget stopped the cycle, the writes left and when it resumes: the run
    exits 0 (the next cycle goes on), so this line is where a person learns of it."""
    if result.status == "budget":
        out.line(f"budget: {result.message}")


def _link_problems(out: Output, result: Any, more: str) -> None:
    """Work items whose link value could not be used: each with the reason (which names
    the value) and the rule it fell back to, the first few of them."""
    if not result.link_problems:
        return
    out.line(
        f"link problems: {result.link_problems} (link values that could not be used; "
        "fix them in Jira or in [link])"
    )
    shown = result.link_problem_list[:LINK_PROBLEMS_SHOWN]
    for problem in shown:
        if problem["item"] is None:  # an entry of the table itself, for the whole project
            out.line(f"  [link.static] {problem['project']}: {problem['reason']}")
            continue
        fallback = f"linked by {problem['linked_by']}" if problem["linked_by"] else "left unlinked"
        out.line(f"  {problem['item']} ({problem['project']}): {problem['reason']}; {fallback}")
    if result.link_problems > len(shown):
        out.line(f"  ... and {result.link_problems - len(shown)} more; {more}")
