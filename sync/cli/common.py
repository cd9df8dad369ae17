"""What several commands share: the config and the state store they open, the one guard
that ends a command on an exception (its exit code from :func:`sync.exitcodes.exit_for`,
exit 5 for one not expected), and where progress bars go."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NoReturn, TextIO, TypeVar

import typer

from sync.cli.options import LogFormat, options_of
from sync.cli.output import fail
from sync.exitcodes import ExitCode, exit_for

T = TypeVar("T")


def load_config(ctx: typer.Context) -> Any:
    """The validated config of ``--config`` (or the default places), or of ``--connection
    NAME`` in ``--connections DIR`` with its state in the connection's own namespace
    (sync.connections); exit 2 listing the problems when it is missing or invalid."""
    from sync.config import ConfigFileError, find_config
    from sync.config import load_config as read_config

    options = options_of(ctx)
    try:
        if options.connection is not None:
            return _connection_config(options.config, options.connections, options.connection)
        return read_config(find_config(options.config))
    except ConfigFileError as exc:
        typer.echo(str(exc), err=True)
        fail(exit_for(exc), "fix the config problems listed above, then run again")


def _connection_config(config: Any, directory: Any, name: str) -> Any:
    from sync.connections import ConnectionsError, ensure_namespace, find_connection
    from sync.store import StoreError

    if config is not None:
        fail(
            exit_for(ConnectionsError()),
            f"give --config or --connection, not both (--connection {name} reads "
            f"{name}.toml of the connections directory)",
        )
    try:
        loaded = find_connection(directory, name)
    except ConnectionsError as exc:
        fail(exit_for(exc), str(exc))
    try:
        ensure_namespace(str(loaded.config.state.url))
    except StoreError as exc:
        fail(exit_for(exc), str(exc))
    return loaded.config


def open_store(config: Any) -> Any:
    """The state store, created and migrated on first use; exit 2 when it cannot be."""
    from sync.store import StoreError, open_store

    try:
        return open_store(config.state.url)
    except StoreError as exc:
        fail(exit_for(exc), str(exc))


def reading_store(config: Any) -> Any:
    """The store for a command that writes nothing to it (a dry run, a plain reconcile):
    a missing one is not created (an empty one in memory stands in), none is migrated."""
    from sync.store import StoreError, open_store_for_reading

    try:
        return open_store_for_reading(config.state.url)
    except StoreError as exc:
        fail(exit_for(exc), str(exc))


def guarded(
    work: Callable[[], T],
    expected: tuple[type[Exception], ...] = (),
    store: Any = None,
    *,
    say: Callable[[Exception], str] = str,
) -> T:
    """Run ``work``. An exception in ``expected`` ends the command with the exit code
    :func:`~sync.exitcodes.exit_for` gives it and one line (``say(exc)``, the exception's own
    message unless told); any other exception is a bug: exit 5 with one line (traceback
    at -vv). With ``store``, a write it refuses for want of disk space or write access is
    the state store's failure (exit 2)."""
    import sqlalchemy as sa

    from sync.store.db import storage_failure

    try:
        return work()
    except typer.Exit:
        raise
    except expected as exc:
        fail(exit_for(exc), say(exc))
    except sa.exc.DBAPIError as exc:
        failure = storage_failure(store.engine, exc) if store is not None else None
        if failure is None:
            internal(exc)
        fail(exit_for(failure), str(failure))
    except Exception as exc:  # the one place that turns a bug into exit code 5
        internal(exc)


def internal(exc: Exception) -> NoReturn:
    """Exit 5 for a bug: one line, the traceback only at -vv."""
    logging.getLogger("jira_crm_sync").debug("internal error", exc_info=exc)
    fail(
        ExitCode.INTERNAL,
        f"internal error ({type(exc).__name__}: {exc}); run again "
        "with -vv for the traceback and report it",
    )


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


def bar_stream(ctx: typer.Context) -> TextIO | None:
    """stderr when progress bars belong there (a terminal; not -q, not JSON logs); else None."""
    options = options_of(ctx)
    show = wanted(sys.stderr, quiet=options.quiet, json_logs=options.log_format is LogFormat.json)
    return sys.stderr if show else None


def progress_bars(ctx: typer.Context, crm: str) -> AbstractContextManager[Any]:
    """:func:`sync.cli.bars.pull_bars` on :func:`bar_stream` (None inside when there is no
    terminal to draw on; rich is then not even imported: a cron run does not pay for it)."""
    stream = bar_stream(ctx)
    if stream is None:
        return nullcontext(None)
    from sync.cli.bars import pull_bars

    return pull_bars(stream, crm)
