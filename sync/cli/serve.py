"""``jira-crm-sync serve``: cycles on ``[schedule]`` until SIGTERM, with /healthz and
/metrics (on PostgreSQL a procrastinate worker: sync.jobs)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from sync.cli.common import guarded, load_config, open_store
from sync.cli.logs import service_logging
from sync.cli.options import options_of
from sync.cli.output import fail
from sync.exitcodes import ExitCode, exit_for


def serve(
    ctx: typer.Context,
    cycles: Annotated[
        int | None,
        typer.Option(
            help="Stop after this many cycles (default: until SIGTERM); with PostgreSQL, "
            "after this worker ran this many shard jobs.",
            show_default=False,
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            help="Serve /healthz and /metrics on this host:port instead of [serve] listen "
            "(several workers on one machine).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run cycles on [schedule] every until SIGTERM; /healthz and /metrics on [serve] listen.

    With --connections DIR (PostgreSQL), a worker for every connection of DIR."""
    options = options_of(ctx)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("jira_crm_sync").info("signal %s: finishing the write in flight", signum)
        stop.set()

    if options.connections is not None and options.connection is None:
        _serve_directory(options.connections, stop, cycles, on_signal, ctx, listen)
        return
    from sync.schedule import Schedule, ScheduleError
    from sync.serve import ListenError, serve_forever

    config = _listening(load_config(ctx), listen)
    # The schedule is judged before the store is opened (or created) or anything listens.
    try:
        schedule = Schedule.parse(config.schedule.every)
        scheme = (config.state.url or "").split(":", 1)[0]
        if scheme.split("+", 1)[0] in ("postgresql", "postgres"):
            from sync.jobs import cron_of

            cron_of(schedule)  # the worker's periodic task needs a cron
    except ScheduleError as exc:
        fail(exit_for(exc), str(exc))
    store = open_store(config)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service_logging(options)

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


def _serve_directory(
    directory: Path,
    stop: threading.Event,
    cycles: int | None,
    on_signal: Callable[[int, FrameType | None], None],
    ctx: typer.Context,
    listen: str | None,
) -> None:
    """``serve --connections DIR``: one procrastinate worker for every connection there."""
    from sync.connections import ConnectionsError
    from sync.serve import ListenError, NoConnections, open_connections, serve_jobs

    service_logging(options_of(ctx))
    try:
        opened = open_connections(directory)
    except (ConnectionsError, NoConnections) as exc:
        fail(exit_for(exc), str(exc))
    opened.config = _listening(opened.config, listen)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(server: Any) -> None:
        logging.getLogger("sync.serve").info(
            "serving /healthz and /metrics on %s; %d connection(s): %s",
            opened.config.serve.listen,
            len(opened.connections),
            ", ".join(f"{c.name} every {c.schedule.text}" for c in opened.connections),
        )

    try:
        guarded(
            lambda: serve_jobs(
                opened.connections,
                opened.broken,
                opened.queue_url,
                opened.config,
                stop,
                max_jobs=cycles,
                on_ready=ready,
            ),
            expected=(ListenError,),
        )
    finally:
        for connection in opened.connections:
            connection.store.close()


def _listening(config: Any, listen: str | None) -> Any:
    """``config`` with ``[serve] listen`` replaced by ``--listen`` (exit 2 if unusable)."""
    if listen is None:
        return config
    from sync.config import parse_listen

    try:
        parse_listen(listen)
    except ValueError as exc:
        fail(ExitCode.USAGE, f"--listen {exc}")
    serve = config.serve.model_copy(update={"listen": listen})
    return config.model_copy(update={"serve": serve})
