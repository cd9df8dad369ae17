"""``jira-crm-sync serve``: cycles on ``[schedule]`` until SIGTERM, with /healthz and
/metrics (on PostgreSQL a procrastinate worker: sync.jobs)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated, Any

import typer

from sync.cli.common import guarded, load_config, open_store
from sync.cli.logs import service_logging
from sync.cli.options import options_of
from sync.cli.output import fail
from sync.exitcodes import exit_for


def serve(
    ctx: typer.Context,
    cycles: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many cycles (default: until SIGTERM).", show_default=False
        ),
    ] = None,
) -> None:
    """Run cycles on [schedule] every until SIGTERM; /healthz and /metrics on [serve] listen."""
    from sync.schedule import Schedule, ScheduleError
    from sync.serve import ListenError, serve_forever

    config = load_config(ctx)
    store = open_store(config)
    try:
        schedule = Schedule.parse(config.schedule.every)
        if store.dialect == "postgresql":
            from sync.jobs import cron_of

            cron_of(schedule)  # the worker's periodic task needs a cron
    except ScheduleError as exc:
        store.close()
        fail(exit_for(exc), str(exc))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("jira_crm_sync").info("signal %s: finishing the write in flight", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service_logging(options_of(ctx))

    def ready(server: Any) -> None:
        logging.getLogger("sync.serve").info(
            "serving /healthz and /metrics on %s; cycles every %s",
            config.serve.listen,
            schedule.text,
        )

    try:  # ListenError: the port is taken, or not ours to bind, a config problem
        guarded(
            lambda: serve_forever(config, store, schedule, stop, max_cycles=cycles, on_ready=ready),
            expected=(ListenError,),
        )
    finally:
        store.close()
